//! `erlboot dissector`'s Lua run by the real tshark over every committed capture: the boot
//! messages it finds, frame by frame and kind by kind, must be those of erlboot's transcript,
//! and the terms it prints must be erlboot's.
//!
//! tshark is required: without it the test fails (CI installs it with `.ci/install-otp`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use erlboot_conformance::render::message_term;
use erlboot_conformance::transcript::{Transcript, TranscriptOptions};

/// The kinds both sides report (the dissector shows no connection opening, closing or gap).
const KINDS: [&str; 4] = ["query", "answer", "request", "reply"];

/// The dissector shows terms up to this many bytes whole (`TEXT_MAX` in the script).
const TEXT_SHOWN: usize = 400;

fn captures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../captures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no captures in {}", dir.display());
    files
}

/// Writes the dissector with the CLI, as a user would.
fn dissector(dir: &Path) -> PathBuf {
    let path = dir.join("eboot.lua");
    let out = Command::new(env!("CARGO_BIN_EXE_erlboot"))
        .args(["dissector", "-o"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty());
    path
}

/// One boot message as tshark showed it.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Shown {
    frame: u64,
    kind: String,
    term: Option<String>,
}

/// Runs tshark with the dissector over a capture, in two passes so that a connection is
/// known as boot traffic even where its EBOOTR comes later in the file (as the transcript
/// knows it).
fn tshark(lua: &Path, capture: &Path) -> Vec<Shown> {
    let out = Command::new("tshark")
        .arg("-X")
        .arg(format!("lua_script:{}", lua.display()))
        .arg("-2")
        .arg("-r")
        .arg(capture)
        .args(["-Y", "eboot", "-T", "json"])
        .args(["-e", "frame.number", "-e", "eboot.kind", "-e", "eboot.term"])
        .output()
        .unwrap_or_else(|e| {
            panic!("tshark could not be run ({e}): install it (apt-get install tshark)")
        });
    assert!(
        out.status.success(),
        "tshark failed on {} (if it says eboot.kind is not a valid field, the Lua did not \
         load: Lua disabled, e.g. for root by an init.lua with \
         run_user_scripts_when_superuser = false):\n{}",
        capture.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let packets: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut shown = Vec::new();
    for packet in packets.as_array().unwrap() {
        let layers = &packet["_source"]["layers"];
        let strings = |field: &str| -> Vec<String> {
            layers[field].as_array().map_or_else(Vec::new, |values| {
                values
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect()
            })
        };
        let frame: u64 = strings("frame.number")[0].parse().unwrap();
        // Discovery messages carry no term; every TCP message carries one.
        let mut terms = strings("eboot.term").into_iter();
        for kind in strings("eboot.kind") {
            let term = matches!(kind.as_str(), "request" | "reply")
                .then(|| terms.next().expect("a term per TCP message"));
            shown.push(Shown { frame, kind, term });
        }
    }
    shown.sort();
    shown
}

fn transcript(capture: &Path) -> Vec<Shown> {
    let transcript = Transcript::read(capture, &TranscriptOptions::default()).unwrap();
    let mut shown: Vec<Shown> = transcript
        .messages()
        .into_iter()
        .filter(|(_, m)| KINDS.contains(&m.body.kind()))
        .map(|(_, m)| {
            let kind = m.body.kind();
            let term = matches!(kind, "request" | "reply").then(|| message_term(m));
            Shown {
                frame: m.number,
                kind: kind.to_string(),
                term,
            }
        })
        .collect();
    shown.sort();
    shown
}

fn counts(shown: &[Shown]) -> BTreeMap<&str, usize> {
    let mut counts: BTreeMap<&str, usize> = KINDS.iter().map(|&k| (k, 0)).collect();
    for s in shown {
        *counts.get_mut(s.kind.as_str()).unwrap() += 1;
    }
    counts
}

#[test]
fn tshark_with_the_dissector_finds_the_transcripts_messages() {
    let scratch = std::env::temp_dir().join(format!("erlboot-dissector-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let lua = dissector(&scratch);
    for capture in captures() {
        let name = capture.file_name().unwrap().to_string_lossy().to_string();
        let by_tshark = tshark(&lua, &capture);
        let by_erlboot = transcript(&capture);
        let (tshark_counts, erlboot_counts) = (counts(&by_tshark), counts(&by_erlboot));
        eprintln!("{name}: tshark {tshark_counts:?}, transcript {erlboot_counts:?}");
        assert_eq!(tshark_counts, erlboot_counts, "{name}: messages per kind");
        assert!(
            erlboot_counts.values().all(|&n| n > 0),
            "{name}: {erlboot_counts:?}"
        );

        // The same messages in the same frames, with the same terms where shown whole.
        let mut whole = 0;
        for (t, e) in by_tshark.iter().zip(&by_erlboot) {
            assert_eq!((t.frame, &t.kind), (e.frame, &e.kind), "{name}");
            if let (Some(shown), Some(expected)) = (&t.term, &e.term) {
                if expected.len() <= TEXT_SHOWN {
                    assert_eq!(shown, expected, "{name}: frame {}", t.frame);
                    whole += 1;
                } else {
                    let cut = shown.strip_suffix("...").expect("a cut term ends in ...");
                    assert!(cut.len() + 4 > TEXT_SHOWN, "{name}: frame {}", t.frame);
                    assert!(expected.starts_with(cut), "{name}: frame {}", t.frame);
                }
            }
        }
        let tcp = erlboot_counts["request"] + erlboot_counts["reply"];
        assert!(
            whole * 2 > tcp,
            "{name}: only {whole} of {tcp} terms compared whole"
        );
    }
    std::fs::remove_dir_all(&scratch).unwrap();
}

#[test]
fn dissector_prints_the_script_on_standard_output() {
    let out = Command::new(env!("CARGO_BIN_EXE_erlboot"))
        .arg("dissector")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("-- eboot.lua"));
    assert!(text.contains("DissectorTable.get(\"udp.port\"):add(EBOOT_PORT, eboot)"));
}
