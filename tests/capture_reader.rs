//! Checks the pcaps in captures/ (real OTP nodes booting with `-loader inet`, recorded by
//! captures/record.sh) through the test-support pcap reader, against manifest.toml, the
//! *.expected.txt files and facts from PROTOCOL.md. (The reader itself, on synthetic captures
//! of every link type, with holes and reordering, is tested in the conformance crate.)
//!
//! Byte checks here use a tiny independent encoder for the few term shapes involved, not the
//! crate's codec, so that the captures can also serve as an oracle for the codec.

use erlboot_support::capture;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use capture::{Capture, Frame, TcpStream};

const EBOOT_PORT: u16 = 4368;
const ATOM_EXT: u8 = 100;
const SMALL_ATOM_UTF8_EXT: u8 = 119;

fn captures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("captures")
}

// ---------------------------------------------------------------------------------------
// manifest.toml, parsed simply (flat `key = value` lines and one inline table)

#[derive(Debug)]
struct Entry(BTreeMap<String, String>);

impl Entry {
    fn raw(&self, key: &str) -> &str {
        self.0
            .get(key)
            .unwrap_or_else(|| panic!("manifest entry {:?} has no key {key}", self.0.get("file")))
    }
    fn str(&self, key: &str) -> String {
        let v = self.raw(key);
        assert!(
            v.starts_with('"') && v.ends_with('"'),
            "{key} is not a string: {v}"
        );
        v[1..v.len() - 1]
            .replace("\\\"", "\"")
            .replace("\\\\", "\\")
    }
    fn num(&self, key: &str) -> usize {
        self.raw(key)
            .parse()
            .unwrap_or_else(|e| panic!("{key}: {e}"))
    }
    /// `commands = { get = 161, list_dir = 79, ... }`
    fn commands(&self) -> BTreeMap<String, usize> {
        let v = self.raw("commands").trim();
        let inner = v
            .strip_prefix('{')
            .and_then(|v| v.strip_suffix('}'))
            .expect("inline table");
        inner
            .split(',')
            .map(|kv| {
                let (k, n) = kv.split_once('=').expect("k = v");
                (k.trim().to_string(), n.trim().parse().expect("count"))
            })
            .collect()
    }
    fn file(&self) -> String {
        self.str("file")
    }
    /// A capture of one plain boot (`otpNN-boot`, `otpNN-requests`); the other scenarios'
    /// transcripts are pinned in the conformance crate.
    fn is_one_boot(&self) -> bool {
        let scenario = self.str("scenario");
        scenario.ends_with("-boot") || scenario.ends_with("-requests")
    }
    fn path(&self) -> PathBuf {
        captures_dir().join(self.file())
    }
    /// The atom tag the release's term_to_binary uses by default (PROTOCOL §5.2).
    fn atom_tag(&self) -> u8 {
        let major: u32 = self
            .str("otp_release")
            .split('.')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        if major >= 26 {
            SMALL_ATOM_UTF8_EXT
        } else {
            ATOM_EXT
        }
    }
}

fn manifest() -> Vec<Entry> {
    let text = std::fs::read_to_string(captures_dir().join("manifest.toml"))
        .expect("captures/manifest.toml");
    let mut entries = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line == "[[capture]]" {
            entries.push(Entry(BTreeMap::new()));
            continue;
        }
        let (k, v) = line
            .split_once(" = ")
            .unwrap_or_else(|| panic!("manifest line: {line}"));
        let e = entries
            .last_mut()
            .expect("key before the first [[capture]]");
        assert!(
            e.0.insert(k.to_string(), v.to_string()).is_none(),
            "duplicate key {k}"
        );
    }
    entries
}

fn entry(file: &str) -> Entry {
    manifest()
        .into_iter()
        .find(|e| e.file() == file)
        .unwrap_or_else(|| panic!("{file} is not in captures/manifest.toml"))
}

// ---------------------------------------------------------------------------------------
// A minimal, independent ETF encoder/decoder for the shapes in this protocol

#[derive(Debug, Clone, PartialEq)]
enum T {
    Int(i64),
    Atom(String),
    Tuple(Vec<T>),
    List(Vec<T>),
    Bin(Vec<u8>),
}

