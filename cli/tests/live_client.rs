//! Live tests of the inet loader (`erlboot fetch`, `erlboot boot` and the library `Client`)
//! against OTP's own `erl_boot_server`, each in a network namespace of its own (see
//! `support/netns.rs`). They need root, `ip` and OTP 25; a missing tool fails loudly.

use erlboot_support::netns;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use erlboot::client::{Event, LoaderConfig, LoaderTimings, Response};
use erlboot::net::{Client, TokioRuntime};
use erlboot::proto::Request;
use netns::{require, Finished, Netns, Proc};

const ERLBOOT: &str = env!("CARGO_BIN_EXE_erlboot");
const WAIT: Duration = Duration::from_secs(60);
const KERNEL_EBIN: &str = "/usr/lib/erlang/lib/kernel-8.5.3/ebin";
const STDLIB_EBIN: &str = "/usr/lib/erlang/lib/stdlib-4.2/ebin";

/// OTP's boot server in `ns` for the clients in `allow`; returns it once it listens.
fn otp_boot_server(ns: &Netns, allow: &str) -> Proc {
    require("erl", "OTP 25 runs the boot server the client talks to");
    let mut command = ns.command("erl");
    command.env("ERL_CRASH_DUMP_SECONDS", "0").args([
        "-noshell",
        "-eval",
        &format!(
            r#"{{ok, _}} = erl_boot_server:start(["{allow}"]),
               io:format("ready ~w~n", [element(7, sys:get_state(boot_server))]),
               receive after infinity -> ok end."#
        ),
    ]);
    let proc = Proc::spawn(command);
    let line = proc.next_line(Duration::from_secs(30));
    assert!(
        line.as_deref().is_some_and(|l| l.starts_with("ready ")),
        "OTP's boot server did not start: {line:?}\n{}",
        proc.stderr()
    );
    proc
}

/// `erlboot ARGS` in `ns`.
fn erlboot(ns: &Netns, args: &[&str]) -> Finished {
    let mut command = ns.command(ERLBOOT);
    command.args(args);
    ns.run(command, WAIT)
}

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("erlboot-live-client-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn fetched_files_are_byte_identical_to_the_servers() {
    let ns = Netns::new();
    let _server = otp_boot_server(&ns, "127.0.0.1");
    let out = scratch("files");
    let files = [
        "/usr/lib/erlang/bin/start.boot".to_owned(),
        format!("{STDLIB_EBIN}/lists.beam"),
        format!("{KERNEL_EBIN}/kernel.app"),
        format!("{KERNEL_EBIN}/code_server.beam"),
    ];
    let mut args = vec!["fetch", "--hosts", "127.0.0.1", "-o", out.to_str().unwrap()];
    args.extend(files.iter().map(String::as_str));
    let run = erlboot(&ns, &args);
    run.assert_success("erlboot fetch from OTP's boot server");
    for file in &files {
        let name = Path::new(file).file_name().unwrap();
        let fetched = std::fs::read(out.join(name)).unwrap();
        assert!(fetched == std::fs::read(file).unwrap(), "{file} differs");
    }
    std::fs::remove_dir_all(out).unwrap();
}

/// What a real node's `erl_prim_loader` returns for the same requests, booted over the same
/// server: names one per line, then the file info as `~w` prints it.
fn as_a_node_sees_it(ns: &Netns, dir: &str, file: &str) -> (Vec<String>, String) {
    let mut node = ns.command("erl");
    node.env("ERL_CRASH_DUMP_SECONDS", "0").args([
        "-loader",
        "inet",
        "-hosts",
        "127.0.0.1",
        "-noshell",
        "-eval",
        &format!(
            r#"{{ok, Names}} = erl_prim_loader:list_dir("{dir}"),
               [io:format("name ~ts~n", [N]) || N <- Names],
               {{ok, Info}} = erl_prim_loader:read_file_info("{file}"),
               io:format("info ~w~n", [Info]),
               init:stop()."#
        ),
    ]);
    let run = ns.run(node, WAIT);
    run.assert_success("a node booting from OTP's boot server");
    let names = run
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("name ").map(str::to_owned))
        .collect();
    let info = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("info "))
        .expect("the node printed the file info")
        .to_owned();
    (names, info)
}

