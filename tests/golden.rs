//! Golden vectors: frames recorded from real OTP 25 and OTP 29 nodes (PROTOCOL.md §5.4), decoded
//! to typed messages and encoded back byte for byte.

use bytes::BytesMut;
use erlboot::etf::{Decoder, Profile, Term};
use erlboot::proto::frame::FrameDecoder;
use erlboot::proto::{frame, Access, DateTime, FileInfo, FileType, Reason, Reply, Request};
use erlboot_support::hex;

/// The payload of a whole frame, checked through the frame decoder.
fn payload(frame_bytes: &[u8]) -> Vec<u8> {
    let mut buf = BytesMut::from(frame_bytes);
    let payload = FrameDecoder::new(1 << 20)
        .decode(&mut buf)
        .unwrap()
        .unwrap();
    assert!(buf.is_empty(), "one frame exactly");
    payload.to_vec()
}

fn check_reply(frame_hex: &str, profile: Profile, expected: &Reply) {
    let frame_bytes = hex(frame_hex);
    let reply = Reply::decode(&payload(&frame_bytes), &Decoder::default()).unwrap();
    assert_eq!(&reply, expected);
    assert_eq!(
        frame::encode_term_frame(&reply.to_term(), profile).unwrap(),
        frame_bytes
    );
}

#[test]
fn get_ok() {
    let reply = Reply::Get(Ok(b"hi\n"[..].into()));
    check_reply(
        "00 00 00 18 83 68 02 64 00 03 67 65 74 68 02 64 00 02 6F 6B 6D 00 00 00 03 68 69 0A",
        Profile::Otp25,
        &reply,
    );
    check_reply(
        "00 00 00 16 83 68 02 77 03 67 65 74 68 02 77 02 6F 6B 6D 00 00 00 03 68 69 0A",
        Profile::Otp26,
        &reply,
    );
}

#[test]
fn get_enoent() {
    let reply = Reply::Get(Err(Reason::atom("enoent")));
    check_reply(
        "00 00 00 1C 83 68 02 64 00 03 67 65 74 68 02 64 00 05 65 72 72 6F 72 64 00 06 65 6E 6F 65 6E 74",
        Profile::Otp25,
        &reply,
    );
    check_reply(
        "00 00 00 19 83 68 02 77 03 67 65 74 68 02 77 05 65 72 72 6F 72 77 06 65 6E 6F 65 6E 74",
        Profile::Otp26,
        &reply,
    );
}

#[test]
fn list_dir_ok() {
    check_reply(
        "00 00 00 26 83 68 02 64 00 08 6C 69 73 74 5F 64 69 72 68 02 64 00 02 6F 6B 6C 00 00 00 02 6B 00 02 66 31 6B 00 03 73 75 62 6A",
        Profile::Otp25,
        &Reply::ListDir(Ok(vec!["f1".into(), "sub".into()])),
    );
}

#[test]
fn list_dir_with_code_points_above_255() {
    let reply = Reply::ListDir(Ok(vec!["é".into(), "€b".into(), "abc".into()]));
    let bytes = reply.encode(Profile::Otp25).unwrap();
    assert!(bytes.ends_with(&hex(
        "6C 00 00 00 03 6B 00 01 E9 6C 00 00 00 02 62 00 00 20 AC 61 62 6A 6B 00 03 61 62 63 6A"
    )));
    assert_eq!(Reply::decode(&bytes, &Decoder::default()).unwrap(), reply);
}

#[test]
fn unknown_command() {
    let reply = Reply::Error(Reason::atom("unknown_command"));
    check_reply(
        "00 00 00 1D 83 68 02 64 00 05 65 72 72 6F 72 64 00 0F 75 6E 6B 6E 6F 77 6E 5F 63 6F 6D 6D 61 6E 64",
        Profile::Otp25,
        &reply,
    );
    check_reply(
        "00 00 00 1B 83 68 02 77 05 65 72 72 6F 72 77 0F 75 6E 6B 6E 6F 77 6E 5F 63 6F 6D 6D 61 6E 64",
        Profile::Otp26,
        &reply,
    );
}

#[test]
fn get_cwd_request_frames() {
    for (frame_hex, profile) in [
        (
            "00 00 00 0B 83 64 00 07 67 65 74 5F 63 77 64",
            Profile::Otp25,
        ),
        ("00 00 00 0A 83 77 07 67 65 74 5F 63 77 64", Profile::Otp26),
    ] {
        let bytes = hex(frame_hex);
        let request = Request::decode(&payload(&bytes), &Decoder::default()).unwrap();
        assert_eq!(request, Request::GetCwd);
        assert_eq!(
            frame::encode_term_frame(&request.to_term(), profile).unwrap(),
            bytes
        );
    }
}

