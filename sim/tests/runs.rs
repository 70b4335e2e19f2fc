//! Whole runs: the invariants hold where the world is sound and catch a planted server bug;
//! a seed reproduces a run and another seed makes another.

use std::sync::{Arc, OnceLock};

use erlboot_sim::{run, Baseline, Report, RunOptions, Scenario, Workload};

fn workload() -> Arc<Workload> {
    static WORKLOAD: OnceLock<Arc<Workload>> = OnceLock::new();
    Arc::clone(WORKLOAD.get_or_init(|| Arc::new(Workload::otp25())))
}

fn simulate(scenario: &Scenario, seed: u64) -> Report {
    let options = RunOptions {
        seed: Some(seed),
        baseline: None,
        ..RunOptions::default()
    };
    run(scenario, workload(), &options, &mut |_| {}).expect("the run completes")
}

/// A small world: two servers, two farms, nodes starting over a second.
const SMALL: &str = r#"
name = "small"
seed = 3

[[servers]]
name = "boot_a"

[[servers]]
name = "boot_b"

[[clients]]
name = "rack"
hosts = 2
clients_per_host = 4
start = { kind = "ramp", over_s = 1.0 }
"#;

fn small(extra: &str) -> Scenario {
    Scenario::from_toml("small", &format!("{SMALL}\n{extra}")).expect("a valid scenario")
}

/// The baseline moves every node's replies through the same world with pre-built frames,
/// and checks them as the real run does: no discovery, the same bytes; its nodes connect to
/// the servers in turn.
#[test]
fn the_baseline_moves_every_reply_and_checks_it() {
    let options = RunOptions {
        seed: Some(3),
        baseline: Some(Baseline::Spread),
        ..RunOptions::default()
    };
    let scenario = small("");
    let report = run(&scenario, workload(), &options, &mut |_| {}).expect("the run completes");
    assert!(report.baseline);
    assert_eq!(report.violations, vec![], "{report}");
    assert_eq!((report.clients, report.booted, report.hung), (8, 8, 0));
    assert_eq!(report.bytes, 8 * workload().reply_bytes(), "{report}");
    assert_eq!(report.discovery_rounds, 0);
    let servers: Vec<_> = report
        .first_connections
        .iter()
        .map(|c| c.map(|c| c.server))
        .collect();
    let in_turn: Vec<_> = (0..8).map(|id| Some(id % 2)).collect();
    assert_eq!(servers, in_turn);
}

/// A baseline that follows a real run connects each node when and where the real one first
/// did, so that both share discovery's time and its spread of the load over the servers.
#[test]
fn a_baseline_connects_its_nodes_as_the_run_it_follows() {
    let scenario = small("").scaled_to(40);
    let real = simulate(&scenario, 3);
    let first = real.first_connections.clone();
    assert!(first.iter().all(Option::is_some), "{first:?}");
    for server in 0..2 {
        assert!(
            first.iter().flatten().any(|c| c.server == server),
            "{first:?}"
        );
    }
    assert!(
        first
            .iter()
            .flatten()
            .all(|c| c.at >= std::time::Duration::from_millis(500)),
        "a node connects when its collect window ends: {first:?}"
    );
    let options = RunOptions {
        seed: Some(3),
        baseline: Some(Baseline::Following(first.clone().into())),
        ..RunOptions::default()
    };
    let baseline = run(&scenario, workload(), &options, &mut |_| {}).expect("the run completes");
    assert_eq!(baseline.violations, vec![], "{baseline}");
    assert_eq!(baseline.booted, real.booted);
    assert_eq!(baseline.first_connections, first);
    // Its server queues the same replies on the same capacity: the two runs last as long.
    assert!(
        (baseline.sim_seconds - real.sim_seconds).abs() < 0.05 * real.sim_seconds,
        "the baseline lasted {} s, the run it follows {} s",
        baseline.sim_seconds,
        real.sim_seconds
    );

    // A node that never connected in the run followed does not connect in the baseline.
    let mut fewer = first;
    fewer[0] = None;
    let options = RunOptions {
        baseline: Some(Baseline::Following(fewer.clone().into())),
        ..options
    };
    let baseline = run(&scenario, workload(), &options, &mut |_| {}).expect("the run completes");
    assert_eq!(baseline.first_connections, fewer);
    assert_eq!(baseline.booted, real.booted - 1);
}