fn atom(tag: u8, name: &str) -> Vec<u8> {
    let mut v = match tag {
        ATOM_EXT => vec![ATOM_EXT, 0, name.len() as u8],
        _ => vec![SMALL_ATOM_UTF8_EXT, name.len() as u8],
    };
    v.extend_from_slice(name.as_bytes());
    v
}

/// term_to_binary/1 without the version byte, for the subset used here.
fn encode(t: &T, atom_tag: u8, out: &mut Vec<u8>) {
    match t {
        T::Int(i @ 0..=255) => out.extend_from_slice(&[97, *i as u8]),
        T::Int(i) if i32::try_from(*i).is_ok() => {
            out.push(98);
            out.extend_from_slice(&(*i as i32).to_be_bytes());
        }
        T::Int(i) => {
            let digits: Vec<u8> = i
                .unsigned_abs()
                .to_le_bytes()
                .into_iter()
                .rev()
                .skip_while(|b| *b == 0)
                .collect();
            out.extend_from_slice(&[110, digits.len() as u8, (*i < 0) as u8]);
            out.extend(digits.iter().rev());
        }
        T::Atom(a) => out.extend(atom(atom_tag, a)),
        T::Tuple(es) => {
            out.extend_from_slice(&[104, es.len() as u8]);
            es.iter().for_each(|e| encode(e, atom_tag, out));
        }
        T::List(es) if es.is_empty() => out.push(106),
        T::List(es) if es.len() <= 65535 && es.iter().all(|e| matches!(e, T::Int(0..=255))) => {
            out.push(107);
            out.extend_from_slice(&(es.len() as u16).to_be_bytes());
            out.extend(es.iter().map(|e| match e {
                T::Int(i) => *i as u8,
                _ => unreachable!(),
            }));
        }
        T::List(es) => {
            out.push(108);
            out.extend_from_slice(&(es.len() as u32).to_be_bytes());
            es.iter().for_each(|e| encode(e, atom_tag, out));
            out.push(106);
        }
        T::Bin(b) => {
            out.push(109);
            out.extend_from_slice(&(b.len() as u32).to_be_bytes());
            out.extend_from_slice(b);
        }
    }
}

fn etf(t: &T, atom_tag: u8) -> Vec<u8> {
    let mut out = vec![131];
    encode(t, atom_tag, &mut out);
    out
}

fn a(s: &str) -> T {
    T::Atom(s.into())
}
fn s(text: &str) -> T {
    T::List(text.chars().map(|c| T::Int(c as i64)).collect())
}
fn tup(es: Vec<T>) -> T {
    T::Tuple(es)
}

/// Parses what io:format("~w") printed: integers, atoms, tuples, lists, <<bytes>>.
fn parse_w(text: &str) -> T {
    fn term(b: &[u8], i: &mut usize) -> T {
        match b[*i] {
            b'{' | b'[' => {
                let close = if b[*i] == b'{' { b'}' } else { b']' };
                let tuple = close == b'}';
                *i += 1;
                let mut es = Vec::new();
                while b[*i] != close {
                    es.push(term(b, i));
                    if b[*i] == b',' {
                        *i += 1;
                    }
                }
                *i += 1;
                if tuple {
                    T::Tuple(es)
                } else {
                    T::List(es)
                }
            }
            b'<' => {
                *i += 2;
                let mut bytes = Vec::new();
                while b[*i] != b'>' {
                    match term(b, i) {
                        T::Int(n) => bytes.push(n as u8),
                        other => panic!("binary element {other:?}"),
                    }
                    if b[*i] == b',' {
                        *i += 1;
                    }
                }
                *i += 2;
                T::Bin(bytes)
            }
            b'-' | b'0'..=b'9' => {
                let start = *i;
                *i += 1;
                while b[*i].is_ascii_digit() {
                    *i += 1;
                }
                T::Int(std::str::from_utf8(&b[start..*i]).unwrap().parse().unwrap())
            }
            b'a'..=b'z' => {
                let start = *i;
                while b[*i].is_ascii_alphanumeric() || b[*i] == b'_' {
                    *i += 1;
                }
                T::Atom(std::str::from_utf8(&b[start..*i]).unwrap().into())
            }
            c => panic!(
                "unexpected {:?} at {i} in {}",
                c as char,
                String::from_utf8_lossy(b)
            ),
        }
    }
    let mut bytes = text.trim().as_bytes().to_vec();
    bytes.push(b' '); // sentinel
    let mut i = 0;
    let t = term(&bytes, &mut i);
    assert_eq!(i, bytes.len() - 1, "trailing text in {text}");
    t
}

