//! The server session in virtual time, over an in-memory tree: golden reply bytes from
//! PROTOCOL.md §5.4, the defined answers to bad input, the limits and the timeouts.

use erlboot_support::hex;
use std::sync::Arc;
use std::time::Duration;

use erlboot::etf::{self, Profile, Term};
use erlboot::proto::frame::encode_term_frame;
use erlboot::server::{
    CloseReason, MemorySource, ReplyEncoding, Session, SessionConfig, SessionLimits,
};
use erlboot::time::Instant;

fn tree() -> Arc<MemorySource> {
    Arc::new(
        MemorySource::new("/server/cwd")
            .with_file("/tmp/bs/hello.txt", &b"hi\n"[..])
            .with_file("/tmp/bs/sub/f", &b""[..]),
    )
}

fn at(secs: u64) -> Instant {
    Instant::from_epoch(Duration::from_secs(secs))
}

fn session() -> Session {
    Session::new(SessionConfig::default(), at(0))
}

/// Feeds `input` and collects every reply frame.
fn replies(session: &mut Session, input: &[u8]) -> Vec<Vec<u8>> {
    session.handle_data(at(0), input);
    let tree = tree();
    std::iter::from_fn(|| session.poll_transmit_from(&*tree).map(|t| t.to_vec())).collect()
}

fn frame(term: &Term, profile: Profile) -> Vec<u8> {
    encode_term_frame(term, profile).unwrap()
}

fn raw_frame(payload: &[u8]) -> Vec<u8> {
    [&(payload.len() as u32).to_be_bytes()[..], payload].concat()
}

#[test]
fn golden_replies_mirror_the_clients_release() {
    let get_25 = hex("00 00 00 1D 83 68 02 64 00 03 67 65 74 6B 00 11 2F 74 6D 70 2F 62 73 2F 68 65 6C 6C 6F 2E 74 78 74");
    let get_29 = hex("00 00 00 1C 83 68 02 77 03 67 65 74 6B 00 11 2F 74 6D 70 2F 62 73 2F 68 65 6C 6C 6F 2E 74 78 74");
    let ok_25 =
        hex("00 00 00 18 83 68 02 64 00 03 67 65 74 68 02 64 00 02 6F 6B 6D 00 00 00 03 68 69 0A");
    let ok_29 =
        hex("00 00 00 16 83 68 02 77 03 67 65 74 68 02 77 02 6F 6B 6D 00 00 00 03 68 69 0A");
    let mut s = session();
    assert_eq!(replies(&mut s, &get_25), std::slice::from_ref(&ok_25));
    assert_eq!(replies(&mut s, &get_29), [ok_29]);

    let fixed = SessionConfig {
        encoding: ReplyEncoding::Fixed(Profile::Otp25),
        ..SessionConfig::default()
    };
    let mut s = Session::new(fixed, at(0));
    assert_eq!(replies(&mut s, &get_29), [ok_25]);
}

#[test]
fn golden_errors_and_cwd() {
    let mut s = session();
    let missing = Term::tuple([Term::atom("get"), Term::string("/tmp/bs/none")]);
    assert_eq!(
        replies(&mut s, &frame(&missing, Profile::Otp25)),
        [hex("00 00 00 1C 83 68 02 64 00 03 67 65 74 68 02 64 00 05 65 72 72 6F 72 64 00 06 65 6E 6F 65 6E 74")]
    );
    assert_eq!(
        replies(&mut s, &frame(&missing, Profile::Otp26)),
        [hex("00 00 00 19 83 68 02 77 03 67 65 74 68 02 77 05 65 72 72 6F 72 77 06 65 6E 6F 65 6E 74")]
    );
    assert_eq!(
        replies(&mut s, &frame(&Term::atom("foo"), Profile::Otp25)),
        [hex("00 00 00 1D 83 68 02 64 00 05 65 72 72 6F 72 64 00 0F 75 6E 6B 6E 6F 77 6E 5F 63 6F 6D 6D 61 6E 64")]
    );
    let cwd = replies(&mut s, &hex("00 00 00 0B 83 64 00 07 67 65 74 5F 63 77 64"));
    let expected = Term::tuple([
        Term::atom("get_cwd"),
        Term::tuple([Term::atom("ok"), Term::string("/server/cwd")]),
    ]);
    assert_eq!(cwd, [frame(&expected, Profile::Otp25)]);
}