#[test]
fn every_node_boots_with_the_servers_bytes_in_a_sound_world() {
    let report = simulate(&small(""), 3);
    assert_eq!(report.violations, vec![], "{report}");
    assert_eq!((report.clients, report.booted, report.hung), (8, 8, 0));
    // Every node got every reply of the recorded boot.
    assert_eq!(report.bytes, 8 * workload().reply_bytes(), "{report}");
    assert!(report.bytes > 8 * 4_000_000);
    assert_eq!(report.resends, 0);
    // One discovery round each: no fault, no retry.
    assert_eq!(report.discovery_rounds, 8);
    assert!(
        report.boot_ms.p50 > 500,
        "the collect window alone is 500 ms: {report}"
    );
}

#[test]
fn the_same_seed_gives_the_same_trace_and_another_seed_another() {
    let scenario = small(
        r#"
[[faults]]
at_s = 0.6
fault = "partition"
a = ["rack-1"]
b = ["boot_a"]

[[faults]]
at_s = 2.0
fault = "repair"
a = ["rack-1"]
b = ["boot_a"]

[[faults]]
at_s = 1.0
fault = "restart"
server = "boot_b"
"#,
    );
    assert!(
        erlboot_sim::reproducible(),
        "built without --cfg tokio_unstable (.cargo/config.toml; a RUSTFLAGS variable replaces it)"
    );
    // Twice in one process: nothing left behind by the first run (tokio's task ids, which
    // go on counting) may change the second.
    let first = simulate(&scenario, 11);
    let again = simulate(&scenario, 11);
    let other = simulate(&scenario, 12);
    assert_eq!(first.trace_hash, again.trace_hash);
    assert_eq!(first, again);
    assert_ne!(first.trace_hash, other.trace_hash);
}

#[test]
fn a_server_serving_a_stale_file_after_a_restart_is_caught_with_its_seed() {
    let scenario = small(
        r#"
[planted]
bug = "stale-file-after-restart"
server = "boot_a"
path = "/usr/lib/erlang/lib/kernel-8.5.3/ebin/application_controller.beam"

[[clients]]
name = "late"
hosts = 1
clients_per_host = 2
servers = ["boot_a"]
start = { kind = "once", at_s = 3.0 }

[[faults]]
at_s = 2.0
fault = "restart"
server = "boot_a"
"#,
    );
    let report = simulate(&scenario, 5);
    let stale: Vec<_> = report
        .violations
        .iter()
        .filter(|v| v.invariant == "safety" && v.event.contains("application_controller.beam"))
        .collect();
    assert!(!stale.is_empty(), "{report}");
    assert!(
        stale.iter().all(|v| v
            .event
            .contains("bytes received differ from the server's file")),
        "{report}"
    );
    assert!(
        stale.iter().all(|v| v.who.starts_with("late-1")),
        "{report}"
    );
    assert_eq!(report.seed, 5);
    // The same scenario without the bug is clean.
    let sound = Scenario {
        planted: None,
        ..scenario
    };
    assert_eq!(simulate(&sound, 5).violations, vec![]);
}

/// A file a server fails to read is answered `eio`, the server's true answer while the fault
/// lasts: not a safety violation. Once healed, the file is read again, and a node that asks
/// then gets its contents.
#[test]
fn a_failing_read_is_the_servers_true_answer_not_a_violation() {
    let scenario = small(
        r#"
[[clients]]
name = "late"
hosts = 1
clients_per_host = 2
start = { kind = "once", at_s = 20.0 }

[[faults]]
at_s = 0.0
fault = "fail-file"
server = "boot_a"
path = "/usr/lib/erlang/lib/kernel-8.5.3/ebin/application_controller.beam"

[[faults]]
at_s = 0.0
fault = "fail-file"
server = "boot_b"
path = "/usr/lib/erlang/lib/kernel-8.5.3/ebin/application_controller.beam"

[[faults]]
at_s = 15.0
fault = "heal-files"
server = "boot_a"

[[faults]]
at_s = 15.0
fault = "heal-files"
server = "boot_b"
"#,
    );
    let report = simulate(&scenario, 4);
    assert_eq!(report.violations, vec![], "{report}");
    assert_eq!(report.booted, report.clients, "{report}");
}

