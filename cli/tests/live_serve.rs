//! Live tests: real Erlang and Elixir nodes boot from `erlboot serve` with `-loader inet`.
//!
//! Each test runs in a network namespace of its own (see `support/netns.rs`), with only a
//! loopback interface, so the tests run in parallel without sharing UDP port 4368 or epmd, and
//! nothing leaves the machine. They need root, `ip` (iproute2), OTP 25 (`erl`), Elixir, and the
//! OTP 27 chroot made by `.ci/install-otp`; a missing tool is a loud failure, never a skip.
//!
//! - OTP 25 and OTP 27 nodes, a distributed master with `peer` and `slave` nodes, and Elixir
//!   boot and run code;
//! - an address outside `--allow` and a client of another ERTS version get nothing, over UDP or
//!   TCP;
//! - hostile input gets the replies or closes the `serve` contract promises, and a real node
//!   still boots from the same server process afterwards;
//! - the path jail answers `{error,enoent}` outside `--root` and serves the same files inside.
//!
//! `harness_boots_a_node_from_otps_own_boot_server` runs the harness against OTP's own
//! `erl_boot_server`: if it fails, the environment or the harness is broken, not `erlboot`.

use erlboot_support::netns;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use erlboot::etf::{Decoder, Limits, Profile, Term};
use erlboot::proto::discovery::{Answer, Query};
use erlboot::proto::frame::FrameDecoder;
use erlboot::proto::frame::{encode_frame, encode_term_frame};
use erlboot::proto::{FileType, Reply, Request};
use netns::{require, Finished, Netns, Proc};

const ERLBOOT: &str = env!("CARGO_BIN_EXE_erlboot");
const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// An address on `lo` that is not in `--allow 127.0.0.1`.
const OUTSIDER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// A node that boots takes about 1.7 s (0.5 s of it discovery); allow for a loaded machine.
const BOOT_TIMEOUT: Duration = Duration::from_secs(30);
const ERLANG_ROOT: &str = "/usr/lib/erlang";
const ELIXIR_ROOT: &str = "/usr/lib/elixir";

// ---------------------------------------------------------------------------------------------
// The server under test

/// A running boot server and what its `listening` line said.
struct Server {
    proc: Proc,
    tcp: SocketAddr,
    udp: SocketAddr,
    erts: Vec<String>,
}

impl Server {
    /// `erlboot serve ARGS` inside `ns`.
    fn start(ns: &Netns, args: &[&str]) -> Server {
        let mut command = ns.command(ERLBOOT);
        command.arg("serve").args(args);
        Server::from_command(command, &format!("erlboot serve {}", args.join(" ")))
    }

    /// Starts `command` and waits for `listening tcp=IP:PORT udp=IP:PORT erts=V1,V2`.
    fn from_command(command: Command, what: &str) -> Server {
        let mut proc = Proc::spawn(command);
        let line = proc.next_line(Duration::from_secs(20));
        let Some(line) = line else {
            let status = proc.wait_timeout(Duration::from_millis(200));
            panic!(
                "{what}: no `listening` line within 20 s (exit: {status:?})\n--- stdout\n{}\n--- stderr\n{}",
                proc.stdout(),
                proc.stderr()
            );
        };
        let field = |name: &str| -> &str {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .unwrap_or_else(|| panic!("{what}: no `{name}` in the first line {line:?}"))
        };
        assert!(
            line.starts_with("listening "),
            "{what}: the first line is {line:?}"
        );
        let addr = |name: &str| -> SocketAddr {
            field(name)
                .parse()
                .unwrap_or_else(|e| panic!("{what}: `{name}` in {line:?}: {e}"))
        };
        let (tcp, udp) = (addr("tcp="), addr("udp="));
        let erts = field("erts=").split(',').map(str::to_owned).collect();
        Server {
            proc,
            tcp,
            udp,
            erts,
        }
    }

    /// OTP's own `erl_boot_server` in `ns`, allowing 127.0.0.1, printing the same line.
    fn otp_reference(ns: &Netns) -> Server {
        require("erl", "OTP 25 runs the reference boot server");
        let mut command = ns.command("erl");
        command.args([
            "-noshell",
            "-eval",
            r#"{ok, _} = erl_boot_server:start(["127.0.0.1"]),
               Port = element(7, sys:get_state(boot_server)),
               io:format("listening tcp=127.0.0.1:~w udp=0.0.0.0:4368 erts=~s~n",
                         [Port, erlang:system_info(version)]),
               receive after infinity -> ok end."#,
        ]);
        Server::from_command(command, "OTP's erl_boot_server")
    }

    /// The TCP address to connect to: the listening address, or 127.0.0.1 for a wildcard.
    fn tcp_target(&self) -> SocketAddr {
        target(self.tcp)
    }

    fn udp_target(&self) -> SocketAddr {
        target(self.udp)
    }

    /// Panics with the server's output if it has exited.
    fn assert_alive(&mut self, when: &str) {
        if let Some(status) = self.proc.try_wait() {
            panic!(
                "the server exited ({status}) {when}\n--- stderr (last 4000 bytes)\n{}",
                tail(&self.proc.stderr(), 4000)
            );
        }
    }

    /// The server's log so far (the tail), for failure messages.
    fn log(&self) -> String {
        tail(&self.proc.stderr(), 3000)
    }
}

fn target(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(LOCALHOST.into(), addr.port())
    } else {
        addr
    }
}

fn tail(text: &str, n: usize) -> String {
    let start = text.len().saturating_sub(n);
    let start = (start..=text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].to_owned()
}

// ---------------------------------------------------------------------------------------------
// Erlang and Elixir nodes

/// Which OTP runs a node.
#[derive(Clone, Copy, Debug)]
enum Otp {
    /// The system's OTP 25.
    System,
    /// OTP 27 in the chroot made by `.ci/install-otp`.
    Chroot27,
}

impl Otp {
    /// `erl` (or `chroot ROOT erl`) inside `ns`.
    fn erl(self, ns: &Netns) -> Command {
        match self {
            Otp::System => {
                require("erl", "OTP 25 runs the booting nodes");
                let mut c = ns.command("erl");
                c.env("LANG", "C.UTF-8").env("ERL_CRASH_DUMP_SECONDS", "0");
                c
            }
            Otp::Chroot27 => {
                let root = otp27_root();
                let mut c = ns.command("chroot");
                c.arg(root)
                    .arg("erl")
                    .env("LANG", "C.UTF-8")
                    .env("ERL_CRASH_DUMP_SECONDS", "0");
                c
            }
        }
    }
}

fn otp27_root() -> PathBuf {
    let root = std::env::var_os("ERLBOOT_OTP27_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/erlboot/otp27"));
    assert!(
        root.join("usr/bin/erl").exists(),
        "this live test needs OTP 27 in a chroot at {} (or ERLBOOT_OTP27_ROOT): run \
         `bash .ci/install-otp` as root to make it.",
        root.display()
    );
    root
}

/// The ERTS versions installed under `root` (`erts-*` directories), e.g. `["13.1.5"]`.
fn erts_versions(root: &Path) -> Vec<String> {
    let mut versions: Vec<String> = std::fs::read_dir(root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_prefix("erts-").map(str::to_owned)
        })
        .collect();
    versions.sort();
    assert!(!versions.is_empty(), "no erts-* in {}", root.display());
    versions
}

/// The expression a booted node evaluates: prints the OTP release, a sum computed by `lists`,
/// where `lists` was loaded from, and the loader, then stops.
const PROOF: &str = r#"io:format("booted otp=~s sum=~w lists=~s loader=~s~n",
    [erlang:system_info(otp_release), lists:sum(lists:seq(1, 10)), code:which(lists),
     hd(hd(element(2, init:get_argument(loader))))]),
    init:stop()."#;

