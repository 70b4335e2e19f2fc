//! Live test: the restart hang (PROTOCOL.md, "The restart hang"), on OTP 25, 27 and 29.
//!
//! A real node boots with `-loader inet` from `erlboot serve`; the server is killed while the
//! node fetches the boot script's first `primLoad` (one `get_modules` call), and a new one
//! starts a second later. The node reconnects and fetches the module it was waiting for, then
//! sends nothing for the whole reply timeout, 60 s: its next module went to the dead
//! connection. Then it rediscovers and opens another connection, the previous one still open,
//! for the next module only. OTP 25, 27 and 29 all do this.
//!
//! Each release runs in a network namespace of its own (see `support/netns.rs`), OTP 27 and 29
//! in their chroots (see `support/otp.rs`) with the server run from a copy of `erlboot` inside
//! the same chroot, so that it serves that release's files. Needs root, `ip`, OTP 25 (`erl`) and
//! the OTP 27 chroot, and fails loudly without them; the OTP 29 case also needs the OTP 29 tree,
//! which CI does not make, and is ignored unless asked for. A run takes about 75 s, nearly all
//! of it the node's 60 s wait; the releases run side by side.

use erlboot_support::netns;
use erlboot_support::otp::Otp;

use std::any::Any;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use netns::{require, Netns, Proc};

const ERLBOOT: &str = env!("CARGO_BIN_EXE_erlboot");
/// OTP's reply timeout, `INET_IDLE_TIMEOUT` (erl_prim_loader.erl:77).
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// Time for the log lines of an event to be seen; far below the gaps the test measures.
const SLACK: Duration = Duration::from_secs(2);

/// A release whose node boots in the test.
struct Release {
    name: &'static str,
    otp: Otp,
    /// Whether `-init_debug` prints `{done_in_microseconds,_}` when a `primLoad` finishes
    /// (OTP 26 and later: `init:debug/3`).
    times_steps: bool,
}

impl Release {
    fn otp25() -> Release {
        require("erl", "OTP 25 runs the booting node");
        Release {
            name: "OTP 25",
            otp: Otp::system(),
            times_steps: false,
        }
    }

    fn otp27() -> Release {
        Release {
            name: "OTP 27",
            otp: Otp::otp27(),
            times_steps: true,
        }
    }

    fn otp29() -> Release {
        Release {
            name: "OTP 29",
            otp: Otp::otp29(),
            times_steps: true,
        }
    }
}

/// `erlboot serve --allow 127.0.0.1` (`erlboot` as the release sees it) in `ns`, logging every
/// request, once it listens. It serves the release's own `/usr/lib/erlang`.
fn serve(ns: &Netns, release: &Release, erlboot: &Path) -> Proc {
    let mut command = release.otp.command(ns, erlboot);
    command
        .args(["serve", "--allow", "127.0.0.1"])
        .env("RUST_LOG", "erlboot=debug");
    let proc = Proc::spawn(command);
    let line = proc.next_line(Duration::from_secs(20));
    assert!(
        line.as_deref().is_some_and(|l| l.starts_with("listening ")),
        "erlboot serve did not start for {}: {line:?}\n--- stderr\n{}",
        release.name,
        proc.stderr()
    );
    proc
}

/// A line of the server's log, with when the test first saw it.
#[derive(Clone, Debug)]
struct Logged {
    seen: Instant,
    text: String,
}

/// The server's log, read as it grows.
struct Log {
    lines: Vec<Logged>,
    read: usize,
}

impl Log {
    fn new() -> Log {
        Log {
            lines: Vec::new(),
            read: 0,
        }
    }

    /// Takes in the complete lines written since the last call.
    fn update(&mut self, server: &Proc) {
        let text = server.stderr();
        let Some(end) = text[self.read..].rfind('\n').map(|i| self.read + i + 1) else {
            return;
        };
        let now = Instant::now();
        for line in text[self.read..end].lines() {
            self.lines.push(Logged {
                seen: now,
                text: line.to_owned(),
            });
        }
        self.read = end;
    }