/// A server restart under a few OTP-faithful nodes: minutes of simulated time, most of it quiet
/// (nodes waiting out the 60 s reply timeout), which the world steps over.
fn quiet_world() -> Scenario {
    Scenario::builtin("server-restart")
        .expect("the server-restart scenario")
        .scaled_to(6)
}

#[test]
fn stepping_over_quiet_stretches_changes_what_a_run_costs_not_what_happens() {
    let scenario = quiet_world();
    let stepped = simulate(&scenario, 2);
    let ticked = run(
        &scenario,
        workload(),
        &RunOptions {
            seed: Some(2),
            every_tick: true,
            ..RunOptions::default()
        },
        &mut |_| {},
    )
    .expect("the run completes");
    assert!(stepped.sim_seconds > 120.0, "{stepped}");
    assert!(
        stepped.hung > 0,
        "the scenario has nodes waiting: {stepped}"
    );
    let outcome = |r: &Report| {
        (
            r.booted,
            r.hung,
            r.bytes,
            r.discovery_rounds,
            r.reconnects,
            r.resends,
            r.stalls,
            r.violations.len(),
        )
    };
    assert_eq!(outcome(&stepped), outcome(&ticked), "{stepped}\n{ticked}");
    assert_eq!(stepped.boot_ms, ticked.boot_ms);
    assert_eq!(stepped.longest_stall_ms, ticked.longest_stall_ms);
    // What it is for: most of the minutes are stepped over.
    assert!(stepped.steps * 5 < ticked.steps, "{stepped}\n{ticked}");
    let ticks = ticked.sim_seconds * 1000.0 / scenario.network.tick_ms;
    assert_eq!(ticked.steps as f64, ticks.round(), "{ticked}");
}

#[test]
fn a_wake_up_the_world_does_not_know_of_is_caught() {
    let mut scenario = quiet_world();
    scenario.planted = Some(erlboot_sim::Planted::UnregisteredSleep);
    let report = simulate(&scenario, 2);
    let missed: Vec<_> = report
        .violations
        .iter()
        .filter(|v| v.invariant == "simulator")
        .collect();
    assert!(!missed.is_empty(), "{report}");
    assert!(missed[0].event.contains("no wake-up was due"), "{report}");
    assert!(!simulate(&quiet_world(), 2)
        .violations
        .iter()
        .any(|v| v.invariant == "simulator"));
}

#[test]
fn the_report_of_a_small_default_run_is_stable() {
    let scenario = Scenario::builtin("default")
        .expect("the default scenario")
        .scaled_to(10);
    let report = simulate(&scenario, 1);
    // The trace hash is pinned by the determinism tests; the rest of the text here.
    let text = report
        .to_string()
        .replace(&report.trace_hash, "[trace hash]");
    insta::assert_snapshot!(text);
}

#[test]
fn chaos_draws_its_faults_from_the_seed_and_heals_them() {
    let scenario = small("");
    let a = erlboot_sim::with_chaos(&scenario, 7, 4);
    assert_eq!(a, erlboot_sim::with_chaos(&scenario, 7, 4));
    assert_ne!(a.faults, erlboot_sim::with_chaos(&scenario, 8, 4).faults);
    assert_eq!(a.faults.len(), 8);
    let report = simulate(&a, 7);
    assert_eq!(report.faults.len(), 8, "{report}");
    assert_eq!(report.failures(), 0, "{report}");
}

/// A client group's loader timings are its nodes': a shorter collect window shortens each
/// node's discovery, whose first round, answered, ends with its first window, and so its boot.
#[test]
fn a_client_groups_loader_timings_are_its_nodes() {
    let otp = simulate(&small(""), 3);
    let fast = simulate(&small("timings = { collect_window_ms = 100 }"), 3);
    for report in [&otp, &fast] {
        assert_eq!(report.violations, vec![], "{report}");
        assert_eq!((report.booted, report.hung), (8, 0), "{report}");
    }
    let saved = |p: fn(&Report) -> u64| p(&otp) as i64 - p(&fast) as i64;
    for (what, saved) in [
        ("p50", saved(|r| r.boot_ms.p50)),
        ("max", saved(|r| r.boot_ms.max)),
    ] {
        assert!(
            (300..=450).contains(&saved),
            "{what}: {saved} ms saved, not about 500 − 100 ms\n{otp}\n{fast}"
        );
    }
}