/// Boots `otp`'s `erl -loader inet -hosts 127.0.0.1` in `ns`, runs [`PROOF`], and checks what it
/// printed. Returns the run.
fn boot_node(ns: &Netns, otp: Otp, release: &str) -> Finished {
    let mut command = otp.erl(ns);
    command.args([
        "-loader",
        "inet",
        "-hosts",
        "127.0.0.1",
        "-noshell",
        "-eval",
        PROOF,
    ]);
    let run = ns.run(command, BOOT_TIMEOUT);
    run.assert_success(&format!("OTP {release} node booting with -loader inet"));
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("booted "))
        .unwrap_or_else(|| panic!("the node printed no `booted` line:\n{}", run.stdout));
    let expected_prefix = format!("booted otp={release} sum=55 lists={ERLANG_ROOT}/lib/stdlib-");
    assert!(
        line.starts_with(&expected_prefix) && line.ends_with("/ebin/lists.beam loader=inet"),
        "unexpected proof line {line:?}"
    );
    run
}

/// A node that must NOT boot: `-loader inet -hosts 127.0.0.1` gets no server within `wait`.
fn assert_node_does_not_boot(ns: &Netns, otp: Otp, wait: Duration, why: &str) {
    let mut command = otp.erl(ns);
    command.args([
        "-loader",
        "inet",
        "-hosts",
        "127.0.0.1",
        "-noshell",
        "-eval",
        PROOF,
    ]);
    let run = ns.run(command, wait);
    assert!(
        run.status.is_none() && !run.stdout.contains("booted"),
        "{why}: the node was expected to find no server, but it ended ({:?}):\n{}\n{}",
        run.status,
        run.stdout,
        run.stderr
    );
    assert!(
        run.stdout.contains("no server found"),
        "{why}: expected the node to print `no server found`, it printed:\n{}",
        run.stdout
    );
}

// ---------------------------------------------------------------------------------------------
// Raw clients (sockets made inside the namespace, see `Netns::enter`)

/// Sends each datagram from a socket bound to `from` and collects what comes back within `wait`
/// after the last send.
fn udp_exchange(
    ns: &Netns,
    from: Ipv4Addr,
    to: SocketAddr,
    datagrams: &[Vec<u8>],
    wait: Duration,
) -> Vec<Vec<u8>> {
    ns.enter(|| {
        let socket = UdpSocket::bind((from, 0)).expect("bind UDP");
        for d in datagrams {
            socket.send_to(d, to).expect("send_to");
        }
        let deadline = Instant::now() + wait;
        let mut replies = Vec::new();
        let mut buf = vec![0u8; 65536];
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            socket
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            match socket.recv_from(&mut buf) {
                Ok((n, _)) => replies.push(buf[..n].to_vec()),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                Err(e) => panic!("recv_from: {e}"),
            }
        }
        replies
    })
}

/// A TCP connection to `to` from `from` (any port), made inside `ns`.
fn tcp_connect_from(ns: &Netns, from: Ipv4Addr, to: SocketAddr) -> Conn {
    ns.enter(|| {
        // std has no bind-before-connect, so build the socket by hand.
        // SAFETY: plain socket calls on a descriptor owned by the TcpStream made from it.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            let stream = TcpStream::from_raw_fd(fd);
            let sockaddr = |a: Ipv4Addr, port: u16| libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: port.to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(a).to_be(),
                },
                sin_zero: [0; 8],
            };
            let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            let local = sockaddr(from, 0);
            let rc = libc::bind(fd, &local as *const _ as *const libc::sockaddr, len);
            assert_eq!(rc, 0, "bind {from}: {}", std::io::Error::last_os_error());
            let SocketAddr::V4(to) = to else {
                panic!("IPv4 only")
            };
            let remote = sockaddr(*to.ip(), to.port());
            let rc = libc::connect(fd, &remote as *const _ as *const libc::sockaddr, len);
            assert_eq!(rc, 0, "connect {to}: {}", std::io::Error::last_os_error());
            Conn::from(stream)
        }
    })
}

fn tcp_connect(ns: &Netns, to: SocketAddr) -> Conn {
    ns.enter(|| TcpStream::connect_timeout(&to, Duration::from_secs(5)))
        .unwrap_or_else(|e| panic!("connect {to}: {e}"))
        .into()
}

/// A connection and the bytes read from it but not yet consumed (a read may bring more than
/// one reply).
struct Conn {
    stream: TcpStream,
    buf: BytesMut,
}

impl From<TcpStream> for Conn {
    fn from(stream: TcpStream) -> Conn {
        Conn {
            stream,
            buf: BytesMut::new(),
        }
    }
}

/// What came back on a connection. (The bytes are read by the failure messages.)
#[derive(Debug)]
#[allow(dead_code)]
enum Outcome {
    /// A whole frame, decoded.
    Reply(Reply),
    /// The peer closed (EOF or reset) after sending these bytes (no whole frame).
    Closed(Vec<u8>),
    /// Nothing conclusive within the wait; the bytes seen so far.
    Silent(Vec<u8>),
    /// A read error other than a close; the bytes seen before it.
    Error(std::io::Error, Vec<u8>),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Reply(reply) => write!(f, "the reply {}", short(&reply.to_term())),
            Outcome::Closed(b) if b.is_empty() => write!(f, "a close without a byte"),
            Outcome::Closed(b) => write!(
                f,
                "a close after {} bytes {:02x?}",
                b.len(),
                &b[..b.len().min(32)]
            ),
            Outcome::Error(e, b) => write!(f, "the read error `{e}` after {} bytes", b.len()),
            Outcome::Silent(b) => write!(
                f,
                "no reply and no close ({} bytes: {:02x?})",
                b.len(),
                &b[..b.len().min(32)]
            ),
        }
    }
}

/// A term as Erlang source, cut to a readable length.
fn short(term: &Term) -> String {
    let text = term.to_string();
    match text.char_indices().nth(300) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text,
    }
}

fn read_outcome(conn: &mut Conn, wait: Duration) -> Outcome {
    let deadline = Instant::now() + wait;
    let Conn { stream, buf } = conn;
    let frames = FrameDecoder::new(u32::MAX);
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        if let Some(frame) = frames.decode(buf).expect("no frame limit") {
            let reply = Reply::decode(&frame, &Decoder::new(Limits::reply()))
                .unwrap_or_else(|e| panic!("undecodable reply {frame:02x?}: {e}"));
            return Outcome::Reply(reply);
        }
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return Outcome::Silent(buf.to_vec());
        };
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match stream.read(&mut chunk) {
            Ok(0) => return Outcome::Closed(buf.to_vec()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Outcome::Silent(buf.to_vec())
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                        | ErrorKind::BrokenPipe
                ) =>
            {
                return Outcome::Closed(buf.to_vec())
            }
            Err(e) => return Outcome::Error(e, buf.to_vec()),
        }
    }
}

/// Sends `bytes` as they are (a frame or not). A write refused because the server already
/// closed is fine: the outcome says what happened.
fn send_raw(conn: &mut Conn, bytes: &[u8]) {
    if let Err(e) = conn.stream.write_all(bytes) {
        assert!(
            matches!(
                e.kind(),
                ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
            ),
            "write: {e}"
        );
    }
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(payload, &mut out).unwrap();
    out
}

fn request_frame(request: &Request) -> Vec<u8> {
    frame(&request.encode(Profile::Otp25).unwrap())
}

fn term_frame(term: &Term) -> Vec<u8> {
    encode_term_frame(term, Profile::Otp25).unwrap()
}