    /// Polls until a line satisfies `f`, at most `wait`.
    fn wait_for(
        &mut self,
        server: &Proc,
        wait: Duration,
        f: impl Fn(&str) -> bool,
    ) -> Option<Logged> {
        let deadline = Instant::now() + wait;
        loop {
            self.update(server);
            if let Some(line) = self.lines.iter().find(|l| f(&l.text)) {
                return Some(line.clone());
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(1));
        }
    }

    fn dump(&self) -> String {
        self.lines
            .iter()
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The `peer=` of a log line.
fn peer(line: &str) -> Option<&str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("peer="))
}

/// The `name=Some("...")` of a request line.
fn name(line: &str) -> Option<&str> {
    let start = line.find("name=Some(\"")? + "name=Some(\"".len();
    let len = line[start..].find('"')?;
    Some(&line[start..start + len])
}

/// The module a `.beam` request asks for, without its directory.
fn module(line: &str) -> Option<&str> {
    name(line)?.rsplit('/').next()?.strip_suffix(".beam")
}

fn is_request(line: &str) -> bool {
    line.contains(" request peer=")
}

#[test]
fn otp25_and_otp27_nodes_hang_after_a_server_restart_inside_get_modules() {
    side_by_side(vec![Release::otp25(), Release::otp27()]);
}

#[test]
#[ignore = "needs OTP 29 in a chroot at /var/lib/erlboot/otp29 (or ERLBOOT_OTP29_ROOT), which CI \
            does not make: debootstrap --variant=minbase --include=erlang-base sid ROOT"]
fn otp29_node_hangs_after_a_server_restart_inside_get_modules() {
    side_by_side(vec![Release::otp29()]);
}