#[test]
fn read_file_info_ok() {
    let t = DateTime {
        year: 2024,
        month: 1,
        day: 2,
        hour: 3,
        minute: 4,
        second: 5,
    };
    let info = FileInfo {
        size: 3,
        file_type: FileType::Regular,
        access: Access::ReadWrite,
        atime: t,
        mtime: t,
        ctime: t,
        mode: 33188,
        links: 1,
        major_device: 65024,
        minor_device: 0,
        inode: 10027030,
        uid: 0,
        gid: 0,
    };
    let time = "68 02 68 03 62 00 00 07 E8 61 01 61 02 68 03 61 03 61 04 61 05 ";
    let otp25 = hex(&format!(
        "83 68 02 64 00 0E 72 65 61 64 5F 66 69 6C 65 5F 69 6E 66 6F 68 02 64 00 02 6F 6B 68 0E 64 00 09 66 69 6C 65 5F 69 6E 66 6F \
         61 03 64 00 07 72 65 67 75 6C 61 72 64 00 0A 72 65 61 64 5F 77 72 69 74 65 {time}{time}{time}\
         62 00 00 81 A4 61 01 62 00 00 FE 00 61 00 62 00 99 00 16 61 00 61 00"
    ));
    let reply = Reply::ReadFileInfo(Ok(info));
    assert_eq!(Reply::decode(&otp25, &Decoder::default()).unwrap(), reply);
    assert_eq!(reply.encode(Profile::Otp25).unwrap(), otp25);
    // OTP 27/29: the same, with every `64 00 LL` atom header replaced by `77 LL`.
    let otp26_hex = format!(
        "83 68 02 77 0E 72 65 61 64 5F 66 69 6C 65 5F 69 6E 66 6F 68 02 77 02 6F 6B 68 0E 77 09 66 69 6C 65 5F 69 6E 66 6F \
         61 03 77 07 72 65 67 75 6C 61 72 77 0A 72 65 61 64 5F 77 72 69 74 65 {time}{time}{time}\
         62 00 00 81 A4 61 01 62 00 00 FE 00 61 00 62 00 99 00 16 61 00 61 00"
    );
    assert_eq!(reply.encode(Profile::Otp26).unwrap(), hex(&otp26_hex));
    assert_eq!(
        Reply::decode(&hex(&otp26_hex), &Decoder::default()).unwrap(),
        reply
    );
}

#[test]
fn file_info_fields_past_i64_use_bignums() {
    let t = DateTime {
        year: 1970,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
    };
    let info = FileInfo {
        size: 5_000_000_000,
        file_type: FileType::Symlink,
        access: Access::None,
        atime: t,
        mtime: t,
        ctime: t,
        mode: 0o120777,
        links: 1,
        major_device: 0,
        minor_device: 0,
        inode: u64::MAX,
        uid: 65534,
        gid: 65534,
    };
    let reply = Reply::ReadLinkInfo(Ok(info));
    let bytes = reply.encode(Profile::Otp25).unwrap();
    // 5000000000 → SMALL_BIG of 5 digits (PROTOCOL.md §5.2).
    assert!(bytes
        .windows(8)
        .any(|w| w == hex("6E 05 00 00 F2 05 2A 01")));
    assert_eq!(Reply::decode(&bytes, &Decoder::default()).unwrap(), reply);
}

#[test]
fn replies_of_unexpected_shape_are_kept_whole() {
    let odd = Term::tuple([
        Term::atom("get"),
        Term::tuple([Term::atom("ok"), Term::Int(1)]),
    ]);
    let reply = Reply::from_term(odd.clone());
    assert_eq!(reply, Reply::Other(odd.clone()));
    assert_eq!(reply.to_term(), odd);
}

/// A reply's size hint holds what it encodes to, big listings and file infos of the largest
/// numbers included, without asking for far more.
#[test]
fn size_hints_hold_the_encoded_replies() {
    let t = DateTime {
        year: 2024,
        month: 12,
        day: 31,
        hour: 23,
        minute: 59,
        second: 59,
    };
    let huge = FileInfo {
        size: u64::MAX,
        file_type: FileType::Regular,
        access: Access::ReadWrite,
        atime: t,
        mtime: t,
        ctime: t,
        mode: u32::MAX,
        links: u64::MAX,
        major_device: u64::MAX,
        minor_device: u64::MAX,
        inode: u64::MAX,
        uid: u32::MAX,
        gid: u32::MAX,
    };
    let names: Vec<String> = (0..300)
        .map(|i| format!("module_number_{i}.beam"))
        .collect();
    let replies = [
        Reply::ListDir(Ok(names)),
        Reply::ListDir(Ok(vec![])),
        Reply::ReadFileInfo(Ok(huge)),
        Reply::GetCwd(Ok("/".repeat(1000))),
        Reply::Get(Ok(bytes::Bytes::from(vec![7; 5000]))),
        Reply::Get(Err(Reason::atom("enoent"))),
        Reply::Error(Reason::atom("unknown_command")),
    ];
    for reply in replies {
        for profile in [Profile::Otp25, Profile::Otp26] {
            let mut out = Vec::new();
            reply.encode_into(profile, &mut out).unwrap();
            let hint = reply.size_hint();
            assert!(out.len() <= hint, "{reply:?}: {} > {hint}", out.len());
            assert!(
                hint <= out.len() + 224,
                "{reply:?}: {hint} for {}",
                out.len()
            );
        }
    }
}
