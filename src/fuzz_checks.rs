//! The properties the fuzz targets check, kept in the library so that the seed corpora run as
//! ordinary tests too (`tests/fuzz_corpus.rs`). Each function panics when a property fails.

use bytes::BytesMut;

use crate::etf::{self, Decoder, LazyTerm, Limits, Profile, Term};
use crate::proto::discovery::{Answer, Query};
use crate::proto::frame::FrameDecoder;
use crate::proto::{Reply, Request};

/// The limits the fuzz targets decode with: small enough that a breach shows up under
/// libFuzzer's `-malloc_limit_mb`, large enough for every real frame.
pub const LIMITS: Limits = Limits {
    max_depth: 64,
    max_elements: 1 << 16,
    max_total_bytes: 16 << 20,
};

/// Decodes arbitrary bytes as a term; whatever decodes must re-encode under both profiles to
/// bytes that decode to the same term, and a second encoding must equal the first (the
/// encoding of a decoded term is canonical). Typed messages built from the term must not panic,
/// and a reply must encode back to the term it was read from. A [`LazyTerm`] read from the same
/// bytes must take as many of them, or fail the same way, and hold the same term.
pub fn etf_decode(data: &[u8]) {
    let decoder = Decoder::new(LIMITS);
    let shared = bytes::Bytes::copy_from_slice(data);
    let decoded = decoder.decode_prefix(data);
    lazy_reads_as_decoded(&shared, &decoder, &decoded);
    // Limits a short input can cross, so that the lazy check meets them too.
    let tight = Decoder::new(TIGHT);
    lazy_reads_as_decoded(&shared, &tight, &tight.decode_prefix(data));
    let Ok((term, used)) = decoded else {
        return;
    };
    assert!(used <= data.len());
    for profile in [Profile::Otp25, Profile::Otp26] {
        let bytes = etf::encode(&term, profile).expect("a decoded term encodes");
        let again = decoder.decode(&bytes).expect("our encoding decodes");
        assert!(same(&again, &term), "round trip changed {term}");
        assert_eq!(
            etf::encode(&again, profile).unwrap(),
            bytes,
            "encoding is canonical"
        );
    }
    assert_eq!(Reply::from_term(term.clone()).to_term(), term);
    let request = Request::from_term(term.clone());
    let _ = request.encode(Profile::Otp25);
    let _ = term.to_string();
}

/// Limits a fuzzer's input crosses often.
const TIGHT: Limits = Limits {
    max_depth: 3,
    max_elements: 8,
    max_total_bytes: 1024,
};

/// A [`LazyTerm`] read from `data` takes as many bytes as `decoded` did, or fails the same
/// way, and holds the same term.
fn lazy_reads_as_decoded(
    data: &bytes::Bytes,
    decoder: &Decoder,
    decoded: &Result<(Term, usize), etf::DecodeError>,
) {
    let lazy = LazyTerm::decode_prefix(data, decoder);
    match (decoded, &lazy) {
        (Ok((term, used)), Ok((lazy, lazy_used))) => {
            assert_eq!(used, lazy_used, "a lazy term ends where the term does");
            lazy_agrees(lazy, term);
        }
        (Err(e), Err(lazy)) => assert_eq!(e, lazy, "a lazy term fails as the term does"),
        _ => panic!("decoded {decoded:?}, lazily {lazy:?}"),
    }
}

/// `lazy` holds `term`: built, as a binary, as an atom, and as a pair or a triple.
fn lazy_agrees(lazy: &LazyTerm, term: &Term) {
    assert!(same(&lazy.term(), term), "{lazy:?} is not {term}");
    assert_eq!(lazy, &LazyTerm::from(term.clone()));
    let binary = match term {
        Term::Binary(bytes) => Some(bytes.clone()),
        _ => None,
    };
    assert_eq!(lazy.binary(), binary);
    if let Some(atom) = term.as_atom() {
        assert!(lazy.is_atom(atom) && !lazy.is_atom(&format!("{atom}_")));
    }
    let elems = match term {
        Term::Tuple(elems) => &elems[..],
        _ => &[],
    };
    match lazy.tuple::<2>() {
        Some(pair) => pair.iter().zip(elems).for_each(|(l, t)| lazy_agrees(l, t)),
        None => assert_ne!(elems.len(), 2, "{term} is a pair"),
    }
    match lazy.tuple::<3>() {
        Some(triple) => triple
            .iter()
            .zip(elems)
            .for_each(|(l, t)| lazy_agrees(l, t)),
        None => assert_ne!(elems.len(), 3, "{term} is a triple"),
    }
}