/// Sends one request on `stream` and returns the reply; panics on anything else.
fn ask(stream: &mut Conn, request: &Request) -> Reply {
    send_raw(stream, &request_frame(request));
    match read_outcome(stream, Duration::from_secs(10)) {
        Outcome::Reply(reply) => reply,
        other => panic!("{}: expected a reply, got {other}", request.to_term()),
    }
}

fn enoent(reply: &Reply) -> bool {
    let reason = match reply {
        Reply::Get(Err(r))
        | Reply::ListDir(Err(r))
        | Reply::ReadFileInfo(Err(r))
        | Reply::ReadLinkInfo(Err(r))
        | Reply::GetCwd(Err(r)) => r,
        _ => return false,
    };
    reason.as_atom() == Some("enoent")
}

fn error_reply(reason: &str) -> Term {
    Term::tuple([Term::atom("error"), Term::atom(reason)])
}

// ---------------------------------------------------------------------------------------------
// 1. Real nodes boot

#[test]
fn harness_boots_a_node_from_otps_own_boot_server() {
    let ns = Netns::new();
    let _server = Server::otp_reference(&ns);
    boot_node(&ns, Otp::System, "25");
}

#[test]
fn otp25_node_boots_and_runs_code() {
    let ns = Netns::new();
    let mut server = Server::start(&ns, &["--allow", "127.0.0.1"]);
    let system_erts = erts_versions(Path::new(ERLANG_ROOT));
    assert!(
        system_erts.iter().all(|v| server.erts.contains(v)),
        "the server announces erts={:?}, but {ERLANG_ROOT} holds {system_erts:?}",
        server.erts
    );
    let run = boot_node(&ns, Otp::System, "25");
    eprintln!("OTP 25 boot from erlboot serve: {:?}", run.elapsed);
    server.assert_alive("after an OTP 25 boot");
}

/// Replies in OTP 26+ encoding (UTF-8 atoms) to an OTP 25 node: its decoder takes both.
#[test]
fn otp25_node_boots_with_otp26_reply_encoding() {
    let ns = Netns::new();
    let _server = Server::start(&ns, &["--allow", "127.0.0.1", "--otp", "26"]);
    boot_node(&ns, Otp::System, "25");
}

/// The OTP 27 node in the chroot asks for its own absolute paths (`/usr/lib/erlang/...`), so
/// the server must see the chroot's tree at that path. Two ways that work:
/// - run a copy of the binary inside the same chroot (the chroot's glibc is newer than the
///   build machine's), here with `--erts-version 15.2.7`;
/// - run the binary where it is, in a private mount namespace with the chroot's
///   `/usr/lib/erlang` bind-mounted over the host's, here with `--any-version`.
#[test]
fn otp27_node_boots_from_a_server_in_its_chroot() {
    let erts = erts_versions(&otp27_root().join("usr/lib/erlang"));
    let ns = Netns::new();
    let mut server = otp27_server_in_chroot(&ns, &["--erts-version", &erts[0]]);
    assert_eq!(server.erts, erts);
    let run = boot_node(&ns, Otp::Chroot27, "27");
    eprintln!(
        "OTP 27 boot from erlboot serve in the chroot: {:?}",
        run.elapsed
    );
    server.assert_alive("after an OTP 27 boot");
}

/// `erlboot serve --allow 127.0.0.1 ARGS` run from a copy of the binary inside the OTP 27
/// chroot. The copy is removed when the returned server is dropped.
fn otp27_server_in_chroot(ns: &Netns, args: &[&str]) -> ChrootServer {
    let root = otp27_root();
    let scratch = Scratch::new_in(&root.join("tmp"));
    std::fs::copy(ERLBOOT, scratch.path.join("erlboot")).expect("copy erlboot into the chroot");
    let inside = Path::new("/tmp").join(scratch.path.file_name().unwrap());
    let mut command = ns.command("chroot");
    command
        .arg(&root)
        .arg(inside.join("erlboot"))
        .args(["serve", "--allow", "127.0.0.1"])
        .args(args);
    let server = Server::from_command(command, "erlboot serve in the OTP 27 chroot");
    ChrootServer {
        server,
        _scratch: scratch,
    }
}

/// A server running from a scratch copy; the server is dropped (killed) before the copy.
struct ChrootServer {
    server: Server,
    _scratch: Scratch,
}

impl std::ops::Deref for ChrootServer {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

impl std::ops::DerefMut for ChrootServer {
    fn deref_mut(&mut self) -> &mut Server {
        &mut self.server
    }
}

#[test]
fn otp27_node_boots_from_a_server_with_the_chroot_tree_bind_mounted() {
    require("unshare", "a private mount namespace for the bind mount");
    let root = otp27_root();
    let ns = Netns::new();
    let mut command = ns.command("unshare");
    command
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!(
        "mount --bind '{}' {ERLANG_ROOT} && exec '{ERLBOOT}' serve --allow 127.0.0.1 --any-version",
        root.join("usr/lib/erlang").display()
    ));
    let mut server = Server::from_command(command, "erlboot serve over a bind mount");
    let run = boot_node(&ns, Otp::Chroot27, "27");
    eprintln!(
        "OTP 27 boot from erlboot serve --any-version: {:?}",
        run.elapsed
    );
    server.assert_alive("after an OTP 27 boot");
}

// ---------------------------------------------------------------------------------------------
// 2. peer and slave nodes of a distributed master

#[test]
fn distributed_master_starts_peer_and_slave_nodes_that_boot_over_inet() {
    let ns = Netns::new();
    let _server = Server::start(&ns, &["--allow", "127.0.0.1"]);
    distributed(&ns, Otp::System, true);
}

#[test]
fn otp27_distributed_master_starts_a_peer_that_boots_over_inet() {
    let ns = Netns::new();
    let _server = otp27_server_in_chroot(&ns, &[]);
    distributed(&ns, Otp::Chroot27, false);
}