/// Runs [`hangs_after_a_restart_inside_get_modules`] for each release on a thread of its own,
/// and fails with every release's failure once all are done.
fn side_by_side(releases: Vec<Release>) {
    let results: Vec<(&str, thread::Result<String>)> = thread::scope(|scope| {
        let running: Vec<_> = releases
            .iter()
            .map(|release| {
                let thread = thread::Builder::new()
                    .name(release.name.to_owned())
                    .spawn_scoped(scope, || hangs_after_a_restart_inside_get_modules(release))
                    .expect("a thread");
                (release.name, thread)
            })
            .collect();
        running
            .into_iter()
            .map(|(name, thread)| (name, thread.join()))
            .collect()
    });
    let mut failures = Vec::new();
    for (name, result) in results {
        match result {
            Ok(summary) => eprintln!("{name}: {summary}"),
            Err(panic) => failures.push(format!("{name}: {}", panic_message(&*panic))),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(a panic without a message)")
}

/// Boots a node of `release`, restarts its server inside the first `primLoad`, and checks the
/// hang; returns what happened, in a line.
fn hangs_after_a_restart_inside_get_modules(release: &Release) -> String {
    let erlboot = release.otp.stage(Path::new(ERLBOOT));
    let ns = Netns::new();
    let mut first = serve(&ns, release, erlboot.path());
    let mut node_command = release.otp.command(&ns, "erl");
    node_command
        .env("LANG", "C.UTF-8")
        .env("ERL_CRASH_DUMP_SECONDS", "0")
        .args(["-loader", "inet", "-hosts", "127.0.0.1", "-init_debug"])
        .args([
            "-noshell",
            "-eval",
            r#"io:format("booted~n"), init:stop()."#,
        ]);
    let mut node = Proc::spawn(node_command);

    // The first module of the boot script's first primLoad; the call fetches 28 more.
    let mut log = Log::new();
    let trigger = log.wait_for(&first, Duration::from_secs(30), |l| {
        is_request(l) && module(l) == Some("error_handler")
    });
    assert!(
        trigger.is_some(),
        "the node never asked for error_handler.beam\n--- server\n{}\n--- node\n{}",
        log.dump(),
        node.stdout()
    );
    first.kill();
    let killed = Instant::now();
    thread::sleep(Duration::from_secs(1));
    let second = serve(&ns, release, erlboot.path());
    let mut log = Log::new();

    // The node rediscovers (within one 10 s sleep) and fetches the module it was waiting for.
    let opened = log
        .wait_for(&second, Duration::from_secs(30), |l| {
            l.contains("connection opened")
        })
        .unwrap_or_else(|| {
            panic!(
                "the node never came back to the new server\n--- server\n{}\n--- node\n{}",
                log.dump(),
                node.stdout()
            )
        });
    let reconnected = peer(&opened.text).expect("a peer").to_owned();
    log.wait_for(&second, Duration::from_secs(5), |l| {
        is_request(l) && peer(l) == Some(&reconnected)
    })
    .expect("the request in flight is sent again");
    // Then its other path tries, if any, at once.
    thread::sleep(SLACK);
    log.update(&second);
    let on_reconnected: Vec<Logged> = log
        .lines
        .iter()
        .filter(|l| is_request(&l.text) && peer(&l.text) == Some(&reconnected))
        .cloned()
        .collect();
    let last = on_reconnected.last().unwrap().clone();
    let resent = module(&last.text).expect("a module").to_owned();
    let before_gap = log.lines.len();

    // Nothing for the reply timeout: no request, no query, no connection.
    let next = log.wait_for(&second, REPLY_TIMEOUT + Duration::from_secs(10), |l| {
        l.contains("connection opened") && peer(l) != Some(&reconnected)
    });
    let gap: Vec<&str> = log.lines[before_gap..]
        .iter()
        .filter(|l| l.seen < last.seen + REPLY_TIMEOUT - SLACK)
        .map(|l| l.text.as_str())
        .collect();
    assert!(
        gap.is_empty(),
        "the node was not silent after {resent}: {gap:#?}"
    );
    let next = next.unwrap_or_else(|| {
        panic!(
            "no second connection within 70 s of the last request\n--- server\n{}\n--- node\n{}",
            log.dump(),
            node.stdout()
        )
    });
    let silence = next.seen - last.seen;
    assert!(
        silence >= REPLY_TIMEOUT - SLACK && silence <= REPLY_TIMEOUT + Duration::from_secs(5),
        "the second connection came {silence:?} after the last request, not the reply timeout"
    );

    // The second connection asks for another module; the first is never closed.
    let fresh = peer(&next.text).unwrap().to_owned();
    let asked = log
        .wait_for(&second, Duration::from_secs(5), |l| {
            is_request(l) && peer(l) == Some(&fresh)
        })
        .expect("a request on the second connection");
    let asked = module(&asked.text).expect("a module").to_owned();
    assert_ne!(asked, resent, "the next module, not a resend");
    log.update(&second);
    assert!(
        !log.lines
            .iter()
            .any(|l| l.text.contains("connection closed") && peer(&l.text) == Some(&reconnected)),
        "the node closed the connection it abandoned\n{}",
        log.dump()
    );

    // Still in the boot script's first primLoad after all this time.
    assert!(node.try_wait().is_none(), "the node exited");
    let stdout = node.stdout();
    let last_progress = stdout.lines().rev().find(|l| l.starts_with("{progress,"));
    assert_eq!(
        last_progress,
        Some("{progress,preloaded}"),
        "the node got further than its first primLoad\n{stdout}"
    );
    if release.times_steps {
        let call = stdout
            .find("{primLoad,[error_handler,")
            .unwrap_or_else(|| panic!("no primLoad of error_handler in the node's log\n{stdout}"));
        assert!(
            !stdout[call..].contains("{done_in_microseconds,"),
            "the primLoad finished\n{stdout}"
        );
    }
    assert!(!stdout.contains("booted"));
    node.kill();
    format!(
        "killed during the primLoad; resent {resent} {:?} after the kill, then {silence:?} of \
         silence, then {asked} on a new connection",
        last.seen - killed
    )
}