/// `{Command, Argument}` → the reply term the session sends (OTP 25 encoding).
fn answer(command: &str, argument: Term) -> Term {
    let mut s = session();
    let request = Term::tuple([Term::atom(command), argument]);
    let reply = replies(&mut s, &frame(&request, Profile::Otp25));
    assert_eq!(reply.len(), 1);
    etf::decode(&reply[0][4..]).unwrap()
}

fn error(tag: &str, reason: &str) -> Term {
    Term::tuple([
        Term::atom(tag),
        Term::tuple([Term::atom("error"), Term::atom(reason)]),
    ])
}

#[test]
fn commands_answer_as_otp_on_unix() {
    let ok = |tag: &str, value: Term| {
        Term::tuple([Term::atom(tag), Term::tuple([Term::atom("ok"), value])])
    };
    assert_eq!(
        answer("list_dir", Term::string("/tmp/bs")),
        ok(
            "list_dir",
            Term::list([Term::string("hello.txt"), Term::string("sub")])
        )
    );
    assert_eq!(
        answer("list_dir", Term::string("/tmp/bs/hello.txt")),
        error("list_dir", "enotdir")
    );
    assert_eq!(
        answer("get", Term::string("/tmp/bs")),
        error("get", "eisdir")
    );
    assert_eq!(
        answer("get", Term::string("/tmp/bs/sub/f")),
        ok("get", Term::binary(&b""[..]))
    );
    assert_eq!(
        answer("get_cwd", Term::string("c:")),
        error("get_cwd", "enotsup")
    );
    assert_eq!(
        answer("get_cwd", Term::string("/")),
        error("get_cwd", "einval")
    );
    assert_eq!(
        answer("get_cwd", Term::List(vec![])),
        error("get_cwd", "badarg")
    );
    assert_eq!(
        answer("get_cwd", Term::Int(123)),
        error("get_cwd", "badarg")
    );
    // A deep list is a name, as prim_file flattens it.
    let deep = Term::list([Term::string("/tmp/"), Term::string("bs/hello.txt")]);
    assert_eq!(answer("get", deep), ok("get", Term::binary(&b"hi\n"[..])));
}

#[test]
fn bad_input_gets_a_defined_error_and_the_connection_goes_on() {
    let badarg = Term::tuple([
        Term::atom("error"),
        Term::tuple([Term::atom("badarg"), Term::List(vec![])]),
    ]);
    let hello = frame(
        &Term::tuple([Term::atom("get"), Term::string("/tmp/bs/hello.txt")]),
        Profile::Otp25,
    );
    let cases: Vec<(Vec<u8>, Term)> = vec![
        (raw_frame(&[131, 200]), badarg.clone()),
        (raw_frame(&[1, 2, 3]), badarg.clone()),
        (raw_frame(&[]), badarg.clone()),
        (
            frame(
                &Term::tuple([Term::atom("get"), Term::binary(&b"/x"[..])]),
                Profile::Otp25,
            ),
            error("get", "badarg"),
        ),
        (
            frame(
                &Term::tuple([Term::atom("list_dir"), Term::Int(42)]),
                Profile::Otp26,
            ),
            error("list_dir", "badarg"),
        ),
        (
            frame(
                &Term::tuple([Term::atom("get"), Term::string("/x"), Term::Int(1)]),
                Profile::Otp25,
            ),
            Term::tuple([Term::atom("error"), Term::atom("unknown_command")]),
        ),
    ];
    let mut s = session();
    for (input, expected) in cases {
        let out = replies(&mut s, &[&input[..], &hello[..]].concat());
        assert_eq!(out.len(), 2, "one reply each for {expected}");
        assert_eq!(etf::decode(&out[0][4..]).unwrap(), expected);
        assert!(
            out[1].ends_with(b"hi\n"),
            "the next request is still answered"
        );
        assert!(s.close_reason().is_none());
    }
}

