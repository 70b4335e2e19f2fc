//! Every built-in scenario, small and with a fixed seed: what each is there to show.

use std::sync::{Arc, OnceLock};

use erlboot_sim::{run, Behaviour, Report, RunOptions, Scenario, Start, Workload};

fn workload() -> Arc<Workload> {
    static WORKLOAD: OnceLock<Arc<Workload>> = OnceLock::new();
    Arc::clone(WORKLOAD.get_or_init(|| Arc::new(Workload::otp25())))
}

/// `name` with about `clients` nodes, seed 42.
fn simulate(scenario: Scenario, clients: usize) -> Report {
    let scenario = scenario.scaled_to(clients);
    let options = RunOptions {
        seed: Some(42),
        baseline: None,
        ..RunOptions::default()
    };
    run(&scenario, workload(), &options, &mut |_| {}).expect("the run completes")
}

fn builtin(name: &str) -> Scenario {
    Scenario::builtin(name).expect("a built-in scenario")
}

/// Nodes that must boot did, and nothing broke.
fn assert_sound(report: &Report) {
    assert_eq!(report.violations, vec![], "{report}");
    assert_eq!(report.booted + report.refused, report.clients, "{report}");
    assert_eq!(report.hung, 0, "{report}");
}

#[test]
fn default_boots_everyone_through_a_partition_and_a_restart() {
    let report = simulate(builtin("default"), 20);
    assert_sound(&report);
    assert_eq!(report.refused, 0);
    let faults: Vec<&str> = report.faults.iter().map(|f| f.fault.as_str()).collect();
    assert_eq!(
        faults,
        [
            "partition rack-1 <-> boot_a",
            "restart boot_b",
            "repair rack-1 <-> boot_a"
        ]
    );
}

#[test]
fn steady_boots_one_node_after_another_without_a_retry() {
    let mut scenario = builtin("steady-1000");
    // The same ramp, a tenth as long.
    scenario.clients[0].start = Start::Ramp {
        from_s: 0.0,
        over_s: 6.0,
    };
    let report = simulate(scenario, 20);
    assert_sound(&report);
    assert_eq!(report.discovery_rounds, 20);
    assert_eq!(
        (report.reconnects, report.resends, report.stalls),
        (0, 0, 0)
    );
}

#[test]
fn a_herd_boots_from_two_servers() {
    let mut scenario = builtin("herd-10000");
    // Farms of 30 rather than 200: fewer hosts, a quicker test.
    scenario.clients[0].hosts = 2;
    let report = simulate(scenario, 60);
    assert_sound(&report);
    assert_eq!(report.booted, 60);
    // All start within the jitter: the boots overlap, the whole herd takes about one boot.
    assert!(
        report.sim_seconds * 1000.0 < 2.0 * report.boot_ms.p50 as f64,
        "{report}"
    );
}

#[test]
fn rolling_partitions_delay_each_rack_in_turn() {
    let report = simulate(builtin("rolling-partitions"), 16);
    assert_sound(&report);
    assert_eq!(report.faults.len(), 8);
    assert!(report.datagrams_lost > 0, "{report}");
    // A rack cut for 5 s while booting waits for it.
    assert!(report.boot_ms.max > 5_000, "{report}");
}

#[test]
fn a_flapping_link_stalls_its_rack_and_every_node_still_boots() {
    let report = simulate(builtin("flapping-link"), 12);
    assert_sound(&report);
    assert!(report.faults.len() >= 10, "{report}");
    assert!(report.boot_ms.max > 2_000 + report.boot_ms.p50, "{report}");
}

#[test]
fn lossy_discovery_costs_lost_datagrams_and_unanswered_rounds() {
    let report = simulate(builtin("lossy-discovery"), 30);
    assert_sound(&report);
    assert!(report.datagrams_lost > 0, "{report}");
    assert!(report.discovery_rounds > 30, "{report}");
}

/// `scenario` with every client group running erlboot's own loader instead of OTP's.
fn with_erlboots_loader(mut scenario: Scenario) -> Scenario {
    for group in &mut scenario.clients {
        group.behaviour = Behaviour::Erlboot;
    }
    scenario
}