/// (atom text, bytes used) of an atom at the start of `b` (any atom tag).
fn atom_at(b: &[u8]) -> Option<(String, usize)> {
    let (len, hdr) = match *b.first()? {
        100 | 118 => (u16::from_be_bytes([*b.get(1)?, *b.get(2)?]) as usize, 3),
        115 | 119 => (*b.get(1)? as usize, 2),
        _ => return None,
    };
    let name = b.get(hdr..hdr + len)?;
    Some((String::from_utf8_lossy(name).into_owned(), hdr + len))
}

/// The command of a request frame: the bare atom, or the tuple's first element.
fn command(frame: &[u8]) -> String {
    assert_eq!(
        frame.first(),
        Some(&131),
        "frame without version byte: {frame:02x?}"
    );
    let at = if frame[1] == 104 { 3 } else { 1 };
    atom_at(&frame[at..])
        .map(|(a, _)| a)
        .unwrap_or_else(|| "other".into())
}

/// Is a reply frame `{_, {error, _}}` or `{error, _}`?
fn is_error_reply(frame: &[u8]) -> bool {
    if frame.get(..3) != Some(&[131, 104, 2]) {
        return false;
    }
    let Some((first, n)) = atom_at(&frame[3..]) else {
        return false;
    };
    if first == "error" {
        return true;
    }
    let rest = &frame[3 + n..];
    rest.get(..2) == Some(&[104, 2]) && atom_at(&rest[2..]).is_some_and(|(a, _)| a == "error")
}

// ---------------------------------------------------------------------------------------
// Facts that hold for every capture

struct Boot<'a> {
    query: &'a capture::Datagram,
    reply: &'a capture::Datagram,
    port: u16,
    stream: &'a TcpStream,
}