#[test]
fn deep_nesting_is_refused_by_size_or_by_depth() {
    let mut nested = vec![131];
    nested.extend(std::iter::repeat([104, 1]).take(100_000).flatten());
    nested.push(106);
    let mut s = session();
    assert!(replies(&mut s, &raw_frame(&nested)).is_empty());
    assert!(matches!(
        s.close_reason(),
        Some(CloseReason::FrameTooLarge { .. })
    ));

    let roomy = SessionConfig {
        limits: SessionLimits {
            max_request: 1 << 20,
            ..SessionLimits::default()
        },
        ..SessionConfig::default()
    };
    let mut s = Session::new(roomy, at(0));
    let out = replies(&mut s, &raw_frame(&nested));
    let badarg = Term::tuple([
        Term::atom("error"),
        Term::tuple([Term::atom("badarg"), Term::List(vec![])]),
    ]);
    assert_eq!(etf::decode(&out[0][4..]).unwrap(), badarg);
    assert!(s.close_reason().is_none());
}

#[test]
fn pipelined_and_split_requests_are_answered_in_order() {
    let names = ["/tmp/bs/hello.txt", "/tmp/bs/none", "/tmp/bs/sub/f"];
    let input: Vec<u8> = names
        .iter()
        .flat_map(|n| {
            frame(
                &Term::tuple([Term::atom("get"), Term::string(n)]),
                Profile::Otp25,
            )
        })
        .collect();
    let whole = replies(&mut session(), &input);
    assert_eq!(whole.len(), 3);
    let mut s = session();
    let mut split = Vec::new();
    for byte in &input {
        split.extend(replies(&mut s, std::slice::from_ref(byte)));
    }
    assert_eq!(split, whole);
    let served: Vec<_> = std::iter::from_fn(|| s.poll_served()).collect();
    assert_eq!(served.len(), 3);
    assert_eq!(served[1].name.as_deref(), Some("/tmp/bs/none"));
    assert_eq!(
        served[1].error.as_ref().and_then(|r| r.as_atom()),
        Some("enoent")
    );
}

#[test]
fn the_rest_of_a_frame_is_not_taken_for_a_frame_of_its_own() {
    // The payload of this frame begins with what looks like a whole frame of the request
    // `get "/tmp/bs/hello.txt"`; after the outer header alone has arrived, the rest must
    // complete the outer frame, not be read as that inner one.
    let inner = frame(
        &Term::tuple([Term::atom("get"), Term::string("/tmp/bs/hello.txt")]),
        Profile::Otp25,
    );
    let outer = raw_frame(&inner);
    let whole = replies(&mut session(), &outer);
    let mut s = session();
    assert_eq!(replies(&mut s, &outer[..4]), Vec::<Vec<u8>>::new());
    assert_eq!(replies(&mut s, &outer[4..]), whole);
    // The outer payload is no term, so it is answered as bad input, not with the file.
    assert_ne!(whole, replies(&mut session(), &inner));
}

/// Feeds `input` as bytes held already, as a simulated network hands them over, and collects
/// every reply frame.
fn replies_to_bytes(session: &mut Session, now: Instant, input: &[u8]) -> Vec<Vec<u8>> {
    session.handle_bytes(now, bytes::Bytes::copy_from_slice(input));
    let tree = tree();
    std::iter::from_fn(|| session.poll_transmit_from(&*tree).map(|t| t.to_vec())).collect()
}

