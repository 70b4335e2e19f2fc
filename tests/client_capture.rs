//! The loader replays real boots (captures/*.pcap, OTP 25 and OTP 27 nodes booting from OTP's
//! `erl_boot_server`): given the captured answers and replies, at their captured times, it sends
//! the very query and request bytes the real node sent, connects where the node connected, and
//! reads every reply as a success or an error as the node did.

use erlboot_support::capture;

use std::net::SocketAddrV4;
use std::path::Path;
use std::time::Duration;

use erlboot::client::{Action, Event, Loader, LoaderConfig, Response};
use erlboot::etf::{Decoder, Limits, Profile};
use erlboot::proto::discovery::{Query, PORT};
use erlboot::proto::{Reply, Request};
use erlboot::time::Instant;

fn at(d: Duration) -> Instant {
    Instant::from_epoch(d)
}

fn actions(loader: &mut Loader) -> Vec<Action> {
    std::iter::from_fn(|| loader.poll_action()).collect()
}

fn replay(file: &str, profile: Profile) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures")
        .join(file);
    let capture = capture::read(&path);
    let query = capture
        .datagrams
        .iter()
        .find(|d| d.dst.port() == PORT)
        .unwrap();
    let answer = capture
        .datagrams
        .iter()
        .find(|d| d.src.port() == PORT)
        .unwrap();
    let stream = &capture.streams[0];

    // Discovery: the node's query, to the host it was given.
    let version = Query::parse(&query.payload).unwrap().version;
    let mut config = LoaderConfig::new(vec![*query.dst.ip()], version);
    config.profile = profile;
    let mut loader = Loader::new(config, at(query.at));
    let sent = actions(&mut loader);
    assert_eq!(sent[0], Action::OpenDiscovery, "{file}");
    match &sent[1..] {
        [Action::Query { to, datagram }] => {
            assert_eq!(*to, SocketAddrV4::new(*query.dst.ip(), PORT), "{file}");
            assert_eq!(datagram[..], query.payload[..], "{file}");
        }
        other => panic!("{file}: {other:?}"),
    }

    // The answer, then the end of the window: a connect to where the node connected.
    loader.handle_datagram(at(answer.at), answer.src, &answer.payload);
    let window_end = at(answer.at) + Duration::from_millis(500);
    assert_eq!(loader.poll_timeout(), Some(window_end), "{file}");
    loader.handle_timeout(window_end);
    let conn = match actions(&mut loader)[..] {
        [Action::Connect { conn, to }] => {
            assert_eq!(to, stream.server, "{file}: the answer's source and port");
            conn
        }
        ref other => panic!("{file}: {other:?}"),
    };
    loader.handle_connected(window_end, conn);
    assert_eq!(actions(&mut loader), [Action::CloseDiscovery], "{file}");
    while loader.poll_event().is_some() {}

    // Every request, byte for byte, and every reply read as the node read it.
    let requests = Decoder::new(Limits::request());
    let replies = Decoder::new(Limits::reply());
    assert!(stream.to_server_frames.len() > 190, "{file}: a whole boot");
    for (request_frame, reply_frame) in stream.to_server_frames.iter().zip(&stream.to_client_frames)
    {
        let request = Request::decode(&request_frame.payload, &requests).unwrap();
        let now = at(request_frame.at);
        assert!(
            loader.poll_timeout() > Some(now),
            "{file}: nothing timed out"
        );
        loader.request(now, &request).unwrap();
        let frame = match &actions(&mut loader)[..] {
            [Action::Send { conn: on, frame }] if *on == conn => frame.clone(),
            other => panic!("{file}: {request:?}: {other:?}"),
        };
        assert_eq!(
            &frame[..4],
            (request_frame.payload.len() as u32).to_be_bytes()
        );
        assert_eq!(frame[4..], request_frame.payload[..], "{file}: {request:?}");

        let wire = capture::join_frames([&reply_frame.payload[..]]);
        loader.handle_data(at(reply_frame.at), conn, wire.into());
        let event = loader.poll_event().expect("a reply");
        assert_eq!(loader.poll_event(), None);
        let Event::Reply(result) = event else {
            panic!("{file}: {request:?}: {event:?}")
        };
        let expected = Reply::decode(&reply_frame.payload, &replies).unwrap();
        match (&expected, &result) {
            (Reply::Get(Ok(contents)), Ok(Response::File(got))) => {
                assert_eq!(Some(contents), got.binary().as_ref())
            }
            (
                Reply::ListDir(Ok(_))
                | Reply::ReadFileInfo(Ok(_))
                | Reply::ReadLinkInfo(Ok(_))
                | Reply::GetCwd(Ok(_)),
                Ok(Response::Ok(got)),
            ) => {
                // {Command,{ok,Value}}: the value the loader hands on, built.
                let wire = expected.to_term();
                let value = &wire.as_tuple().unwrap()[1].as_tuple().unwrap()[1];
                assert_eq!(got, value, "{file}: {request:?}");
            }
            (
                Reply::Get(Err(_))
                | Reply::ListDir(Err(_))
                | Reply::ReadFileInfo(Err(_))
                | Reply::ReadLinkInfo(Err(_))
                | Reply::GetCwd(Err(_)),
                Err(_),
            ) => {}
            _ => panic!("{file}: {request:?}: {expected:?} read as {result:?}"),
        }
        assert!(actions(&mut loader).is_empty());
    }
}

#[test]
fn otp25_boot_replays_byte_for_byte() {
    replay("otp25-boot.pcap", Profile::Otp25);
}

#[test]
fn otp25_requests_replay_byte_for_byte() {
    replay("otp25-requests.pcap", Profile::Otp25);
}

#[test]
fn otp27_boot_replays_byte_for_byte() {
    replay("otp27-boot.pcap", Profile::Otp26);
}

#[test]
fn otp27_requests_replay_byte_for_byte() {
    replay("otp27-requests.pcap", Profile::Otp26);
}