/// Every violation is a node OTP's loader left hung, and every other node booted.
fn assert_only_otp_defects(report: &Report) {
    assert!(
        report
            .violations
            .iter()
            .all(|v| v.invariant == "otp-defect" && v.event.contains("OTP-faithful loader hung")),
        "{report}"
    );
    assert!(report.passed(), "{report}");
    assert_eq!(
        report.booted + report.hung + report.refused,
        report.clients,
        "{report}"
    );
}

#[test]
fn a_server_restart_leaves_otp_nodes_hung_and_says_they_are_otp_defects() {
    let mut scenario = builtin("server-restart");
    scenario.network.tick_ms = 5.0;
    let report = simulate(scenario.clone(), 8);
    assert!(report.hung > 0, "{report}");
    assert_only_otp_defects(&report);
    // The hung nodes sent their get_modules call's later modules to the dead connection.
    assert!(report.stranded_nodes > 0, "{report}");
    assert!(report.stranded >= report.stranded_nodes as u64, "{report}");
    assert!(report.to_string().contains("stranded    "), "{report}");
    // erlboot's own loader through the same restart: nobody hangs.
    let report = simulate(with_erlboots_loader(scenario), 8);
    assert_sound(&report);
    assert_eq!(report.booted, report.clients, "{report}");
    assert_eq!((report.stranded, report.stranded_nodes), (0, 0), "{report}");
}

#[test]
fn failover_moves_the_crashed_servers_nodes_to_the_other() {
    let mut scenario = builtin("failover");
    scenario.network.tick_ms = 5.0;
    let report = simulate(scenario.clone(), 16);
    assert_only_otp_defects(&report);
    // boot_a's nodes lost it mid-boot and finished from boot_b, but for those whose loss fell
    // inside the boot script's primLoad, which OTP 25's loader never recovers from in time.
    assert!(report.resends > 0 && report.reconnects > 0, "{report}");
    assert!(report.booted * 4 >= report.clients * 3, "{report}");
    let report = simulate(with_erlboots_loader(scenario), 16);
    assert_sound(&report);
    assert_eq!(report.booted, report.clients, "{report}");
}

/// The failover run's report, pinned: how many nodes hang, resend and stall, and for how
/// long, follow from where in the boot script each lost its server, a `get_modules` call's
/// start and end included, so a change to the OTP-faithful loader's path through a failover
/// shows here.
#[test]
fn the_report_of_a_small_failover_run_is_stable() {
    let mut scenario = builtin("failover");
    scenario.network.tick_ms = 5.0;
    let report = simulate(scenario, 16);
    // The trace hash is pinned by the determinism tests; the rest of the text here.
    let text = report
        .to_string()
        .replace(&report.trace_hash, "[trace hash]");
    insta::assert_snapshot!(text);
}

#[test]
fn a_denied_subnet_gets_not_a_byte_and_a_grown_allow_list_serves_the_late_rack() {
    let report = simulate(builtin("denied-subnet"), 16);
    assert_sound(&report);
    assert_eq!(report.refused, 4, "the denied rack: {report}");
    assert_eq!(report.booted, 12);
    assert_eq!(report.faults.len(), 1);
}

#[test]
fn mixed_versions_find_their_own_server_and_orphans_none() {
    let report = simulate(builtin("mixed-versions"), 21);
    assert_sound(&report);
    assert_eq!(report.refused, 1, "{report}");
    assert_eq!(report.booted, report.clients - 1);
}

#[test]
fn a_file_later_than_the_reply_timeout_makes_nodes_resend() {
    let mut scenario = builtin("slow-disk");
    scenario.network.tick_ms = 5.0;
    // The slow file is a module of the boot script's primLoad: after OTP's reply timeout and
    // resend, OTP 25's loader sends the later modules to the connection it closed.
    let report = simulate(scenario.clone(), 8);
    assert!(report.resends > 0 && report.hung > 0, "{report}");
    assert_only_otp_defects(&report);
    let report = simulate(with_erlboots_loader(scenario), 8);
    assert_sound(&report);
    assert!(report.resends > 0, "{report}");
    assert!(report.longest_stall_ms >= 60_000, "{report}");
}

#[test]
fn lossy_tcp_retransmits_and_every_node_boots() {
    let report = simulate(builtin("lossy-tcp"), 8);
    assert_sound(&report);
    assert!(report.retransmissions > 0, "{report}");
}
