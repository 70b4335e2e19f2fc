//! `erlboot-conformance decode` as a user runs it (and as `erlboot decode FILE.pcap` runs it).

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn decode(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_erlboot-conformance"))
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

#[test]
fn a_file_that_is_not_a_capture_fails_clearly() {
    let out = decode(&[concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("not a capture file"), "{err}");
    let out = decode(&["/nonexistent.pcap"]);
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("/nonexistent.pcap: "));
}