/// Term equality that tells floats apart by their bits (so -0.0 is not 0.0, as on the wire).
fn same(a: &Term, b: &Term) -> bool {
    match (a, b) {
        (Term::Float(x), Term::Float(y)) => x.to_bits() == y.to_bits(),
        (Term::Tuple(x), Term::Tuple(y)) | (Term::List(x), Term::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Term::ImproperList(x, xt), Term::ImproperList(y, yt)) => {
            same(xt, yt) && x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Term::Map(x), Term::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, va), (kb, vb))| same(ka, kb) && same(va, vb))
        }
        _ => a == b,
    }
}

/// Splits arbitrary bytes into frames twice, once whole and once fed in chunks whose sizes
/// come from the input; both must give the same frames and the same error. Every frame is then
/// read as a request, as the server would.
pub fn framing(data: &[u8]) {
    let Some((&control, data)) = data.split_first() else {
        return;
    };
    let decoder = FrameDecoder::new(u32::from(control) * 64);
    let whole = split(&decoder, &mut BytesMut::from(data));
    let chunk = usize::from(control % 7) + 1;
    let mut buf = BytesMut::new();
    let mut chunked = (Vec::new(), None);
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        let (frames, error) = split(&decoder, &mut buf);
        chunked.0.extend(frames);
        if error.is_some() {
            chunked.1 = error;
            break;
        }
    }
    assert_eq!(whole, chunked);
    let requests = Decoder::new(Limits::request());
    for frame in &whole.0 {
        assert!(frame.len() <= decoder.max_len() as usize);
        if let Ok(request) = Request::decode(frame, &requests) {
            let _ = request.encode(Profile::Otp26);
        }
    }
}

type Split = (Vec<bytes::Bytes>, Option<crate::proto::frame::FrameError>);

fn split(decoder: &FrameDecoder, buf: &mut BytesMut) -> Split {
    let mut frames = Vec::new();
    loop {
        match decoder.decode(buf) {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => return (frames, None),
            Err(e) => return (frames, Some(e)),
        }
    }
}

/// Reads arbitrary bytes as an `EBOOTQ` query and as an `EBOOTR` answer; whatever parses must
/// give back the same bytes.
pub fn discovery(data: &[u8]) {
    if let Ok(query) = Query::parse(data) {
        assert_eq!(query.to_bytes(), data);
    }
    if let Ok(answer) = Answer::parse(data) {
        assert_eq!(answer.to_bytes(), data);
    }
}