fn check_boot<'a>(e: &Entry, c: &'a Capture) -> Boot<'a> {
    let file = e.file();
    let vsn = e.str("erts_version");
    let token = [b"EBOOTQ".as_slice(), vsn.as_bytes()].concat();

    // UDP discovery (PROTOCOL §1).
    let queries: Vec<_> = c
        .datagrams
        .iter()
        .filter(|d| d.dst.port() == EBOOT_PORT)
        .collect();
    let replies: Vec<_> = c
        .datagrams
        .iter()
        .filter(|d| d.src.port() == EBOOT_PORT)
        .collect();
    assert_eq!(queries.len(), e.num("udp_requests"), "{file}: EBOOTQ count");
    assert_eq!(replies.len(), e.num("udp_replies"), "{file}: EBOOTR count");
    assert_eq!(
        c.datagrams.len(),
        queries.len() + replies.len(),
        "{file}: other UDP traffic"
    );
    let query = queries[0];
    assert_eq!(
        query.payload, token,
        "{file}: the request is EBOOTQ + the ERTS version, nothing else"
    );
    assert_eq!(e.str("udp_request_payload").as_bytes(), &token[..]);
    let reply = replies[0];
    assert!(reply.at >= query.at);
    assert_eq!(
        reply.dst, query.src,
        "{file}: the reply goes to the request's source"
    );
    assert_eq!(reply.src, SocketAddrV4::new(*query.dst.ip(), EBOOT_PORT));
    assert_eq!(&reply.payload[..7], b"EBOOTR\0", "{file}: priority 0");
    let port = u16::from_be_bytes([reply.payload[7], reply.payload[8]]);
    assert_eq!(
        &reply.payload[9..],
        vsn.as_bytes(),
        "{file}: the reply carries the server's ERTS version"
    );
    assert_eq!(port as usize, e.num("tcp_port"));

    // One TCP connection, to the port and address of the reply.
    assert_eq!(c.streams.len(), 1, "{file}: TCP streams");
    assert_eq!(e.num("tcp_streams"), 1);
    let stream = &c.streams[0];
    assert_eq!(
        stream.server,
        SocketAddrV4::new(*reply.src.ip(), port),
        "{file}: server"
    );
    assert_eq!(*stream.client.ip(), Ipv4Addr::LOCALHOST);

    // {packet,4} framing, nothing left over, and the manifest's counts (from tshark).
    let (up, down) = (&stream.to_server_frames, &stream.to_client_frames);
    assert_eq!(
        capture::frames_len(up),
        stream.to_server.len(),
        "{file}: partial frame to server"
    );
    assert_eq!(
        capture::frames_len(down),
        stream.to_client.len(),
        "{file}: partial frame to client"
    );
    assert_eq!(stream.to_server.len(), e.num("bytes_to_server"));
    assert_eq!(stream.to_client.len(), e.num("bytes_to_client"));
    assert_eq!(up.len(), e.num("requests"), "{file}: request count");
    assert_eq!(
        down.len(),
        e.num("requests"),
        "{file}: one reply per request"
    );
    assert_eq!(e.num("replies"), e.num("requests"));
    let payloads: Vec<Vec<u8>> = up.iter().map(|f| f.payload.clone()).collect();
    assert_eq!(capture::split_frames(&stream.to_server), payloads);
    assert_eq!(
        capture::join_frames(payloads.iter().map(|p| p.as_slice())),
        stream.to_server
    );
    for f in up.iter().chain(down) {
        assert_eq!(
            f.payload.first(),
            Some(&131),
            "{file}: every frame is term_to_binary output"
        );
    }

    // Strictly one request outstanding (PROTOCOL §2): request k <= reply k <= request k+1.
    for (k, (q, r)) in up.iter().zip(down).enumerate() {
        assert!(r.at >= q.at, "{file}: reply {k} before its request");
        if let Some(next) = up.get(k + 1) {
            assert!(
                next.at >= r.at,
                "{file}: request {} before reply {k}",
                k + 1
            );
        }
    }
    // The client connects only after the 500 ms collect window (PROTOCOL §1.4).
    assert!(
        up[0].at >= reply.at + Duration::from_millis(450),
        "{file}: {:?}",
        up[0].at - reply.at
    );

    // Per-command counts, errors, atom encoding.
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for f in up {
        *counts.entry(command(&f.payload)).or_default() += 1;
    }
    let manifest_counts: BTreeMap<String, usize> =
        e.commands().into_iter().filter(|(_, n)| *n > 0).collect();
    assert_eq!(counts, manifest_counts, "{file}: per-command counts");
    let errors = down.iter().filter(|f| is_error_reply(&f.payload)).count();
    assert_eq!(errors, e.num("error_replies"), "{file}: error replies");

    // The first request is the boot script, {get,"<ROOT>/bin/start.boot"} (PROTOCOL §6.1).
    let tag = e.atom_tag();
    let first = &up[0].payload;
    let prefix = [&[131, 104, 2][..], &atom(tag, "get"), &[107]].concat();
    assert!(
        first.starts_with(&prefix),
        "{file}: first request {first:02x?}"
    );
    assert!(
        first.ends_with(b"/bin/start.boot"),
        "{file}: first request is not start.boot"
    );
    assert!(
        down[0].payload.starts_with(
            &etf(
                &tup(vec![a("get"), tup(vec![a("ok"), T::Bin(vec![])])]),
                tag
            )[..9]
        ),
        "{file}: start.boot is served as {{get,{{ok,Binary}}}}"
    );
    Boot {
        query,
        reply,
        port,
        stream,
    }
}

