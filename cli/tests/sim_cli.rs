//! `erlboot sim` end to end, as a user runs it: the report it prints, the JSON it writes, the
//! baseline it measures against, and what it says of bad arguments. No timing is asserted.

use std::process::{Command, Output};

use erlboot_support::json;

const ERLBOOT: &str = env!("CARGO_BIN_EXE_erlboot");

fn sim(args: &[&str]) -> Output {
    Command::new(ERLBOOT)
        .arg("sim")
        .args(args)
        .output()
        .expect("run erlboot sim")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A herd's nodes spread over the two servers as their discovery answers race; the baseline
/// follows them, so it lasts as long in simulated time, and moves the same bytes.
#[test]
fn a_run_prints_its_seed_first_and_writes_the_json_the_baseline_included() {
    let path = json::scratch("sim", "baseline");
    let out = sim(&[
        "herd-10000",
        "--clients",
        "40",
        "--seed",
        "7",
        "--baseline",
        "--json",
        path.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.starts_with("seed        7\n"), "{stdout}");
    assert!(stdout.contains("real/baseline"), "{stdout}");

    let json = json::read(&path);
    for name in [
        "seed",
        "scenario",
        "clients",
        "booted",
        "boot_ms",
        "discovery_rounds",
        "reconnects",
        "resends",
        "stalls",
        "longest_stall_ms",
        "hung",
        "bytes",
        "faults",
        "violations",
        "sim_seconds",
        "wall_seconds",
        "trace_hash",
    ] {
        assert!(json.get(name).is_some(), "no `{name}` in {json}");
    }
    assert_eq!(json["seed"], 7);
    assert_eq!(json["clients"], 40);
    assert_eq!(json["booted"], 40);
    assert_eq!(json["discovery_rounds"], 40);

    let baseline = &json["baseline"];
    assert_eq!(baseline["booted"], 40, "{baseline}");
    let real = json["sim_seconds"].as_f64().unwrap();
    let floor = baseline["sim_seconds"].as_f64().unwrap();
    // Its nodes connect when discovery ended for the real ones (half a second in at least)
    // and where they did; spread in turn from their start, they would be done half a second
    // sooner.
    assert!(
        (real - floor).abs() < 0.05 * real,
        "the baseline lasted {floor} s, the real run {real} s"
    );
    assert!(baseline["ratio"].as_f64().unwrap() > 0.0, "{baseline}");
}

#[test]
fn the_same_seed_twice_is_checked_to_give_the_same_trace() {
    let out = sim(&["server-restart", "--clients", "10", "--check-determinism"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("determinism the same trace hash twice"),
        "{stdout}"
    );
}

#[test]
fn an_unknown_scenario_is_refused_with_the_names_there_are() {
    let out = sim(&["no-such-scenario"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("no-such-scenario"), "{stderr}");
    assert!(stderr.contains("herd-10000"), "{stderr}");
}