/// Drives a server session with arbitrary bytes and timing. The input is a script: a byte
/// below 200 feeds the next `byte + 1` bytes `byte` milliseconds later; a byte from 200
/// advances the clock `byte - 200` seconds and fires the timeouts. Every reply must be one
/// well-formed frame holding a reply term; the session must never hold more than one frame's
/// worth of input, never answer more requests than it was sent, and never ask to be woken in
/// the past. A second session, fed the same script, remembers replies in a cache: it must
/// answer byte for byte as the first. A third gets its file answers late, at the next clock
/// step: it must send the same replies in the same order (one list a prefix of the other, as
/// the time spent waiting may move its timeouts and requests still waiting are dropped by a
/// close; the same lists unless one closed).
pub fn session(data: &[u8]) {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::server::{FileSource, MemorySource, ReplyCache, Session, SessionConfig};
    use crate::time::Instant;

    let tree = MemorySource::new("/cwd")
        .with_file("/usr/lib/erlang/bin/start.boot", &b"boot"[..])
        .with_file("/cwd/mod.beam", &b"beam"[..])
        .with_symlink("/usr/lib/erlang/loop", "loop");
    let config = SessionConfig::default();
    let tree = Arc::new(tree);
    let mut session = Session::new(config, Instant::ZERO);
    let mut remembering =
        Session::new(config, Instant::ZERO).with_replies(Arc::new(ReplyCache::new(1 << 16)));
    let mut late = Session::new(config, Instant::ZERO);
    let mut late_question = None;
    let (mut replied, mut replied_late) = (Vec::new(), Vec::new());
    // Sends what the late session has ready, and takes its next question.
    let drain_late = |late: &mut Session, question: &mut Option<_>, out: &mut Vec<Vec<u8>>| {
        while let Some(transmit) = late.poll_transmit() {
            out.push(transmit.to_vec());
        }
        if late.close_reason().is_some() {
            // A closed session awaits nothing: its question died with it.
            assert!(!late.is_waiting());
            assert_eq!(late.poll_question(), None);
            *question = None;
        } else if question.is_none() {
            *question = late.poll_question();
        }
        assert_eq!(late.is_waiting(), question.is_some());
    };
    let frames = FrameDecoder::new(u32::MAX);
    let decoder = Decoder::new(LIMITS);
    let mut now = Instant::ZERO;
    let mut sent = BytesMut::new();
    let (mut requests, mut replies) = (0usize, 0usize);
    let mut rest = data;
    while let Some((&op, tail)) = rest.split_first() {
        if op < 200 {
            let len = (usize::from(op) + 1).min(tail.len());
            let (chunk, tail) = tail.split_at(len);
            now = now + Duration::from_millis(u64::from(op));
            session.handle_data(now, chunk);
            remembering.handle_data(now, chunk);
            late.handle_data(now, chunk);
            drain_late(&mut late, &mut late_question, &mut replied_late);
            sent.extend_from_slice(chunk);
            while let Ok(Some(_)) = frames.decode(&mut sent) {
                requests += 1;
            }
            rest = tail;
        } else {
            now = now + Duration::from_secs(u64::from(op - 200));
            if let Some(question) = late_question.take() {
                late.handle_answer(now, tree.answer(&question));
            }
            drain_late(&mut late, &mut late_question, &mut replied_late);
            session.handle_timeout(now);
            remembering.handle_timeout(now);
            late.handle_timeout(now);
            if late.is_waiting() {
                assert_eq!(
                    late.poll_timeout(),
                    None,
                    "no timeout while an answer is awaited"
                );
            }
            if let Some(deadline) = session.poll_timeout() {
                assert!(deadline > now, "woken in the past");
            }
            rest = tail;
        }
        assert!(session.buffered() <= config.limits.max_request as usize + 4 + 256);
        while let Some(transmit) = session.poll_transmit_from(&*tree) {
            let remembered = remembering
                .poll_transmit_from(&*tree)
                .expect("the same replies");
            assert_eq!(
                remembered.to_vec(),
                transmit.to_vec(),
                "a remembered reply differs"
            );
            replies += 1;
            replied.push(transmit.to_vec());
            let mut bytes = BytesMut::from(&transmit.to_vec()[..]);
            let payload = frames
                .decode(&mut bytes)
                .expect("a frame")
                .expect("a whole frame");
            assert!(bytes.is_empty(), "exactly one frame");
            let reply = Reply::decode(&payload, &decoder).expect("a reply term");
            assert!(
                !matches!(reply, Reply::Other(_)),
                "a reply of a known shape"
            );
        }
        assert!(
            remembering.poll_transmit_from(&*tree).is_none(),
            "the same replies"
        );
        assert_eq!(remembering.close_reason(), session.close_reason());
        assert!(replies <= requests);
    }
    while let Some(question) = late_question.take() {
        late.handle_answer(now, tree.answer(&question));
        drain_late(&mut late, &mut late_question, &mut replied_late);
    }
    let shorter = replied.len().min(replied_late.len());
    assert_eq!(
        replied[..shorter],
        replied_late[..shorter],
        "late answers changed the replies"
    );
    // A close (a timeout the waiting moved, a frame over the limit that arrived while
    // requests still waited behind a question) ends either list early; otherwise both hold
    // every reply.
    if session.close_reason().is_none() && late.close_reason().is_none() {
        assert_eq!(
            replied.len(),
            replied_late.len(),
            "late answers lost replies"
        );
    }
}

/// The limits the archive target parses with.
pub const ARCHIVE_LIMITS: crate::archive::ArchiveLimits = crate::archive::ArchiveLimits {
    max_entries: 4096,
    max_nodes: 1 << 14,
    max_entry_size: 1 << 20,
};

