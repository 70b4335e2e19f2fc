//! Every message of real `erl -loader inet` boots (captures/*.pcap, recorded from OTP 25 and
//! OTP 27 nodes booting from OTP's own `erl_boot_server`) decodes to a typed message and
//! encodes back to the very same bytes.

use erlboot_support::capture;

use std::path::{Path, PathBuf};

use erlboot::etf::{DecodeError, Decoder, Limits, Profile};
use erlboot::proto::discovery::{Answer, Query};
use erlboot::proto::{Reply, Request};

fn captures() -> Vec<(PathBuf, Profile)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let list = [
        ("otp25-boot.pcap", Profile::Otp25),
        ("otp25-requests.pcap", Profile::Otp25),
        ("otp27-boot.pcap", Profile::Otp26),
        ("otp27-requests.pcap", Profile::Otp26),
    ];
    list.into_iter().map(|(f, p)| (dir.join(f), p)).collect()
}

#[test]
fn every_request_and_reply_round_trips() {
    let requests = Decoder::new(Limits::request());
    let replies = Decoder::new(Limits::reply());
    for (path, profile) in captures() {
        let capture = capture::read(&path);
        assert_eq!(
            capture.streams.len(),
            1,
            "{}: one boot connection",
            path.display()
        );
        let stream = &capture.streams[0];
        assert!(
            stream.to_server_frames.len() > 190,
            "{}: a whole boot",
            path.display()
        );
        assert_eq!(stream.to_server_frames.len(), stream.to_client_frames.len());
        for (request_frame, reply_frame) in
            stream.to_server_frames.iter().zip(&stream.to_client_frames)
        {
            let request = Request::decode(&request_frame.payload, &requests).unwrap();
            assert!(
                request.command().is_some() && !matches!(request, Request::BadArgument { .. }),
                "{}: an OTP client sent {request:?}",
                path.display()
            );
            assert_eq!(
                request.encode(profile).unwrap(),
                request_frame.payload,
                "{request:?}"
            );

            let reply = Reply::decode(&reply_frame.payload, &replies).unwrap();
            assert_eq!(
                reply.command(),
                request.command(),
                "{request:?} answered by {reply:?}"
            );
            assert_eq!(
                reply.encode(profile).unwrap(),
                reply_frame.payload,
                "{reply:?}"
            );
        }
    }
}

#[test]
fn discovery_datagrams_round_trip() {
    for (path, _) in captures() {
        let capture = capture::read(&path);
        let query = capture
            .datagrams
            .iter()
            .find(|d| d.dst.port() == 4368)
            .unwrap();
        let answer = capture
            .datagrams
            .iter()
            .find(|d| d.src.port() == 4368)
            .unwrap();
        let parsed_query = Query::parse(&query.payload).unwrap();
        let parsed_answer = Answer::parse(&answer.payload).unwrap();
        assert_eq!(parsed_query.to_bytes(), query.payload);
        assert_eq!(parsed_answer.to_bytes(), answer.payload);
        assert_eq!(parsed_answer.priority, 0, "OTP always answers priority 0");
        assert_eq!(parsed_answer.port, capture.streams[0].server.port());
        assert_eq!(
            parsed_answer.version, parsed_query.version,
            "same release on both ends"
        );
    }
}

#[test]
fn truncation_at_every_offset_is_a_typed_error() {
    let (path, _) = &captures()[1];
    let capture = capture::read(path);
    let stream = &capture.streams[0];
    let decoder = Decoder::default();
    let mut checked = 0;
    // Every request, and one reply of each command (file contents, names, file info, cwd).
    let mut seen = std::collections::BTreeSet::new();
    let replies = stream.to_client_frames.iter().filter(|f| {
        let reply = Reply::decode(&f.payload, &decoder).unwrap();
        seen.insert(format!(
            "{:?}/{}",
            reply.command(),
            matches!(reply, Reply::Get(Err(_)))
        ))
    });
    for frame in stream.to_server_frames.iter().chain(replies) {
        for cut in 0..frame.payload.len() {
            let err = decoder.decode(&frame.payload[..cut]).unwrap_err();
            assert!(
                matches!(err, DecodeError::Truncated { .. } | DecodeError::Empty),
                "cut at {cut}: {err}"
            );
            checked += 1;
        }
    }
    assert!(checked > 10_000, "{checked} truncations checked");
}