#[test]
fn bytes_held_already_are_read_as_a_copy_of_them_is() {
    let get = |name: &str| {
        frame(
            &Term::tuple([Term::atom("get"), Term::string(name)]),
            Profile::Otp25,
        )
    };
    let hello = get("/tmp/bs/hello.txt");
    let pipelined = [hello.clone(), get("/tmp/bs/none"), get("/tmp/bs/sub/f")].concat();
    // A frame alone, frames together, and a frame whose payload looks like a whole frame,
    // each cut at every point: the same replies, in the same pieces, as from a read.
    for input in [hello.clone(), pipelined, raw_frame(&hello)] {
        for cut in 0..=input.len() {
            let (mut read, mut held) = (session(), session());
            for piece in [&input[..cut], &input[cut..]] {
                assert_eq!(
                    replies_to_bytes(&mut held, at(0), piece),
                    replies(&mut read, piece),
                    "cut at {cut} of {}",
                    input.len()
                );
            }
            assert_eq!(held.buffered(), read.buffered());
        }
    }
    // A request taken whole postpones the idle timeout as any input does.
    let mut s = session();
    replies_to_bytes(&mut s, at(5), &hello);
    let idle = SessionLimits::default().idle_timeout.unwrap();
    assert_eq!(s.poll_timeout(), Some(at(5) + idle));
    // An oversized length closes the session here too, and a closed one takes nothing.
    let mut s = session();
    replies_to_bytes(&mut s, at(0), &[0xFF, 0xFF, 0xFF, 0xFF, 131]);
    assert!(matches!(
        s.close_reason(),
        Some(CloseReason::FrameTooLarge { .. })
    ));
    assert!(replies_to_bytes(&mut s, at(1), &hello).is_empty());
}

#[test]
fn an_oversized_length_closes_without_buffering() {
    let mut s = session();
    s.handle_data(at(0), &[0xFF, 0xFF, 0xFF, 0xFF, 131]);
    assert_eq!(
        s.close_reason(),
        Some(&CloseReason::FrameTooLarge {
            len: u32::MAX,
            max: SessionLimits::default().max_request
        })
    );
    assert_eq!(s.buffered(), 0);
    assert!(s.poll_transmit_from(&*tree()).is_none());
    assert!(s.poll_timeout().is_none());
}

#[test]
fn a_partial_frame_times_out_even_while_it_trickles() {
    let limits = SessionLimits::default();
    let frame_timeout = limits.frame_timeout.unwrap();
    let mut s = session();
    s.handle_data(at(0), &[0, 0, 0, 100]);
    assert_eq!(s.poll_timeout(), Some(at(0) + frame_timeout));
    for second in 1..frame_timeout.as_secs() {
        s.handle_data(at(second), &[1]);
        s.handle_timeout(at(second));
        assert!(s.close_reason().is_none());
    }
    s.handle_timeout(at(0) + frame_timeout);
    assert_eq!(
        s.close_reason(),
        Some(&CloseReason::PartialFrame(frame_timeout))
    );
}

#[test]
fn silence_closes_at_the_idle_timeout_and_requests_postpone_it() {
    let idle = SessionLimits::default().idle_timeout.unwrap();
    let mut s = session();
    assert_eq!(s.poll_timeout(), Some(at(0) + idle));
    let get_cwd = frame(&Term::atom("get_cwd"), Profile::Otp25);
    s.handle_data(at(30), &get_cwd);
    assert!(s.poll_transmit_from(&*tree()).is_some());
    assert_eq!(s.poll_timeout(), Some(at(30) + idle));
    // A read of nothing is no input: it postpones nothing, whole or as held bytes.
    s.handle_data(at(60), &[]);
    s.handle_bytes(at(60), bytes::Bytes::new());
    assert_eq!(s.poll_timeout(), Some(at(30) + idle));
    s.handle_timeout(at(30) + (idle - Duration::from_millis(1)));
    assert!(s.close_reason().is_none());
    s.handle_timeout(at(30) + idle);
    assert_eq!(s.close_reason(), Some(&CloseReason::Idle(idle)));
    s.handle_data(at(200), &get_cwd);
    assert!(
        s.poll_transmit_from(&*tree()).is_none(),
        "a closed session answers nothing"
    );
}

#[test]
fn no_timeouts_means_no_deadline() {
    let config = SessionConfig {
        limits: SessionLimits {
            idle_timeout: None,
            frame_timeout: None,
            ..SessionLimits::default()
        },
        ..SessionConfig::default()
    };
    let mut s = Session::new(config, at(0));
    s.handle_data(at(0), &[0, 0]);
    assert_eq!(s.poll_timeout(), None);
}