/// Splits arbitrary bytes as a requested name, and parses them as an `.ez` archive; whatever
/// parses must answer `get`, `list_dir` and `read_file_info` for every entry without
/// panicking: each entry name is found by `get` and `read_file_info` in both passes, and the
/// directory above each entry lists it.
pub fn archive(data: &[u8]) {
    use crate::archive::{self, Archive, Pass};
    use crate::proto::{Access, DateTime, FileInfo, FileType};
    use crate::server::FileError;

    let text = String::from_utf8_lossy(data);
    if let Some((at, inner)) = archive::split(&text) {
        assert!(at.ends_with(archive::EXTENSION));
        assert!(text == at || text == format!("{at}/{inner}"));
        let earlier = at.match_indices('/').map(|(i, _)| &at[..i]);
        assert!(!earlier.into_iter().any(|p| p.ends_with(archive::EXTENSION)));
    }

    let Ok(archive) = Archive::parse_with(bytes::Bytes::copy_from_slice(data), ARCHIVE_LIMITS)
    else {
        return;
    };
    let time = DateTime {
        year: 2024,
        month: 1,
        day: 2,
        hour: 3,
        minute: 4,
        second: 5,
    };
    let info = FileInfo {
        size: data.len() as u64,
        file_type: FileType::Regular,
        access: Access::Read,
        atime: time,
        mtime: time,
        ctime: time,
        mode: 0o100644,
        links: 1,
        major_device: 0,
        minor_device: 0,
        inode: 0,
        uid: 0,
        gid: 0,
    };
    let names: Vec<String> = archive.names().map(str::to_owned).collect();
    assert!(names.len() <= ARCHIVE_LIMITS.max_entries);
    let _ = archive.list_dir("");
    for name in &names {
        for pass in [Pass::Opening, Pass::Cached] {
            match archive.get_in(pass, name) {
                Ok(bytes) => assert!(bytes.len() <= data.len().max(ARCHIVE_LIMITS.max_entry_size)),
                Err(e) => assert_ne!(e, FileError::NoEntry, "{name:?} is an entry"),
            }
            if !name.is_empty() {
                let found = archive.file_info_in(pass, name, &info).unwrap();
                assert!(matches!(
                    found.file_type,
                    FileType::Regular | FileType::Directory
                ));
            }
        }
        let _ = archive.list_dir(name);
        let trimmed = name.strip_suffix('/').unwrap_or(name);
        if let Some(slash) = trimmed.rfind('/') {
            let listed = archive.list_dir(&trimmed[..slash]).unwrap();
            assert!(listed.iter().any(|n| *n == trimmed[slash + 1..]));
        }
    }
}

