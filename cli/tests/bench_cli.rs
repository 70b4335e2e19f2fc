//! `erlboot bench` end to end, as a user runs it: the servers it starts, the table it prints
//! and the JSON it writes. Needs root (the bench makes its own network namespace), `ip`, and
//! for the OTP tests OTP 25's `erl`; a missing one fails loudly. No timing is asserted: only
//! that every number is there and sane.

use std::path::PathBuf;
use std::process::{Command, Output};

use erlboot_support::json;
use serde_json::Value;

const ERLBOOT: &str = env!("CARGO_BIN_EXE_erlboot");

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test needs root: erlboot bench runs in a network namespace of its own"
    );
}

fn require_erl() {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join("erl").is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "this test needs OTP 25's `erl` on PATH; install it with `bash .ci/install-otp`"
    );
}

fn bench(args: &[&str], path: Option<&str>) -> (Output, String) {
    let mut command = Command::new(ERLBOOT);
    command.arg("bench").args(args);
    if let Some(path) = path {
        command.env("PATH", path);
    }
    let out = command.output().expect("run erlboot bench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "erlboot bench {args:?} failed ({})\n--- stdout\n{stdout}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    (out, stdout)
}

/// Checks a result object has every field the issue names, with sane values.
fn check_row(row: &Value, target: &str, concurrency: u64) {
    let fields: Vec<&str> = row
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = [
        "target",
        "concurrency",
        "boots_per_s",
        "mb_per_s",
        "p50_us",
        "p99_us",
        "p999_us",
        "cpu_ms_per_boot",
        "peak_rss_mb",
    ];
    expected.sort();
    assert_eq!(fields, expected, "{row}");
    assert_eq!(row["target"], target, "{row}");
    assert_eq!(row["concurrency"], concurrency, "{row}");
    let number = |name: &str| {
        row[name]
            .as_f64()
            .unwrap_or_else(|| panic!("{name} is not a number: {row}"))
    };
    assert!(number("boots_per_s") > 0.0, "{row}");
    // A boot moves about 4 MB of files.
    let mb_per_boot = number("mb_per_s") / number("boots_per_s");
    assert!(
        (1.0..20.0).contains(&mb_per_boot),
        "{mb_per_boot} MB per boot: {row}"
    );
    let (p50, p99, p999) = (number("p50_us"), number("p99_us"), number("p999_us"));
    assert!(p50 >= 1.0 && p50 <= p99 && p99 <= p999, "{row}");
    assert!(number("cpu_ms_per_boot") > 0.0, "{row}");
    assert!(number("peak_rss_mb") > 1.0, "{row}");
}

#[test]
fn erlboot_and_the_ceiling_end_to_end_with_json() {
    require_root();
    let path = json::scratch("bench", "ceiling");
    let (_, stdout) = bench(
        &[
            "--spawn",
            "erlboot,ceiling",
            "--duration",
            "1",
            "--rounds",
            "1",
            "--concurrency",
            "1",
            "--json",
            path.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        stdout.contains("in network namespace erlboot-bench-"),
        "{stdout}"
    );
    assert!(stdout.contains("erlboot/ceiling"), "{stdout}");
    assert!(!stdout.contains("failed boots"), "{stdout}");
    let json = json::read(&path);
    let top: Vec<&String> = json.as_object().unwrap().keys().collect();
    assert_eq!(top, ["ratios", "results"], "{json}");
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{json}");
    check_row(&results[0], "erlboot", 1);
    check_row(&results[1], "ceiling", 1);
    let ratio = json["ratios"]["erlboot/ceiling"]["1"].as_f64().unwrap();
    let expected =
        results[0]["boots_per_s"].as_f64().unwrap() / results[1]["boots_per_s"].as_f64().unwrap();
    assert!((ratio - expected).abs() < 1e-9, "{json}");
    assert_eq!(
        json["ratios"]["erlboot/otp"],
        serde_json::json!({}),
        "{json}"
    );
}

#[test]
fn otp_really_runs() {
    require_root();
    require_erl();
    let path = json::scratch("bench", "otp");
    let (_, stdout) = bench(
        &[
            "--spawn",
            "otp",
            "--duration",
            "1",
            "--rounds",
            "1",
            "--concurrency",
            "1",
            "--json",
            path.to_str().unwrap(),
        ],
        None,
    );
    assert!(!stdout.contains("skipped"), "{stdout}");
    let json = json::read(&path);
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{json}");
    check_row(&results[0], "otp", 1);
    // The measured process is the BEAM: far bigger than erlboot or the ceiling.
    assert!(results[0]["peak_rss_mb"].as_f64().unwrap() > 15.0, "{json}");
}

#[test]
fn without_erl_otp_is_skipped_with_the_reason() {
    require_root();
    let ip = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .into_iter()
        .find(|dir| PathBuf::from(dir).join("ip").is_file())
        .expect("`ip` (iproute2) is installed");
    assert!(
        !PathBuf::from(ip).join("erl").exists(),
        "{ip} holds both ip and erl: cannot hide erl from the bench"
    );
    let (_, stdout) = bench(
        &[
            "--spawn",
            "all",
            "--duration",
            "0.5",
            "--rounds",
            "1",
            "--concurrency",
            "1",
        ],
        Some(ip),
    );
    assert!(
        stdout.contains("otp skipped: `erl` is not installed"),
        "{stdout}"
    );
    assert!(stdout.contains("erlboot/ceiling"), "{stdout}");
}

#[test]
fn a_small_herd_boots_from_erlboot_and_from_otp() {
    require_root();
    require_erl();
    let path = json::scratch("bench", "herd");
    let (_, stdout) = bench(
        &[
            "--herd",
            "5",
            "--spawn",
            "erlboot,otp",
            "--json",
            path.to_str().unwrap(),
        ],
        None,
    );
    assert!(!stdout.contains("skipped"), "{stdout}");
    let json = json::read(&path);
    let herd = json["herd"].as_array().unwrap();
    assert_eq!(herd.len(), 2, "{json}");
    for (row, target) in herd.iter().zip(["erlboot", "otp"]) {
        assert_eq!(row["target"], target, "{json}");
        assert_eq!(row["nodes"], 5, "{json}");
        assert_eq!(row["booted"], 5, "{json}");
        let all = row["all_booted_s"].as_f64().unwrap();
        let (p50, max) = (
            row["p50_ms"].as_f64().unwrap(),
            row["max_ms"].as_f64().unwrap(),
        );
        // Discovery alone waits one collect window of 500 ms.
        assert!(p50 >= 500.0 && p50 <= max, "{json}");
        assert!((all * 1e3 - max).abs() < 1.0, "{json}");
    }
}

#[test]
fn idle_connections_are_answered_and_held() {
    require_root();
    let path = json::scratch("bench", "idle");
    let (_, stdout) = bench(
        &[
            "--idle",
            "300",
            "--spawn",
            "erlboot",
            "--json",
            path.to_str().unwrap(),
        ],
        None,
    );
    assert!(stdout.contains("300 idle connections"), "{stdout}");
    let json = json::read(&path);
    let rows = json["idle"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{json}");
    let row = &rows[0];
    assert_eq!(row["target"], "erlboot", "{json}");
    assert_eq!(
        (row["answered"].as_u64(), row["failed"].as_u64()),
        (Some(300), Some(0))
    );
    assert!(row["all_answered_s"].as_f64().unwrap() > 0.0, "{json}");
    assert!(row["rss_before_mb"].as_f64().unwrap() > 1.0, "{json}");
    assert!(row["rss_open_mb"].as_f64().unwrap() > 1.0, "{json}");
}