/// Runs epmd and a distributed master (`-sname master`) in `ns`; the master starts a `peer`
/// node, and with `slave` a `slave` node too, both with `-loader inet -hosts 127.0.0.1`, and
/// calls them. The host name (`vm` here) resolves through /etc/hosts, also in the chroot.
fn distributed(ns: &Netns, otp: Otp, slave: bool) {
    // epmd in the foreground, owned by the test (`-start_epmd false` below stops erl from
    // starting a daemon that would outlive it).
    let _epmd = Proc::spawn(match otp {
        Otp::System => {
            require("epmd", "distribution needs epmd in the namespace");
            let mut c = ns.command("epmd");
            c.args(["-address", "127.0.0.1"]);
            c
        }
        Otp::Chroot27 => {
            let mut c = ns.command("chroot");
            c.arg(otp27_root()).args(["epmd", "-address", "127.0.0.1"]);
            c
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while ns
        .enter(|| TcpStream::connect_timeout(&(LOCALHOST, 4369).into(), Duration::from_millis(200)))
        .is_err()
    {
        assert!(Instant::now() < deadline, "epmd did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    let peer = r#"
        Args = ["-loader", "inet", "-hosts", "127.0.0.1", "-setcookie", "c"],
        {ok, Peer, PeerNode} = peer:start_link(#{name => boot_peer, args => Args}),
        [1, 2, 3] = erpc:call(PeerNode, lists, seq, [1, 3]),
        {ok, [["inet"]]} = erpc:call(PeerNode, init, get_argument, [loader]),
        io:format("peer ~s lists=~s~n", [PeerNode, erpc:call(PeerNode, code, which, [lists])]),
        ok = peer:stop(Peer),
    "#;
    let slave_part = r#"
        [_, Host] = string:split(atom_to_list(node()), "@"),
        {ok, Slave} = slave:start(list_to_atom(Host), boot_slave,
                                  "-loader inet -hosts 127.0.0.1 -setcookie c"),
        [1, 2, 3] = rpc:call(Slave, lists, seq, [1, 3]),
        {ok, [["inet"]]} = rpc:call(Slave, init, get_argument, [loader]),
        io:format("slave ~s lists=~s~n", [Slave, rpc:call(Slave, code, which, [lists])]),
        ok = slave:stop(Slave),
    "#;
    let script = format!("{peer}{}halt(0).", if slave { slave_part } else { "" });
    let mut command = otp.erl(ns);
    command.args([
        "-sname",
        "master",
        "-setcookie",
        "c",
        "-start_epmd",
        "false",
        "-noshell",
        "-eval",
        &script,
    ]);
    let run = ns.run(command, Duration::from_secs(60));
    run.assert_success(&format!(
        "{otp:?}: distributed master with peer/slave nodes"
    ));
    let mut expected = vec!["peer boot_peer@"];
    if slave {
        expected.push("slave boot_slave@");
    }
    for who in expected {
        let line = run
            .stdout
            .lines()
            .find(|l| l.starts_with(who))
            .unwrap_or_else(|| panic!("no `{who}` line in:\n{}", run.stdout));
        assert!(
            line.contains(&format!("lists={ERLANG_ROOT}/lib/stdlib-")),
            "{line:?}"
        );
    }
    let what = if slave { "peer + slave" } else { "peer" };
    eprintln!("{otp:?} master + {what}: {:?}", run.elapsed);
}

// ---------------------------------------------------------------------------------------------
// 3. Elixir

/// `elixir` puts `-pa /usr/lib/elixir/bin/../lib/*/ebin` on the command line, so the node asks
/// for names such as `/usr/lib/elixir/bin/../lib/elixir/ebin/Elixir.Enum.beam`: `..` that stays
/// inside a root.
#[test]
fn elixir_boots_over_inet() {
    require("elixir", "the Elixir live test");
    let ns = Netns::new();
    let _server = Server::start(
        &ns,
        &[
            "--allow",
            "127.0.0.1",
            "--root",
            ERLANG_ROOT,
            "--root",
            ELIXIR_ROOT,
        ],
    );
    let mut command = elixir(&ns);
    command
        .args([
            "-e",
            r#"IO.puts("elixir sum=#{Enum.sum(1..10)} enum=#{:code.which(Enum)} loader=#{hd(hd(elem(:init.get_argument(:loader), 1)))}")"#,
        ]);
    let run = ns.run(command, BOOT_TIMEOUT);
    run.assert_success("elixir -e with -loader inet");
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("elixir "))
        .unwrap_or_else(|| panic!("no `elixir` line in:\n{}", run.stdout));
    assert!(
        line.starts_with("elixir sum=55 enum=/usr/lib/elixir/")
            && line.ends_with("/Elixir.Enum.beam loader=inet"),
        "{line:?}"
    );
    eprintln!("Elixir boot: {:?}", run.elapsed);
}

/// Without `--root /usr/lib/elixir` the jail keeps Elixir's modules from the node, which fails
/// to start Elixir rather than reading them some other way.
#[test]
fn elixir_without_its_root_does_not_start() {
    require("elixir", "the Elixir live test");
    let ns = Netns::new();
    let _server = Server::start(&ns, &["--allow", "127.0.0.1"]);
    let mut command = elixir(&ns);
    command.args(["-e", r#"IO.puts("elixir ran")"#]);
    let run = ns.run(command, BOOT_TIMEOUT);
    assert!(
        matches!(run.status, Some(s) if !s.success())
            && !run.stdout.contains("elixir ran")
            && run.stdout.contains("{elixir,start_cli,[]"),
        "expected `undef` for elixir:start_cli/0 and a failed exit, got {:?}:\n{}\n{}",
        run.status,
        run.stdout,
        run.stderr
    );
}

/// `elixir` in `ns`, its node booting with `-loader inet -hosts 127.0.0.1`.
fn elixir(ns: &Netns) -> Command {
    let mut command = ns.command("elixir");
    command
        .env("ELIXIR_ERL_OPTIONS", "-loader inet -hosts 127.0.0.1")
        .env("LANG", "C.UTF-8")
        .env("ERL_CRASH_DUMP_SECONDS", "0");
    command
}

// ---------------------------------------------------------------------------------------------
// More ways real nodes use a server

#[test]
fn eight_nodes_boot_at_once() {
    let ns = Netns::new();
    let mut server = Server::start(&ns, &["--allow", "127.0.0.1"]);
    let started = Instant::now();
    std::thread::scope(|scope| {
        let nodes: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| boot_node(&ns, Otp::System, "25")))
            .collect();
        for node in nodes {
            node.join().unwrap();
        }
    });
    eprintln!("8 parallel OTP 25 boots: {:?}", started.elapsed());
    server.assert_alive("after 8 parallel boots");
}

/// The server closes a connection idle for `--idle-timeout`; the node still loads a module
/// afterwards. It does not notice the close at once: OTP's `erl_prim_loader` drops the
/// `tcp_closed` message that arrives while it is idle, sends its next request into the closed
/// socket and waits out its 60 s reply timeout before it rediscovers the server and resends
/// (PROTOCOL.md §3.4). So an `--idle-timeout` under the client's own 60 s idle close costs a
/// node a 60 s stall; this test takes about a minute for that reason.
#[test]
fn node_survives_the_servers_idle_timeout() {
    let ns = Netns::new();
    let mut server = Server::start(&ns, &["--allow", "127.0.0.1", "--idle-timeout", "2"]);
    let mut command = Otp::System.erl(&ns);
    command.args([
        "-loader",
        "inet",
        "-hosts",
        "127.0.0.1",
        "-noshell",
        "-eval",
        r#"false = erlang:module_loaded(digraph),
           timer:sleep(4500),
           T0 = erlang:monotonic_time(millisecond),
           {module, digraph} = code:ensure_loaded(digraph),
           io:format("loaded after idle ~s in ~w ms~n",
                     [code:which(digraph), erlang:monotonic_time(millisecond) - T0]),
           init:stop()."#,
    ]);
    // One stall is expected; a loaded machine may pause the boot itself for more than 2 s and
    // cost a second one.
    let run = ns.run(command, Duration::from_secs(150));
    run.assert_success("a node loading a module after the server closed its idle connection");
    assert!(
        run.stdout
            .contains("loaded after idle /usr/lib/erlang/lib/stdlib-"),
        "{}",
        run.stdout
    );
    eprintln!(
        "idle close: {}",
        run.stdout
            .lines()
            .find(|l| l.starts_with("loaded"))
            .unwrap()
    );
    server.assert_alive("after an idle close");
}

/// The node's code path starts with ".", which the code server makes absolute with the
/// *server's* working directory (`get_cwd`), so a module in `--cwd` is loadable, as a module in
/// the cwd of OTP's boot server is. Recompiled between two boots from the same server, the
/// module is loaded anew: a reply the server remembered is not served stale.
#[test]
fn node_loads_a_module_from_the_servers_cwd() {
    require("erlc", "compiling the test module");
    let scratch = Scratch::new_in(&std::env::temp_dir());
    let dir = scratch.path.canonicalize().unwrap();
    let compile = |body: &str| {
        std::fs::write(
            dir.join("erlboot_live_hello.erl"),
            format!("-module(erlboot_live_hello).\n-export([hi/0]).\nhi() -> {body}.\n"),
        )
        .unwrap();
        let out = Command::new("erlc")
            .arg("-o")
            .arg(&dir)
            .arg(dir.join("erlboot_live_hello.erl"))
            .output()
            .expect("erlc");
        assert!(out.status.success(), "erlc: {out:?}");
    };
    compile("{hello, lists:sum([1,2,3])}");
    let d = dir.to_str().unwrap();
    let ns = Netns::new();
    let _server = Server::start(&ns, &["--allow", "127.0.0.1", "--root", d, "--cwd", d]);
    let boot = |expected: &str| {
        let mut command = Otp::System.erl(&ns);
        command.args([
            "-loader",
            "inet",
            "-hosts",
            "127.0.0.1",
            "-noshell",
            "-eval",
            r#"io:format("cwd module ~p ~s~n",
                         [erlboot_live_hello:hi(), code:which(erlboot_live_hello)]),
               init:stop()."#,
        ]);
        let run = ns.run(command, BOOT_TIMEOUT);
        run.assert_success("a node calling a module from the server's --cwd");
        assert!(
            run.stdout.contains(&format!(
                "cwd module {expected} {d}/erlboot_live_hello.beam"
            )),
            "{}",
            run.stdout
        );
    };
    boot("{hello,6}");
    compile("{changed, lists:sum([1,2,3,4])}");
    boot("{changed,10}");
}

/// A module inside an `.ez` archive under a root, put on the code path with `-pa`, loads
/// through the server's archive support.
#[test]
fn node_loads_a_module_from_an_ez_archive() {
    require("erlc", "compiling the test module");
    let scratch = Scratch::new_in(&std::env::temp_dir());
    let dir = scratch.path.canonicalize().unwrap();
    let app = "erlboot_live_ez-1.0";
    let ebin = dir.join("src").join(app).join("ebin");
    std::fs::create_dir_all(&ebin).unwrap();
    let source = dir.join("erlboot_live_ez.erl");
    std::fs::write(
        &source,
        "-module(erlboot_live_ez).\n-export([hi/0]).\nhi() -> {from_ez, lists:max([4,2,7])}.\n",
    )
    .unwrap();
    let out = Command::new("erlc")
        .arg("-o")
        .arg(&ebin)
        .arg(&source)
        .output()
        .expect("erlc");
    assert!(out.status.success(), "erlc: {out:?}");
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let ez = root.join(format!("{app}.ez"));
    let zip = format!(
        r#"{{ok, _}} = zip:create("{}", ["{app}"], [{{cwd, "{}"}}]), halt()."#,
        ez.display(),
        dir.join("src").display()
    );
    let out = Command::new("erl")
        .args(["-noshell", "-eval", &zip])
        .output()
        .expect("erl");
    assert!(out.status.success() && ez.exists(), "zip:create: {out:?}");

    let r = root.to_str().unwrap();
    let ns = Netns::new();
    let _server = Server::start(&ns, &["--allow", "127.0.0.1", "--root", r]);
    let code_dir = format!("{}/{app}/ebin", ez.display());
    let mut command = Otp::System.erl(&ns);
    command.args([
        "-loader",
        "inet",
        "-hosts",
        "127.0.0.1",
        "-pa",
        &code_dir,
        "-noshell",
        "-eval",
        r#"io:format("ez module ~p ~s~n", [erlboot_live_ez:hi(), code:which(erlboot_live_ez)]),
           init:stop()."#,
    ]);
    let run = ns.run(command, BOOT_TIMEOUT);
    run.assert_success("a node calling a module from an .ez archive");
    assert!(
        run.stdout.contains(&format!(
            "ez module {{from_ez,7}} {code_dir}/erlboot_live_ez.beam"
        )),
        "{}",
        run.stdout
    );
}

/// Four requests in one write get four replies, in order.
#[test]
fn pipelined_requests_are_answered_in_order() {
    let ns = Netns::new();
    let server = Server::start(&ns, &["--allow", "127.0.0.1"]);
    let mut stream = tcp_connect(&ns, server.tcp_target());
    let requests = [
        Request::ReadFileInfo(format!("{ERLANG_ROOT}/bin/start.boot")),
        Request::GetCwd,
        Request::ListDir(format!("{ERLANG_ROOT}/bin")),
        Request::Get(format!("{ERLANG_ROOT}/no/such/file")),
    ];
    let bytes: Vec<u8> = requests.iter().flat_map(request_frame).collect();
    send_raw(&mut stream, &bytes);
    for request in &requests {
        match read_outcome(&mut stream, Duration::from_secs(10)) {
            Outcome::Reply(reply) => assert_eq!(
                reply.command(),
                request.command(),
                "{}: got {}",
                request.to_term(),
                short(&reply.to_term())
            ),
            other => panic!("{}: expected a reply, got {other}", request.to_term()),
        }
    }
}

/// The default `--max-request` is 64 KiB: a frame of exactly 65,536 bytes is answered, one of
/// 65,537 closes the connection.
#[test]
fn default_max_request_is_64_kib() {
    let ns = Netns::new();
    let mut server = Server::start(&ns, &["--allow", "127.0.0.1"]);
    // 83 68 02 64 00 03 "get" 6B Len:16 Name is 12 bytes and the name.
    let request_of = |len: usize| {
        let name = format!("/{}", "a".repeat(len - 12 - 1));
        let frame = request_frame(&Request::Get(name));
        assert_eq!(frame.len(), 4 + len);
        frame
    };
    let mut stream = tcp_connect(&ns, server.tcp_target());
    send_raw(&mut stream, &request_of(65_536));
    match read_outcome(&mut stream, Duration::from_secs(10)) {
        Outcome::Reply(Reply::Get(Err(_))) => {}
        other => panic!("a 65,536-byte request: expected {{get,{{error,_}}}}, got {other}"),
    }
    let mut stream = tcp_connect(&ns, server.tcp_target());
    send_raw(&mut stream, &request_of(65_537));
    match read_outcome(&mut stream, Duration::from_secs(10)) {
        Outcome::Closed(b) if b.is_empty() => {}
        other => panic!("a 65,537-byte request: expected a close without a reply, got {other}"),
    }
    server.assert_alive("after an oversized request");
}

// ---------------------------------------------------------------------------------------------
// 4. Who gets nothing

#[test]
fn address_outside_the_allow_list_gets_no_udp_reply_and_no_tcp_byte() {
    let ns = Netns::new();
    ns.add_loopback_address(&OUTSIDER.to_string());
    let mut server = Server::start(&ns, &["--allow", "127.0.0.1"]);
    let query = Query::new(server.erts[0].as_bytes()).to_bytes();
    let wait = Duration::from_millis(700);

    // Control: the same query from an allowed address is answered with the TCP port.
    let replies = udp_exchange(
        &ns,
        LOCALHOST,
        server.udp_target(),
        std::slice::from_ref(&query),
        wait,
    );
    assert_eq!(replies.len(), 1, "allowed address: {replies:?}");
    let answer = Answer::parse(&replies[0]).expect("an EBOOTR answer");
    assert_eq!(answer.port, server.tcp.port());
    assert_eq!(answer.priority, 0);

    let replies = udp_exchange(&ns, OUTSIDER, server.udp_target(), &[query], wait);
    assert!(
        replies.is_empty(),
        "{OUTSIDER} is not allowed but got {replies:02x?}"
    );

    // TCP: closed without a byte, even after a valid request.
    let mut stream = tcp_connect_from(&ns, OUTSIDER, server.tcp_target());
    send_raw(
        &mut stream,
        &request_frame(&Request::Get(format!("{ERLANG_ROOT}/bin/start.boot"))),
    );
    match read_outcome(&mut stream, Duration::from_secs(5)) {
        Outcome::Closed(bytes) if bytes.is_empty() => {}
        other => panic!("{OUTSIDER} over TCP: expected a close without a byte, got {other}"),
    }
    // Control: the same request from 127.0.0.1 is served.
    let mut stream = tcp_connect_from(&ns, LOCALHOST, server.tcp_target());
    let reply = ask(
        &mut stream,
        &Request::Get(format!("{ERLANG_ROOT}/bin/start.boot")),
    );
    assert!(matches!(reply, Reply::Get(Ok(_))), "{reply:?}");
    server.assert_alive("after a denied client");
}

#[test]
fn real_node_outside_the_allow_list_does_not_boot() {
    let ns = Netns::new();
    // The node's datagrams come from 127.0.0.1, which this server does not allow.
    let mut server = Server::start(&ns, &["--allow", &OUTSIDER.to_string()]);
    assert_node_does_not_boot(
        &ns,
        Otp::System,
        Duration::from_secs(4),
        "server allowing only 127.0.0.2",
    );
    server.assert_alive("after a denied node");
}

#[test]
fn other_erts_version_gets_nothing_unless_any_version() {
    let ns = Netns::new();
    let mut server = Server::start(&ns, &["--allow", "127.0.0.1"]);
    let ours = server.erts.clone();
    let wait = Duration::from_millis(700);
    for other in ["15.2.7", "13.1", "13.1.5\n", "13.1.50"] {
        assert!(!ours.iter().any(|v| v == other));
        let replies = udp_exchange(
            &ns,
            LOCALHOST,
            server.udp_target(),
            &[Query::new(other.as_bytes()).to_bytes()],
            wait,
        );
        assert!(
            replies.is_empty(),
            "EBOOTQ{other:?} to a server of {ours:?} was answered: {replies:02x?}"
        );
    }
    // A real OTP 27 node (erts 15.2.7) finds no server.
    assert_node_does_not_boot(
        &ns,
        Otp::Chroot27,
        Duration::from_secs(4),
        "OTP 27 node against an OTP 25 server",
    );

    // With --any-version, the same query is answered.
    let any = Server::start(
        &ns,
        &[
            "--allow",
            "127.0.0.1",
            "--any-version",
            "--udp-port",
            "4400",
        ],
    );
    let replies = udp_exchange(
        &ns,
        LOCALHOST,
        any.udp_target(),
        &[Query::new(&b"15.2.7"[..]).to_bytes()],
        wait,
    );
    assert_eq!(replies.len(), 1, "--any-version: {replies:02x?}");
    assert_eq!(Answer::parse(&replies[0]).unwrap().port, any.tcp.port());
    server.assert_alive("after queries of other versions");
}

// ---------------------------------------------------------------------------------------------
// 5. Hostile input, then a real boot from the same server

#[test]
fn bad_input_gets_the_contracted_answers_and_a_node_still_boots() {
    raise_fd_limit();
    let ns = Netns::new();
    // A larger --max-request so that the deep term is decoded rather than refused for size;
    // a short --frame-timeout so that the silent partial frame is closed quickly.
    let mut server = Server::start(
        &ns,
        &[
            "--allow",
            "127.0.0.1",
            "--max-request",
            "262144",
            "--frame-timeout",
            "2",
        ],
    );
    let start_boot = format!("{ERLANG_ROOT}/bin/start.boot");
    let probe = Request::ReadFileInfo(start_boot.clone());
    let mut failures = Vec::new();

    // UDP garbage: no replies, and the server keeps answering.
    let garbage: Vec<Vec<u8>> = vec![
        vec![],
        b"EBOOTQ".to_vec(),
        b"EBOOTR\0\x01\x0213.1.5".to_vec(),
        b"hello".to_vec(),
        vec![0xff; 1400],
        vec![0; 65000],
        [b"EBOOTQ".as_slice(), &[0xff; 300]].concat(),
    ];
    let replies = udp_exchange(
        &ns,
        LOCALHOST,
        server.udp_target(),
        &garbage,
        Duration::from_millis(700),
    );
    if !replies.is_empty() {
        failures.push(format!("garbage datagrams were answered: {replies:02x?}"));
    }
    let replies = udp_exchange(
        &ns,
        LOCALHOST,
        server.udp_target(),
        &[Query::new(server.erts[0].as_bytes()).to_bytes()],
        Duration::from_millis(700),
    );
    if replies.len() != 1 {
        failures.push(format!("a valid query after garbage got {replies:02x?}"));
    }

    // Frames answered on a connection that stays open.
    let badarg = Term::tuple([
        Term::atom("error"),
        Term::tuple([Term::atom("badarg"), Term::list([])]),
    ]);
    let unknown = error_reply("unknown_command");
    let get_badarg = Term::tuple([Term::atom("get"), error_reply("badarg")]);
    let mut nested = vec![131u8];
    for _ in 0..100_000 {
        nested.extend_from_slice(&[104, 1]);
    }
    nested.push(106);
    let cases: Vec<(&str, Vec<u8>, Vec<Term>)> = vec![
        ("a non-term frame", frame(&[1, 2, 3]), vec![badarg.clone()]),
        ("an empty frame", frame(&[]), vec![badarg.clone()]),
        ("a bad tag", frame(&[131, 200]), vec![badarg.clone()]),
        (
            "a truncated term",
            frame(&[131, 104, 2, 100, 0, 3, b'g']),
            vec![badarg.clone()],
        ),
        (
            "the atom foo",
            term_frame(&Term::atom("foo")),
            vec![unknown.clone()],
        ),
        (
            "{get}",
            term_frame(&Term::tuple([Term::atom("get")])),
            vec![unknown.clone()],
        ),
        (
            "{get,\"a\",1}",
            term_frame(&Term::tuple([
                Term::atom("get"),
                Term::string("a"),
                Term::Int(1),
            ])),
            vec![unknown.clone()],
        ),
        (
            "{frobnicate,\"/\"}",
            term_frame(&Term::tuple([Term::atom("frobnicate"), Term::string("/")])),
            vec![unknown.clone()],
        ),
        (
            "{get,<<\"/usr/lib/erlang/bin/start.boot\">>}",
            term_frame(&Term::tuple([
                Term::atom("get"),
                Term::binary(start_boot.clone().into_bytes()),
            ])),
            vec![get_badarg.clone()],
        ),
        (
            "{get,42}",
            term_frame(&Term::tuple([Term::atom("get"), Term::Int(42)])),
            vec![get_badarg.clone()],
        ),
        // Undecodable within the server's limits, or decoded and unknown: either is a reply.
        (
            "100,000 nested tuples",
            frame(&nested),
            vec![badarg.clone(), unknown.clone()],
        ),
    ];
    for (what, bytes, expected) in &cases {
        let mut stream = tcp_connect(&ns, server.tcp_target());
        send_raw(&mut stream, bytes);
        match read_outcome(&mut stream, Duration::from_secs(10)) {
            Outcome::Reply(reply) if expected.contains(&reply.to_term()) => {
                // The connection stays open and still serves.
                send_raw(&mut stream, &request_frame(&probe));
                match read_outcome(&mut stream, Duration::from_secs(10)) {
                    Outcome::Reply(Reply::ReadFileInfo(Ok(_))) => {}
                    other => failures.push(format!(
                        "{what}: after the right reply, a valid request got {other}"
                    )),
                }
            }
            other => failures.push(format!(
                "{what}: expected {}, got {other}",
                expected
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )),
        }
    }

    // Closed, with no reply: a 4 GiB length prefix, a frame over --max-request, and a partial
    // frame followed by silence (--frame-timeout 2).
    let closing: Vec<(&str, Vec<u8>, Duration)> = vec![
        (
            "a 4 GiB length prefix",
            [&[0xff, 0xff, 0xff, 0xff][..], &[131, 106]].concat(),
            Duration::from_secs(5),
        ),
        (
            "a frame over --max-request",
            frame(&vec![0u8; 300_000]),
            Duration::from_secs(5),
        ),
        (
            "a partial frame then silence",
            vec![0, 0, 0, 16, 131, 104],
            Duration::from_secs(8),
        ),
    ];
    for (what, bytes, wait) in &closing {
        let mut stream = tcp_connect(&ns, server.tcp_target());
        let sent = Instant::now();
        send_raw(&mut stream, bytes);
        match read_outcome(&mut stream, *wait) {
            Outcome::Closed(b) if b.is_empty() => {
                eprintln!("{what}: closed after {:?}", sent.elapsed())
            }
            other => failures.push(format!(
                "{what}: expected the connection closed without a reply within {wait:?}, got {other}"
            )),
        }
    }
    server.assert_alive("after bad frames");

    // A flood of 5,000 connections, each sending one valid request.
    let flood = flood(&ns, server.tcp_target(), 5_000, &probe);
    eprintln!("flood: {flood:?}");
    if flood.wrong > 0 {
        failures.push(format!(
            "flood: {} connections got bytes that are not the right reply ({flood:?})",
            flood.wrong
        ));
    }
    if flood.served == 0 {
        failures.push(format!("flood: not one connection was served ({flood:?})"));
    }
    server.assert_alive("after a flood of connections");

    // After all of it, a real node boots from the same server process.
    boot_node(&ns, Otp::System, "25");
    server.assert_alive("after the final boot");
    assert!(
        failures.is_empty(),
        "{} bad-input checks failed:\n- {}\n--- server log (tail)\n{}",
        failures.len(),
        failures.join("\n- "),
        server.log()
    );
}

#[derive(Debug, Default)]
struct Flood {
    /// Connections established.
    connected: usize,
    /// Connects that failed or timed out.
    refused: usize,
    /// Connections that got the right reply.
    served: usize,
    /// Connections closed without a byte.
    closed: usize,
    /// Connections with no reply and no close within the wait.
    silent: usize,
    /// Connections that got anything else.
    wrong: usize,
    elapsed: Duration,
}

/// Opens `n` connections at once, sends `request` on each, and sorts what comes back.
fn flood(ns: &Netns, to: SocketAddr, n: usize, request: &Request) -> Flood {
    let started = Instant::now();
    let frame = request_frame(request);
    let mut report = Flood::default();
    let mut streams: Vec<TcpStream> = ns.enter(|| {
        let mut streams = Vec::new();
        let mut consecutive_failures = 0;
        let give_up = Instant::now() + Duration::from_secs(20);
        for _ in 0..n {
            if Instant::now() > give_up {
                break;
            }
            match TcpStream::connect_timeout(&to, Duration::from_millis(500)) {
                Ok(s) => {
                    consecutive_failures = 0;
                    streams.push(s);
                }
                Err(_) => {
                    report.refused += 1;
                    consecutive_failures += 1;
                    // A server that stopped accepting fills the kernel's queue; do not spend
                    // minutes on timeouts.
                    if consecutive_failures >= 20 {
                        break;
                    }
                }
            }
        }
        streams
    });
    report.connected = streams.len();
    for s in &mut streams {
        s.set_nonblocking(true).unwrap();
        // The whole frame is small; a full send buffer would only mean the server is not reading.
        let _ = s.write(&frame);
    }
    // Poll all of them until each has an answer or a close, or 15 s have passed.
    let mut bufs: Vec<Vec<u8>> = vec![Vec::new(); streams.len()];
    let mut done = vec![false; streams.len()];
    let deadline = Instant::now() + Duration::from_secs(15);
    let frames = FrameDecoder::new(u32::MAX);
    let decoder = Decoder::new(Limits::reply());
    while Instant::now() < deadline && done.iter().any(|d| !d) {
        let mut fds: Vec<libc::pollfd> = streams
            .iter()
            .zip(&done)
            .filter(|(_, d)| !**d)
            .map(|(s, _)| libc::pollfd {
                fd: s.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: poll over descriptors owned by `streams`, alive for the call.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 200) };
        if ready <= 0 {
            continue;
        }
        for fd in fds.iter().filter(|f| f.revents != 0) {
            let i = streams.iter().position(|s| s.as_raw_fd() == fd.fd).unwrap();
            let mut chunk = [0u8; 4096];
            match streams[i].read(&mut chunk) {
                Ok(0) | Err(_) => {
                    done[i] = true;
                    if bufs[i].is_empty() {
                        report.closed += 1;
                    } else {
                        report.wrong += 1;
                    }
                }
                Ok(k) => {
                    bufs[i].extend_from_slice(&chunk[..k]);
                    let mut buf = BytesMut::from(&bufs[i][..]);
                    if let Ok(Some(payload)) = frames.decode(&mut buf) {
                        done[i] = true;
                        match Reply::decode(&payload, &decoder) {
                            Ok(Reply::ReadFileInfo(Ok(info)))
                                if info.file_type == FileType::Regular =>
                            {
                                report.served += 1
                            }
                            _ => report.wrong += 1,
                        }
                    }
                }
            }
        }
    }
    report.silent = done.iter().filter(|d| !**d).count();
    report.elapsed = started.elapsed();
    report
}

/// `--max-connections` and `--max-per-ip` hold exactly: a flood gets that many connections
/// served (they stay open) and the rest closed without a byte.
#[test]
fn connection_limits_hold_under_a_flood() {
    raise_fd_limit();
    let ns = Netns::new();
    let probe = Request::ReadFileInfo(format!("{ERLANG_ROOT}/bin/start.boot"));
    for (args, limit) in [
        (["--max-per-ip", "50", "--max-connections", "5000"], 50),
        (["--max-per-ip", "5000", "--max-connections", "40"], 40),
    ] {
        let mut server = Server::start(
            &ns,
            &[&["--allow", "127.0.0.1", "--udp-port", "0"][..], &args].concat(),
        );
        let report = flood(&ns, server.tcp_target(), 300, &probe);
        assert!(
            report.connected == 300
                && report.served == limit
                && report.closed == 300 - limit
                && report.wrong == 0,
            "{args:?}: expected {limit} served and {} closed, got {report:?}",
            300 - limit
        );
        server.assert_alive("after a flood over the limits");
    }
}

fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit on this process.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 6. The path jail

/// A scratch directory, removed on drop.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn new_in(parent: &Path) -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = parent.join(format!(
            "erlboot-live-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        Scratch { path }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[test]
fn path_jail_serves_inside_the_root_and_nothing_outside() {
    use std::os::unix::fs::symlink;
    let scratch = Scratch::new_in(&std::env::temp_dir());
    let base = scratch.path.canonicalize().unwrap();
    let root = base.join("root");
    let evil = base.join("root-evil");
    for dir in [&root.join("sub"), &evil] {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(root.join("a.txt"), "inside a\n").unwrap();
    std::fs::write(root.join("sub/b.txt"), "inside b\n").unwrap();
    std::fs::write(base.join("secret.txt"), "outside\n").unwrap();
    std::fs::write(evil.join("secret.txt"), "outside too\n").unwrap();
    symlink("sub", root.join("in")).unwrap(); // a link that stays inside
    symlink("../secret.txt", root.join("up")).unwrap(); // a relative link out of the root
    symlink(&base, root.join("out")).unwrap(); // an absolute link to the directory above
    symlink("/etc/hostname", root.join("hostname")).unwrap();
    symlink(root.join("sub/b.txt"), root.join("abs_in")).unwrap(); // absolute, stays inside
    symlink("no-such-file", root.join("dangling")).unwrap();

    let ns = Netns::new();
    let r = root.to_str().unwrap();
    let mut server = Server::start(&ns, &["--allow", "127.0.0.1", "--root", r]);
    let mut stream = tcp_connect(&ns, server.tcp_target());
    let mut failures = Vec::new();

    // Served inside the root.
    let inside_get = [
        (format!("{r}/a.txt"), "inside a\n"),
        (format!("{r}/sub/b.txt"), "inside b\n"),
        (format!("{r}/in/b.txt"), "inside b\n"),
        (format!("{r}/sub/../a.txt"), "inside a\n"),
        (format!("{r}/abs_in"), "inside b\n"),
    ];
    for (name, content) in &inside_get {
        match ask(&mut stream, &Request::Get(name.clone())) {
            Reply::Get(Ok(bytes)) if bytes == content.as_bytes() => {}
            other => failures.push(format!(
                "{{get,{name:?}}}: expected {content:?}, got {}",
                short(&other.to_term())
            )),
        }
    }
    match ask(&mut stream, &Request::ListDir(r.to_owned())) {
        Reply::ListDir(Ok(mut names)) => {
            names.sort();
            if names
                != [
                    "a.txt", "abs_in", "dangling", "hostname", "in", "out", "sub", "up",
                ]
            {
                failures.push(format!("{{list_dir,{r:?}}}: {names:?}"));
            }
        }
        other => failures.push(format!("{{list_dir,{r:?}}}: {}", short(&other.to_term()))),
    }
    match ask(&mut stream, &Request::ReadFileInfo(format!("{r}/a.txt"))) {
        Reply::ReadFileInfo(Ok(info)) if info.file_type == FileType::Regular && info.size == 9 => {}
        other => failures.push(format!("read_file_info a.txt: {}", short(&other.to_term()))),
    }
    match ask(&mut stream, &Request::ReadFileInfo(format!("{r}/in"))) {
        Reply::ReadFileInfo(Ok(info)) if info.file_type == FileType::Directory => {}
        other => failures.push(format!(
            "read_file_info in (link to sub): {}",
            short(&other.to_term())
        )),
    }

    // OTP's answers for the other cases inside the root.
    let expect_error = |reply: &Reply, reason: &str| match reply {
        Reply::Get(Err(r))
        | Reply::ListDir(Err(r))
        | Reply::ReadFileInfo(Err(r))
        | Reply::ReadLinkInfo(Err(r)) => r.as_atom() == Some(reason),
        _ => false,
    };
    for (request, reason) in [
        (Request::Get(format!("{r}/sub")), "eisdir"),
        (Request::ListDir(format!("{r}/a.txt")), "enotdir"),
        (Request::ReadFileInfo(format!("{r}/dangling")), "enoent"),
    ] {
        let reply = ask(&mut stream, &request);
        if !expect_error(&reply, reason) {
            failures.push(format!(
                "{}: expected {{error,{reason}}}, got {}",
                request.to_term(),
                short(&reply.to_term())
            ));
        }
    }
    for link in ["in", "dangling", "abs_in"] {
        match ask(&mut stream, &Request::ReadLinkInfo(format!("{r}/{link}"))) {
            Reply::ReadLinkInfo(Ok(info)) if info.file_type == FileType::Symlink => {}
            other => failures.push(format!(
                "read_link_info {link}: expected a symlink, got {}",
                short(&other.to_term())
            )),
        }
    }

    // Outside: `..`, symlinks out, absolute and relative paths elsewhere, a sibling directory
    // whose name merely starts with the root's. (The local Erlang installation is always a
    // root too, so it is not "outside" here.)
    let b = base.to_str().unwrap();
    let outside = [
        Request::Get(format!("{r}/../secret.txt")),
        Request::Get(format!("{r}/sub/../../secret.txt")),
        Request::Get(format!("{r}/up")),
        Request::Get(format!("{r}/out/secret.txt")),
        Request::Get(format!("{r}/hostname")),
        Request::Get(format!("{b}/secret.txt")),
        Request::Get(format!("{r}-evil/secret.txt")),
        Request::Get("/etc/hostname".into()),
        Request::Get("/proc/self/status".into()),
        Request::Get("../../../../../../etc/hostname".into()),
        Request::ListDir(format!("{r}/..")),
        Request::ListDir(format!("{r}/out")),
        Request::ListDir("/".into()),
        Request::ReadFileInfo(format!("{r}/out/secret.txt")),
        Request::ReadFileInfo(format!("{r}/up")),
        Request::ReadFileInfo("/etc/passwd".into()),
        Request::ReadLinkInfo(format!("{b}/secret.txt")),
    ];
    for request in &outside {
        let reply = ask(&mut stream, request);
        if !enoent(&reply) || reply.command() != request.command() {
            failures.push(format!(
                "{}: expected {{{},{{error,enoent}}}}, got {}",
                request.to_term(),
                request.command().unwrap().atom(),
                short(&reply.to_term())
            ));
        }
    }
    server.assert_alive("after the jail checks");
    assert!(
        failures.is_empty(),
        "{} jail checks failed:\n- {}\n--- server log (tail)\n{}",
        failures.len(),
        failures.join("\n- "),
        server.log()
    );
}

/// Files of 0 bytes, 1 byte and 24 MiB come back whole, twice (the second time perhaps from
/// the cache, here smaller than the big file).
#[test]
fn files_of_every_size_are_served_whole() {
    let scratch = Scratch::new_in(&std::env::temp_dir());
    let root = scratch.path.canonicalize().unwrap();
    let big: Vec<u8> = (0..24u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let files: [(&str, &[u8]); 3] = [("empty", b""), ("one", b"x"), ("big", &big)];
    for (name, content) in &files {
        std::fs::write(root.join(name), content).unwrap();
    }
    let r = root.to_str().unwrap();
    let ns = Netns::new();
    let mut server = Server::start(
        &ns,
        &[
            "--allow",
            "127.0.0.1",
            "--root",
            r,
            "--cache-size",
            "1048576",
        ],
    );
    let mut stream = tcp_connect(&ns, server.tcp_target());
    for _ in 0..2 {
        for (name, content) in &files {
            match ask(&mut stream, &Request::Get(format!("{r}/{name}"))) {
                Reply::Get(Ok(bytes)) if bytes[..] == content[..] => {}
                Reply::Get(Ok(bytes)) => panic!(
                    "{name}: {} bytes came back, not the {} bytes on disk",
                    bytes.len(),
                    content.len()
                ),
                other => panic!("{name}: {}", short(&other.to_term())),
            }
        }
    }
    server.assert_alive("after large files");
}

// ---------------------------------------------------------------------------------------------
// The process contract

#[test]
fn sigterm_and_sigint_exit_cleanly() {
    for (signal, format) in [(libc::SIGTERM, "text"), (libc::SIGINT, "json")] {
        let ns = Netns::new();
        let mut server = Server::start(&ns, &["--allow", "127.0.0.1", "--log-format", format]);
        // A session in progress does not hold the exit up.
        let mut stream = tcp_connect(&ns, server.tcp_target());
        let reply = ask(&mut stream, &Request::GetCwd);
        assert!(matches!(reply, Reply::GetCwd(_)), "{reply:?}");
        server.proc.signal(signal);
        let status = server.proc.wait_timeout(Duration::from_secs(10));
        match status {
            Some(status) if status.code() == Some(0) => {}
            other => panic!(
                "signal {signal}: expected exit status 0 within 10 s, got {other:?}\n{}",
                server.log()
            ),
        }
        let first = server.proc.stdout();
        assert_eq!(
            first.lines().count(),
            1,
            "stdout must hold exactly the listening line: {first:?}"
        );
        let log = server.proc.stderr();
        if format == "json" {
            let bad: Vec<&str> = log
                .lines()
                .filter(|l| !(l.starts_with('{') && l.ends_with('}')))
                .collect();
            assert!(
                !log.is_empty() && bad.is_empty(),
                "--log-format json: lines that are not JSON objects: {bad:?}"
            );
        }
    }
}