#[test]
fn manifest_lists_every_pcap() {
    let mut on_disk: Vec<String> = std::fs::read_dir(captures_dir())
        .expect("captures/")
        .map(|d| d.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".pcap"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = manifest().iter().map(Entry::file).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
    assert!(listed.iter().any(|f| f == "otp25-boot.pcap"));
    assert!(listed.iter().any(|f| f == "otp25-requests.pcap"));
    for e in manifest() {
        for key in [
            "scenario",
            "otp_release",
            "erts_version",
            "server_cwd",
            "shows",
        ] {
            assert!(!e.str(key).is_empty(), "{}: {key}", e.file());
        }
        assert_eq!(e.file(), format!("{}.pcap", e.str("scenario")));
        e.num("requests");
        if !e.is_one_boot() {
            continue;
        }
        assert!(e
            .str("client_command")
            .contains("-loader inet -hosts 127.0.0.1"));
        assert!(e.str("server_command").contains("erl_boot_server:start"));
    }
}

#[test]
fn every_capture_is_one_boot() {
    for e in manifest().into_iter().filter(Entry::is_one_boot) {
        let c = capture::read(&e.path());
        check_boot(&e, &c);
    }
}

#[test]
fn otp25_boot() {
    let e = entry("otp25-boot.pcap");
    let c = capture::read(&e.path());
    let first_query = c
        .datagrams
        .iter()
        .find(|d| d.dst.port() == EBOOT_PORT)
        .unwrap();
    assert!(first_query.payload.starts_with(b"EBOOTQ13.1.5"));
    let reply = c
        .datagrams
        .iter()
        .find(|d| d.payload.starts_with(b"EBOOTR\0"))
        .unwrap();
    let port = u16::from_be_bytes([reply.payload[7], reply.payload[8]]);
    assert_eq!(c.streams.len(), 1);
    let st = &c.streams[0];
    assert_eq!(st.server.port(), port);
    assert_eq!(st.to_server_frames[0].payload[0], 131);
    assert_eq!(st.to_server_frames.len(), e.num("requests"));
    assert_eq!(st.to_client_frames.len(), e.num("requests"));
    let b = check_boot(&e, &c);
    assert_eq!(b.port, port);
    // OTP 25 encodes atoms as ATOM_EXT: {get,"/usr/lib/erlang/bin/start.boot"}.
    let want = etf(
        &tup(vec![a("get"), s("/usr/lib/erlang/bin/start.boot")]),
        ATOM_EXT,
    );
    assert_eq!(st.to_server_frames[0].payload, want);
    assert_eq!(&want[..6], &[131, 104, 2, 100, 0, 3]);
    // OTP 25 checks patch paths with read_file_info right after start.boot (PROTOCOL §6.1).
    assert_eq!(command(&st.to_server_frames[1].payload), "read_file_info");
    // The single get_cwd of a boot is the bare atom, answered with the server's cwd.
    let cwd = e.str("server_cwd");
    let k = st
        .to_server_frames
        .iter()
        .position(|f| command(&f.payload) == "get_cwd")
        .unwrap();
    assert_eq!(
        st.to_server_frames[k].payload,
        [131, 100, 0, 7]
            .iter()
            .copied()
            .chain(*b"get_cwd")
            .collect::<Vec<_>>()
    );
    assert_eq!(
        st.to_client_frames[k].payload,
        etf(
            &tup(vec![a("get_cwd"), tup(vec![a("ok"), s(&cwd)])]),
            ATOM_EXT
        )
    );
    let _ = (b.query, b.reply, b.stream);
}

#[test]
fn otp27_boot_if_recorded() {
    let Some(e) = manifest()
        .into_iter()
        .find(|e| e.file() == "otp27-boot.pcap")
    else {
        eprintln!("no otp27-boot.pcap in the manifest; skipped");
        return;
    };
    let c = capture::read(&e.path());
    let b = check_boot(&e, &c);
    assert_eq!(b.query.payload, b"EBOOTQ15.2.7");
    // OTP 26+ encodes atoms as SMALL_ATOM_UTF8_EXT (PROTOCOL §5.2).
    let first = &b.stream.to_server_frames[0].payload;
    assert_eq!(
        first,
        &etf(
            &tup(vec![a("get"), s("/usr/lib/erlang/bin/start.boot")]),
            SMALL_ATOM_UTF8_EXT
        )
    );
    // code_path_choice is strict in 27: no patch-path read_file_info right after start.boot.
    assert_eq!(command(&b.stream.to_server_frames[1].payload), "get");
}

/// The 14 explicit erl_prim_loader calls of a *-requests capture, with the wire request
/// each one sends (PROTOCOL §3.1).
fn explicit_requests() -> Vec<(&'static str, T)> {
    let d = "/tmp/erlboot-capture-fs";
    let p = |name: &str| s(&format!("{d}/{name}"));
    vec![
        ("list_dir", tup(vec![a("list_dir"), s(d)])),
        (
            "read_file_info",
            tup(vec![a("read_file_info"), p("file.txt")]),
        ),
        ("read_file_info", tup(vec![a("read_file_info"), p("link")])),
        (
            "read_file_info",
            tup(vec![a("read_file_info"), p("dangling")]),
        ),
        (
            "read_link_info",
            tup(vec![a("read_link_info"), p("file.txt")]),
        ),
        ("read_link_info", tup(vec![a("read_link_info"), p("link")])),
        (
            "read_link_info",
            tup(vec![a("read_link_info"), p("dangling")]),
        ),
        ("get_file", tup(vec![a("get"), p("file.txt")])),
        ("get_file", tup(vec![a("get"), p("missing")])),
        ("get_file", tup(vec![a("get"), p("subdir")])),
        ("get_file", tup(vec![a("get"), p("\u{20ac}x")])),
        ("get_cwd", a("get_cwd")),
        ("get_cwd", tup(vec![a("get_cwd"), s("c:")])),
        ("list_dir", tup(vec![a("list_dir"), p("missing-dir")])),
    ]
}

fn check_requests(e: &Entry) {
    let file = e.file();
    let c = capture::read(&e.path());
    let b = check_boot(e, &c);
    let tag = e.atom_tag();
    let up = &b.stream.to_server_frames;
    let down = &b.stream.to_client_frames;

    let calls = explicit_requests();
    let wire: Vec<Vec<u8>> = calls.iter().map(|(_, t)| etf(t, tag)).collect();
    let start = up
        .iter()
        .position(|f| f.payload == wire[0])
        .unwrap_or_else(|| panic!("{file}: no list_dir of the test dir"));
    let got: Vec<&Vec<u8>> = up[start..start + wire.len()]
        .iter()
        .map(|f| &f.payload)
        .collect();
    assert_eq!(
        got,
        wire.iter().collect::<Vec<_>>(),
        "{file}: the 14 requests, contiguous and byte-exact"
    );
    // "€x" is not Latin-1, so that filename is a LIST_EXT, not a STRING_EXT (PROTOCOL §5.2).
    let euro = &wire[10];
    assert_eq!(euro[3 + atom(tag, "get").len()], 108);

    let expected_path = captures_dir().join(e.str("expected"));
    let expected = std::fs::read_to_string(&expected_path).expect("expected.txt");
    let lines: Vec<&str> = expected.lines().collect();
    assert_eq!(
        lines.len(),
        calls.len(),
        "{file}: lines in {}",
        expected_path.display()
    );

    let reply_of = |k: usize| -> &Frame { &down[start + k] };
    for (k, ((api, req), line)) in calls.iter().zip(&lines).enumerate() {
        assert!(
            line.starts_with(&format!("erl_prim_loader:{api}(")),
            "{file}: line {k}: {line}"
        );
        let (_, printed) = line.split_once(" => ").unwrap();
        let returned = parse_w(printed);
        let cmd = match req {
            T::Tuple(es) => es[0].clone(),
            atom => atom.clone(),
        };
        let reply = &reply_of(k).payload;
        match returned {
            // get_file returns {ok, Binary, FullName}; the wire carries {get, {ok, Binary}}.
            T::Tuple(es) if es.len() == 3 => {
                assert_eq!(
                    es[2],
                    match req {
                        T::Tuple(r) => r[1].clone(),
                        _ => unreachable!(),
                    }
                );
                let want = tup(vec![cmd, tup(vec![a("ok"), es[1].clone()])]);
                assert_eq!(reply, &etf(&want, tag), "{file}: reply {k}");
            }
            // The other calls return the {ok, X} of the reply {Cmd, {ok, X}} as it is.
            ok @ T::Tuple(_) => {
                assert_eq!(reply, &etf(&tup(vec![cmd, ok]), tag), "{file}: reply {k}");
            }
            // An error reply {Cmd, {error, Reason}} comes back as plain `error`.
            T::Atom(err) if err == "error" => assert!(is_error_reply(reply), "{file}: reply {k}"),
            other => panic!("{file}: line {k}: {other:?}"),
        }
    }
    // The reasons that the API hides (PROTOCOL §3.2).
    let err =
        |cmd: &str, reason: &str| etf(&tup(vec![a(cmd), tup(vec![a("error"), a(reason)])]), tag);
    assert_eq!(
        reply_of(3).payload,
        err("read_file_info", "enoent"),
        "dangling link"
    );
    assert_eq!(reply_of(8).payload, err("get", "enoent"));
    assert_eq!(reply_of(9).payload, err("get", "eisdir"));
    assert_eq!(
        reply_of(12).payload,
        err("get_cwd", "enotsup"),
        "get_cwd(\"c:\") on Unix; tag without the drive"
    );
    assert_eq!(reply_of(13).payload, err("list_dir", "enoent"));
    // get_cwd answers with the server node's cwd.
    let cwd = e.str("server_cwd");
    assert_eq!(
        reply_of(11).payload,
        etf(&tup(vec![a("get_cwd"), tup(vec![a("ok"), s(&cwd)])]), tag)
    );
    // The listing has every name of the directory once, "é" as [233] and "€x" as [8364,120].
    let T::Tuple(ok) = parse_w(lines[0].split_once(" => ").unwrap().1) else {
        panic!()
    };
    let T::List(names) = &ok[1] else { panic!() };
    let mut names: Vec<T> = names.clone();
    names.sort_by_key(|n| format!("{n:?}"));
    let mut want = vec![
        s("file.txt"),
        s("subdir"),
        s("link"),
        s("dangling"),
        s("\u{e9}"),
        s("\u{20ac}x"),
    ];
    want.sort_by_key(|n| format!("{n:?}"));
    assert_eq!(names, want);
    // read_link_info of a symlink is type symlink; of the dangling one, access none.
    assert!(contains(&reply_of(5).payload, &atom(tag, "symlink")));
    assert!(contains(&reply_of(6).payload, &atom(tag, "none")));
    assert!(contains(&reply_of(1).payload, &atom(tag, "regular")));
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn otp25_requests_match_expected() {
    check_requests(&entry("otp25-requests.pcap"));
}

#[test]
fn otp27_requests_match_expected_if_recorded() {
    match manifest()
        .into_iter()
        .find(|e| e.file() == "otp27-requests.pcap")
    {
        Some(e) => check_requests(&e),
        None => eprintln!("no otp27-requests.pcap in the manifest; skipped"),
    }
}

#[test]
fn parse_w_reads_what_erlang_printed() {
    assert_eq!(
        parse_w("{ok,<<104,105>>,[47,8364]}"),
        tup(vec![
            a("ok"),
            T::Bin(b"hi".to_vec()),
            T::List(vec![T::Int(47), T::Int(8364)])
        ])
    );
    assert_eq!(etf(&T::Int(-1), ATOM_EXT), [131, 98, 255, 255, 255, 255]);
    assert_eq!(
        etf(&T::Int(5_000_000_000), ATOM_EXT),
        [131, 110, 5, 0, 0, 0xF2, 0x05, 0x2A, 0x01]
    );
    assert_eq!(
        etf(&T::Int(2_147_483_648), ATOM_EXT),
        [131, 110, 4, 0, 0, 0, 0, 0x80]
    );
    // Golden vector of PROTOCOL §5.4.
    let hello = tup(vec![a("get"), s("/tmp/bs/hello.txt")]);
    let mut framed = capture::join_frames([etf(&hello, ATOM_EXT).as_slice()]);
    assert_eq!(&framed[..8], &[0, 0, 0, 0x1D, 0x83, 0x68, 0x02, 0x64]);
    framed = capture::join_frames([etf(&hello, SMALL_ATOM_UTF8_EXT).as_slice()]);
    assert_eq!(&framed[..8], &[0, 0, 0, 0x1C, 0x83, 0x68, 0x02, 0x77]);
}

#[test]
fn split_frames_handles_empty_and_zero_length_frames() {
    assert!(capture::split_frames(&[]).is_empty());
    assert_eq!(
        capture::split_frames(&[0, 0, 0, 0, 0, 0, 0, 1, 131]),
        vec![vec![], vec![131]]
    );
}

#[test]
#[should_panic(expected = "trailing partial frame at offset 5")]
fn split_frames_panics_on_a_partial_frame() {
    capture::split_frames(&[0, 0, 0, 1, 131, 0, 0, 0, 2, 131]);
}

#[test]
#[should_panic(expected = "trailing partial frame at offset 5")]
fn split_frames_panics_on_a_partial_prefix() {
    capture::split_frames(&[0, 0, 0, 1, 131, 0, 0]);
}

#[test]
#[should_panic(expected = "/nonexistent/erlboot.pcap")]
fn a_missing_file_names_itself() {
    capture::read(std::path::Path::new("/nonexistent/erlboot.pcap"));
}