/// The session reads no file itself: a request for one becomes a question, and its reply
/// waits for the answer, however late, while later requests wait behind it.
#[test]
fn file_questions_wait_for_their_answers_in_order() {
    use erlboot::server::{FileAnswer, FileError, FileSource, Question};

    let tree = tree();
    let idle = SessionLimits::default().idle_timeout.unwrap();
    let mut s = session();
    let get = |name: &str| {
        frame(
            &Term::tuple([Term::atom("get"), Term::string(name)]),
            Profile::Otp26,
        )
    };
    let cwd = frame(&Term::atom("get_cwd"), Profile::Otp25);
    // Two file requests and a get_cwd, pipelined.
    s.handle_data(
        at(0),
        &[get("/tmp/bs/hello.txt"), get("/tmp/bs/none"), cwd].concat(),
    );
    assert!(
        s.poll_transmit().is_none(),
        "nothing is answered before its file is read"
    );
    let question = s.poll_question().expect("a question");
    assert_eq!(question.question, Question::Get("/tmp/bs/hello.txt".into()));
    assert_eq!(
        question.profile,
        Profile::Otp26,
        "the client's release travels along"
    );
    assert_eq!(
        s.poll_question(),
        None,
        "one question at a time, asked once"
    );
    assert!(s.is_waiting());
    // No timeout fires while the server is the one being slow.
    assert_eq!(s.poll_timeout(), None);
    s.handle_timeout(at(0) + idle * 3);
    assert!(s.close_reason().is_none());
    // The answer comes 400 s late: the reply goes out, then the next question.
    s.handle_answer(at(400), tree.answer(&question));
    let reply = s.poll_transmit().expect("the reply").to_vec();
    assert_eq!(&reply[reply.len() - 3..], b"hi\n");
    assert!(s.poll_transmit().is_none());
    let question = s.poll_question().expect("the second question");
    assert_eq!(question.question, Question::Get("/tmp/bs/none".into()));
    // A disk that fails answers eio; the connection goes on.
    s.handle_answer(at(401), FileAnswer::failed(FileError::Io));
    let reply = s.poll_transmit().expect("the error reply").to_vec();
    let expected = frame(
        &Term::tuple([
            Term::atom("get"),
            Term::tuple([Term::atom("error"), Term::atom("eio")]),
        ]),
        Profile::Otp26,
    );
    assert_eq!(reply, expected);
    // get_cwd still needs the source; then the session is idle from the last answer on.
    let question = s.poll_question().expect("the cwd question");
    assert_eq!(question.question, Question::Cwd);
    s.handle_answer(at(402), tree.answer(&question));
    assert!(s.poll_transmit().is_some());
    assert_eq!(s.poll_timeout(), Some(at(402) + idle));
    // An answer nobody asked for changes nothing.
    s.handle_answer(at(403), FileAnswer::failed(FileError::Io));
    assert!(s.poll_transmit().is_none());
}

/// A reply the cache remembers goes out at once, without a question.
#[test]
fn remembered_replies_need_no_question() {
    use erlboot::server::{FileSource, ReplyCache};

    let tree = tree();
    let replies = std::sync::Arc::new(ReplyCache::new(1 << 20));
    replies.observe(tree.version());
    let get = frame(
        &Term::tuple([Term::atom("get"), Term::string("/tmp/bs/hello.txt")]),
        Profile::Otp25,
    );
    let mut first = session().with_replies(std::sync::Arc::clone(&replies));
    first.handle_data(at(0), &get);
    let question = first.poll_question().expect("asked the first time");
    assert!(question.remember);
    first.handle_answer(at(0), tree.answer(&question));
    let answered = first.poll_transmit().unwrap();

    let mut second = session().with_replies(replies);
    second.handle_data(at(1), &get);
    assert_eq!(
        second.poll_transmit(),
        Some(answered),
        "straight from the cache"
    );
    assert_eq!(second.poll_question(), None);
}
