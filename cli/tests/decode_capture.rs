//! `erlboot decode FILE.pcap` as a user runs it: a capture's boot traffic, one message per
//! line, from a file or from standard input; the raw-bytes modes beside it.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn decode(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_erlboot"))
        .arg("decode")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn capture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../captures")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn text_has_one_line_per_message() {
    let out = decode(&[&capture("otp27-boot.pcap")]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // query, answer, open, 196 requests and replies, two FINs
    assert_eq!(lines.len(), 3 + 2 * 196 + 2);
    assert!(lines[3].ends_with(r#"s1 c2s request {get,"/usr/lib/erlang/bin/start.boot"}"#));
    assert!(
        lines[4].ends_with("s1 s2c reply {get,{ok,<<6917 bytes>>}}"),
        "{}",
        lines[4]
    );
    assert!(out.stderr.is_empty());
}

#[test]
fn json_lines_carry_the_required_fields() {
    let out = decode(&["--json", &capture("otp25-requests.pcap")]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut kinds = std::collections::BTreeSet::new();
    let mut last_time = 0.0;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let time = v["time"].as_f64().unwrap();
        assert!(time >= last_time, "capture order");
        last_time = time;
        assert_eq!(v["session"], 1);
        assert!(["c2s", "s2c"].contains(&v["dir"].as_str().unwrap()));
        assert!(v["term"].is_string());
        kinds.insert(v["kind"].as_str().unwrap().to_string());
    }
    let kinds: Vec<&str> = kinds.iter().map(String::as_str).collect();
    assert_eq!(
        kinds,
        ["answer", "close", "open", "query", "reply", "request"]
    );
}

fn run(args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_erlboot"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_capture_reads_the_same_from_standard_input() {
    let pcap = capture("otp25-requests.pcap");
    let bytes = std::fs::read(&pcap).unwrap();
    for extra in [&[][..], &["--json"][..]] {
        let from_file = decode(&[&[pcap.as_str()][..], extra].concat());
        assert!(from_file.status.success(), "{from_file:?}");
        assert!(from_file.stdout.len() > 50_000);
        let from_stdin = run(&[&["decode"][..], extra].concat(), &bytes);
        assert!(from_stdin.status.success(), "{from_stdin:?}");
        assert_eq!(from_stdin.stdout, from_file.stdout);
    }
}

#[test]
fn the_raw_modes_stay() {
    let term = decode(&["--hex", "83 68 02 64 00 02 6f 6b 6a"]);
    assert_eq!(String::from_utf8(term.stdout).unwrap(), "{ok,[]}\n");
    let frames = decode(&["--as", "frames", "--hex", "0000000b836400076765745f637764"]);
    assert_eq!(
        String::from_utf8(frames.stdout).unwrap(),
        "    1 request get_cwd\n"
    );
}

#[test]
fn a_capture_that_does_not_parse_fails_with_the_reason() {
    // A pcapng magic and a broken section header.
    let out = run(&["decode"], &[0x0A, 0x0D, 0x0D, 0x0A, 1, 2, 3]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("file header"), "{err}");
    let out = decode(&["/nonexistent.pcap"]);
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("/nonexistent.pcap"));
}