#[test]
fn listings_and_file_infos_equal_what_a_real_node_gets() {
    let ns = Netns::new();
    let _server = otp_boot_server(&ns, "127.0.0.1");
    let file = format!("{STDLIB_EBIN}/lists.beam");
    let (names, info) = as_a_node_sees_it(&ns, KERNEL_EBIN, &file);
    assert!(names.len() > 50, "kernel's ebin listed: {}", names.len());

    let listed = erlboot(
        &ns,
        &["fetch", "--hosts", "127.0.0.1", "--list-dir", KERNEL_EBIN],
    );
    listed.assert_success("erlboot fetch --list-dir");
    assert_eq!(listed.stdout.lines().collect::<Vec<_>>(), names);

    let stat = erlboot(&ns, &["fetch", "--hosts", "127.0.0.1", "--stat", &file]);
    stat.assert_success("erlboot fetch --stat");
    assert_eq!(stat.stdout.trim(), info);
}

#[test]
fn a_denied_client_and_another_version_end_in_a_clear_error() {
    let ns = Netns::new();
    let _server = otp_boot_server(&ns, "127.0.0.2");
    let path = "/usr/lib/erlang/bin/start.boot";
    let denied = erlboot(
        &ns,
        &["fetch", "--hosts", "127.0.0.1", "--timeout", "3", path],
    );
    assert_eq!(
        denied.status.and_then(|s| s.code()),
        Some(1),
        "{}",
        denied.stderr
    );
    assert!(
        denied.stderr.contains("no boot server answered") && denied.stderr.contains("--allow"),
        "a clear error: {}",
        denied.stderr
    );
    assert!(denied.elapsed >= Duration::from_secs(3) && denied.elapsed < Duration::from_secs(20));

    let ns = Netns::new();
    let _server = otp_boot_server(&ns, "127.0.0.1");
    let args = [
        "fetch",
        "--hosts",
        "127.0.0.1",
        "--erts-version",
        "99.0",
        "--timeout",
        "3",
        path,
    ];
    let other = erlboot(&ns, &args);
    assert_eq!(
        other.status.and_then(|s| s.code()),
        Some(1),
        "{}",
        other.stderr
    );
    assert!(
        other.stderr.contains("ERTS 99.0"),
        "names the version: {}",
        other.stderr
    );
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let ns = Netns::new();
    let _server = otp_boot_server(&ns, "127.0.0.1");
    let run = erlboot(
        &ns,
        &["fetch", "--hosts", "127.0.0.1", "/usr/lib/erlang/none"],
    );
    assert_eq!(run.status.and_then(|s| s.code()), Some(1));
    assert!(
        run.stderr.contains("/usr/lib/erlang/none: enoent"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_recorded_boot_replays_against_otps_server() {
    let ns = Netns::new();
    let _server = otp_boot_server(&ns, "127.0.0.1");
    let run = erlboot(&ns, &["boot", "--hosts", "127.0.0.1"]);
    run.assert_success("erlboot boot");
    for phase in [
        "discovery",
        "boot script",
        "code path scan",
        "modules on demand",
        "total",
    ] {
        assert!(
            run.stdout.contains(phase),
            "reports {phase}:\n{}",
            run.stdout
        );
    }
    assert!(run.stdout.contains("386 requests"), "{}", run.stdout);
    assert!(run.stdout.contains("0 reconnects"), "{}", run.stdout);
}

#[test]
fn a_server_restart_mid_session_is_survived() {
    let ns = Netns::new();
    let mut first = otp_boot_server(&ns, "127.0.0.1");
    let timings = LoaderTimings {
        collect_window: Duration::from_millis(200),
        short_sleep: Duration::from_millis(500),
        reply_timeout: Duration::from_secs(5),
        ..LoaderTimings::otp()
    };
    let mut config = LoaderConfig::new(vec![Ipv4Addr::LOCALHOST], "13.1.5");
    config.timings = timings;
    let beam = |name: &str| Request::Get(format!("{STDLIB_EBIN}/{name}.beam"));
    let contents = |response: Response| match response.value().binary() {
        Some(bytes) => bytes,
        None => panic!("not file contents: {}", response.value()),
    };
    let ns_ref = &ns;
    let events = ns.enter(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let mut client = Client::new(TokioRuntime::new(), config);
            let lists = client
                .call(&beam("lists"), Some(client.now() + WAIT))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                contents(lists),
                std::fs::read(format!("{STDLIB_EBIN}/lists.beam")).unwrap()
            );
            // The server goes away and comes back on another port, as a restarted master's does.
            first.kill();
            let _second = otp_boot_server(ns_ref, "127.0.0.1");
            let maps = client
                .call(&beam("maps"), Some(client.now() + WAIT))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                contents(maps),
                std::fs::read(format!("{STDLIB_EBIN}/maps.beam")).unwrap()
            );
            client.take_events()
        })
    });
    let connected = events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Connected { .. }))
        .count();
    assert_eq!(
        connected, 2,
        "connected again after the restart: {events:?}"
    );
}
