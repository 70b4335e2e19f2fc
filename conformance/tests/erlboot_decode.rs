//! `erlboot decode FILE.pcap` (the main binary) gives what `erlboot-conformance decode`
//! gives, from a file or from standard input, and its raw-bytes modes are untouched.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The `erlboot` binary beside this package's, built first (it belongs to another package,
/// which `cargo test -p erlboot-conformance` does not build on its own).
fn erlboot() -> PathBuf {
    let ours = Path::new(env!("CARGO_BIN_EXE_erlboot-conformance"));
    let dir = ours.parent().unwrap();
    let mut build = Command::new(env!("CARGO"));
    build
        .args(["build", "--quiet", "-p", "erlboot", "--bin", "erlboot"])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    if dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("cargo runs");
    assert!(status.success(), "cargo build --bin erlboot failed");
    let exe = dir.join("erlboot");
    assert!(exe.exists(), "{} was not built", exe.display());
    exe
}

fn run(exe: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(exe)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(bytes) = stdin {
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    child.wait_with_output().unwrap()
}

#[test]
fn erlboot_decode_reads_captures_like_the_conformance_command() {
    let erlboot = erlboot();
    let conformance = Path::new(env!("CARGO_BIN_EXE_erlboot-conformance"));
    let pcap = Path::new(env!("CARGO_MANIFEST_DIR")).join("../captures/otp25-requests.pcap");
    let pcap = pcap.to_str().unwrap();
    for json in [false, true] {
        let extra: &[&str] = if json { &["--json"] } else { &[] };
        let expected = run(conformance, &[&["decode", pcap][..], extra].concat(), None);
        assert!(expected.status.success());
        assert!(expected.stdout.len() > 50_000);
        let from_file = run(&erlboot, &[&["decode", pcap][..], extra].concat(), None);
        assert!(from_file.status.success(), "{from_file:?}");
        assert_eq!(from_file.stdout, expected.stdout);
        let bytes = std::fs::read(pcap).unwrap();
        let from_stdin = run(&erlboot, &[&["decode"][..], extra].concat(), Some(&bytes));
        assert!(from_stdin.status.success());
        assert_eq!(from_stdin.stdout, expected.stdout);
    }
}

#[test]
fn erlboot_decode_keeps_its_raw_modes() {
    let erlboot = erlboot();
    let term = run(
        &erlboot,
        &["decode", "--hex", "83 68 02 64 00 02 6f 6b 6a"],
        None,
    );
    assert_eq!(String::from_utf8(term.stdout).unwrap(), "{ok,[]}\n");
    let frames = run(
        &erlboot,
        &[
            "decode",
            "--as",
            "frames",
            "--hex",
            "0000000b836400076765745f637764",
        ],
        None,
    );
    assert_eq!(
        String::from_utf8(frames.stdout).unwrap(),
        "    1 request get_cwd\n"
    );
}

#[test]
fn a_capture_that_does_not_parse_fails_with_the_reason() {
    let erlboot = erlboot();
    // A pcapng magic and a broken section header.
    let out = run(
        &erlboot,
        &["decode"],
        Some(&[0x0A, 0x0D, 0x0D, 0x0A, 1, 2, 3]),
    );
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("file header"), "{err}");
}