/// Drives an inet loader with a script of network events, requests and clock steps in any
/// order. Each byte is an op: its top 3 bits say what, its low 5 bits (`arg`) with what.
/// 0: the clock moves `arg` × 100 ms and the timeouts fire; 1: the clock jumps to the loader's
/// deadline and it fires; 2: a datagram, an answer when `arg` < 16 (priority and port from
/// `arg`), else the next `byte % 17` bytes; 3, 4, 5: a connection (chosen by `arg` among those
/// asked for, or an unknown one) connects, fails, closes; 6: a reply frame (good, error,
/// unexpected, undecodable or partial, by `arg`) arrives on a connection; 7: a request.
///
/// The loader must never panic, never ask to be woken in the past, open the discovery socket
/// only while it is closed and use it only while it is open, name every connection once, send
/// only on connections that connected, and answer each request at most once.
pub fn loader(data: &[u8]) {
    use std::net::{Ipv4Addr, SocketAddrV4};
    use std::time::Duration;

    use crate::client::LoaderError;
    use crate::client::{Action, ConnId, DeadConnection, Event, Ignored, Loader, LoaderConfig};
    use crate::proto::frame::encode_term_frame;
    use crate::time::Instant;

    let ip = |n: u8| Ipv4Addr::new(10, 0, 0, n);
    // The first byte picks the model: OTP 25's flaws or erlboot's own loader.
    let Some((&model, data)) = data.split_first() else {
        return;
    };
    let kept = model & 1 == 1;
    let config = LoaderConfig {
        dead_connection: if kept {
            DeadConnection::Kept
        } else {
            DeadConnection::Forgotten
        },
        ignored: if model & 2 == 2 {
            Ignored::OneRound
        } else {
            Ignored::UntilConnected
        },
        ..LoaderConfig::new(vec![ip(0), Ipv4Addr::BROADCAST], &b"13.1.5"[..])
    };
    let mut loader = Loader::new(config, Instant::ZERO);
    let ok = |tag: &str, value: Term| {
        Term::tuple([Term::atom(tag), Term::tuple([Term::atom("ok"), value])])
    };
    let framed = |term: Term| encode_term_frame(&term, Profile::Otp25).unwrap();
    let replies: [Vec<u8>; 8] = [
        framed(ok("get", Term::binary(&b"beam"[..]))),
        framed(ok("list_dir", Term::list([Term::string("a")]))),
        framed(Term::tuple([
            Term::atom("get"),
            Term::tuple([Term::atom("error"), Term::atom("enoent")]),
        ])),
        framed(Term::tuple([
            Term::atom("error"),
            Term::atom("unknown_command"),
        ])),
        framed(Term::atom("weird")),
        vec![0, 0, 0, 2, 131, 200],
        vec![0, 0, 0, 9, 131],
        vec![0, 0],
    ];
    let requests = [
        Request::Get("/usr/lib/erlang/bin/start.boot".into()),
        Request::ListDir("/usr/lib/erlang/lib".into()),
        Request::ReadFileInfo("/x".into()),
        Request::GetCwd,
    ];
    let mut now = Instant::ZERO;
    let mut issued: Vec<ConnId> = Vec::new();
    let mut connected: Vec<ConnId> = Vec::new();
    let mut discovery_open = false;
    let mut restored = false;
    let (mut asked, mut answered) = (0usize, 0usize);
    let mut rest = data;
    loop {
        // Events first: a connection's `Connected` comes with the `Send` it allows.
        let actions: Vec<Action> = std::iter::from_fn(|| loader.poll_action()).collect();
        while let Some(event) = loader.poll_event() {
            match event {
                Event::Connected { conn, .. } => connected.push(conn),
                Event::Reply(_) => {
                    answered += 1;
                    assert!(!loader.is_busy(), "a reply ends the request");
                }
                // erlboot's model reaches a dead connection only as OTP does after an
                // unexpected reply, which puts back the state from before the request.
                Event::Abandoned { .. } => restored = true,
                Event::Stranded { .. } => assert!(kept || restored, "a dead connection used"),
                _ => {}
            }
        }
        for action in actions {
            match action {
                Action::OpenDiscovery => {
                    assert!(!discovery_open, "one discovery socket at a time");
                    discovery_open = true;
                }
                Action::CloseDiscovery => {
                    assert!(discovery_open, "closing a closed discovery socket");
                    discovery_open = false;
                }
                Action::Query { datagram, .. } => {
                    assert!(discovery_open);
                    assert_eq!(&datagram[..], b"EBOOTQ13.1.5");
                }
                Action::Connect { conn, .. } => {
                    assert!(discovery_open, "connects belong to a discovery");
                    assert!(issued.last().map_or(true, |last| *last < conn), "fresh ids");
                    issued.push(conn);
                }
                Action::Send { conn, .. } => assert!(connected.contains(&conn)),
                Action::Close { conn } => assert!(issued.contains(&conn)),
            }
        }
        assert!(answered <= asked, "one reply per request");
        if let Some(deadline) = loader.poll_timeout() {
            assert!(deadline > now, "woken in the past");
        }
        let Some((&op, tail)) = rest.split_first() else {
            return;
        };
        rest = tail;
        let arg = op & 31;
        let conn = |k: u8| {
            let k = usize::from(k) % (issued.len() + 1);
            issued.get(k).copied().unwrap_or(ConnId(u64::MAX))
        };
        match op >> 5 {
            0 => {
                now = now + Duration::from_millis(100 * u64::from(arg));
                loader.handle_timeout(now);
            }
            1 => {
                if let Some(deadline) = loader.poll_timeout() {
                    now = deadline;
                    loader.handle_timeout(now);
                }
            }
            2 => {
                let n = arg & 3;
                let from = SocketAddrV4::new(ip(n), 4368);
                if arg < 16 {
                    let answer = Answer {
                        priority: (arg >> 2) & 1,
                        port: 1000 + u16::from(n),
                        version: b"13.1.5".to_vec(),
                    };
                    loader.handle_datagram(now, from, &answer.to_bytes());
                } else if let Some((&len, tail)) = rest.split_first() {
                    let (datagram, tail) = tail.split_at(usize::from(len % 17).min(tail.len()));
                    loader.handle_datagram(now, from, datagram);
                    rest = tail;
                }
            }
            3 => loader.handle_connected(now, conn(arg)),
            4 => loader.handle_connect_failed(now, conn(arg)),
            5 => loader.handle_closed(now, conn(arg)),
            6 => loader.handle_data(
                now,
                conn(arg >> 3),
                replies[usize::from(arg & 7)].clone().into(),
            ),
            // A get_modules call begins or ends.
            _ if arg >= 28 => {
                let result = if arg & 1 == 0 {
                    loader.begin_modules()
                } else {
                    loader.end_modules(now)
                };
                match result {
                    Ok(()) | Err(LoaderError::Starting) => {}
                    Err(LoaderError::Busy) => assert!(loader.is_busy()),
                    Err(e) => panic!("{e}"),
                }
            }
            _ => {
                let request = &requests[usize::from(arg) % requests.len()];
                match loader.request(now, request) {
                    Ok(()) => asked += 1,
                    Err(LoaderError::Busy) => assert!(loader.is_busy()),
                    Err(e) => panic!("{e}"),
                }
            }
        }
    }
}
