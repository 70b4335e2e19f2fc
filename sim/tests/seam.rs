//! The drivers that ship, over the second implementation of the socket seam: erlboot's server
//! driver and client driver on turmoil's simulated network and clock, with file answers that
//! arrive late or fail, and a host outside the allow list.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use erlboot::client::{LoaderConfig, ReplyError};
use erlboot::etf::{Profile, Term};
use erlboot::net::{CallError, Client, Server, ServerConfig};
use erlboot::proto::frame::encode_term_frame;
use erlboot::proto::Request;
use erlboot::server::{
    AllowList, Cidr, ConnectionLimits, FileError, MemorySource, SessionConfig, SessionLimits,
    Versions,
};
use erlboot_sim::{FaultyFiles, FileFault, TurmoilRuntime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TCP_PORT: u16 = 4000;
const SLOW: Duration = Duration::from_secs(5);

fn v4(ip: IpAddr) -> Ipv4Addr {
    match ip {
        IpAddr::V4(ip) => ip,
        IpAddr::V6(ip) => panic!("turmoil gave an IPv6 address {ip}"),
    }
}

fn tree() -> Arc<MemorySource> {
    Arc::new(
        MemorySource::new("/cwd")
            .with_file("/lib/a.beam", &b"aaa"[..])
            .with_file("/lib/slow.beam", &b"slow"[..])
            .with_file("/lib/bad.beam", &b"bad"[..]),
    )
}

/// A boot server's configuration: discovery answered, every host allowed, no reply cache.
fn config(session: SessionConfig) -> ServerConfig {
    ServerConfig {
        tcp: SocketAddr::from((Ipv4Addr::UNSPECIFIED, TCP_PORT)),
        udp: Some(SocketAddr::from((
            Ipv4Addr::UNSPECIFIED,
            erlboot::proto::discovery::PORT,
        ))),
        allow: AllowList::new([Cidr::new(Ipv4Addr::UNSPECIFIED, 0).unwrap()]),
        versions: Versions::Any,
        session,
        connections: ConnectionLimits::default(),
        reply_cache_bytes: 0,
    }
}

/// A world of a boot server that allows only `node`, a `node` and an `outsider`.
fn world(seed: u64) -> turmoil::Sim<'static> {
    turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(300))
        .build()
}

fn start_server(sim: &mut turmoil::Sim<'static>, allowed: Ipv4Addr) {
    sim.host("server", move || async move {
        let files = FaultyFiles::new(tree(), Duration::from_millis(1));
        files.set_fault("/lib/slow.beam", FileFault::Slow(SLOW));
        files.set_fault("/lib/bad.beam", FileFault::Fail(FileError::Io));
        let config = ServerConfig {
            allow: AllowList::new([Cidr::new(allowed, 32).unwrap()]),
            reply_cache_bytes: 1 << 20,
            ..config(SessionConfig::default())
        };
        let server = Server::bind(TurmoilRuntime::new(), config, files).await?;
        server.run(std::future::pending()).await;
        Ok(())
    });
}

fn get(name: &str) -> Request {
    Request::Get(name.to_owned())
}

fn contents(reply: Result<erlboot::client::Response, ReplyError>) -> Vec<u8> {
    let reply = reply.expect("file contents");
    match reply.value().binary() {
        Some(bytes) => bytes.to_vec(),
        None => panic!("not file contents: {}", reply.value()),
    }
}

/// A connection to the `writer` host's port.
async fn connect_to_writer() -> std::io::Result<erlboot_sim::TurmoilStream> {
    use erlboot::net::Runtime;
    let to = SocketAddr::from((v4(turmoil::lookup("writer")), TCP_PORT));
    TurmoilRuntime::new().connect(to).await
}

/// The next segment to arrive on `stream`, handed over as it arrived.
async fn next_segment(stream: &mut erlboot_sim::TurmoilStream) -> std::io::Result<bytes::Bytes> {
    use erlboot::net::TcpStream;
    // A read of bytes is handed the segment whole, whatever size it asks for, and leaves its
    // buffer alone.
    let mut unused = bytes::BytesMut::new();
    let bytes = std::future::poll_fn(|cx| stream.poll_read_bytes(cx, &mut unused, 4)).await?;
    assert_eq!(unused.capacity(), 0);
    Ok(bytes)
}

#[test]
fn a_node_boots_through_the_shipping_drivers_with_late_and_failing_answers() -> turmoil::Result {
    let mut sim = world(7);
    sim.client("node", async {
        let server = v4(turmoil::lookup("server"));
        let config = LoaderConfig::new(vec![server], "13.1.5");
        let mut client = Client::new(TurmoilRuntime::new(), config);

        let a = client.call(&get("/lib/a.beam"), None).await?;
        assert_eq!(contents(a), b"aaa");

        let asked = client.now();
        let slow = client.call(&get("/lib/slow.beam"), None).await?;
        assert_eq!(contents(slow), b"slow");
        let waited = client.now() - asked;
        assert!(waited >= SLOW, "the late answer took {waited:?}");
        assert!(waited < SLOW + Duration::from_secs(1), "took {waited:?}");

        let bad = client.call(&get("/lib/bad.beam"), None).await?;
        assert_eq!(bad, Err(ReplyError::Server(Term::atom("eio"))));

        // The connection survived both, and a file answered before is answered again.
        let again = client.call(&get("/lib/a.beam"), None).await?;
        assert_eq!(contents(again), b"aaa");
        let cwd = client.call(&Request::GetCwd, None).await?;
        assert_eq!(cwd.expect("the cwd").value(), &Term::string("/cwd"));
        Ok(())
    });
    let node = v4(sim.lookup("node"));
    start_server(&mut sim, node);
    sim.run()
}

#[test]
fn a_host_outside_the_allow_list_is_neither_answered_nor_sent_a_byte() -> turmoil::Result {
    let mut sim = world(11);
    sim.client("outsider", async {
        let server = v4(turmoil::lookup("server"));
        // Discovery: three rounds of queries go unanswered.
        let config = LoaderConfig::new(vec![server], "13.1.5");
        let mut client = Client::new(TurmoilRuntime::new(), config);
        let deadline = client.now() + Duration::from_secs(20);
        let outcome = client.call(&get("/lib/a.beam"), Some(deadline)).await;
        assert!(matches!(outcome, Err(CallError::Deadline)), "{outcome:?}");
        // A connection straight to the TCP port is closed without a byte.
        let mut stream =
            turmoil::net::TcpStream::connect(SocketAddr::from((server, TCP_PORT))).await?;
        let request = encode_term_frame(&get("/lib/a.beam").to_term(), Profile::Otp25)?;
        let _ = stream.write_all(&request).await;
        let mut buf = [0; 64];
        let read = stream.read(&mut buf).await;
        assert!(matches!(read, Ok(0) | Err(_)), "the server sent {read:?}");
        Ok(())
    });
    sim.client("node", async { Ok(()) });
    let node = v4(sim.lookup("node"));
    start_server(&mut sim, node);
    sim.run()
}

/// A vectored write is one segment: the reader gets both buffers in one read, as from a
/// kernel's `writev`, not the first alone.
#[test]
fn a_vectored_write_arrives_as_one_segment() {
    use erlboot::net::{Runtime, TcpListener};
    use std::io::IoSlice;

    let mut sim = world(1);
    sim.host("writer", || async {
        let runtime = TurmoilRuntime::new();
        let listener = runtime
            .listen(SocketAddr::from((Ipv4Addr::UNSPECIFIED, TCP_PORT)))
            .await?;
        let bufs = [IoSlice::new(b"head:"), IoSlice::new(b"contents")];
        let (mut stream, _) = listener.accept().await?;
        assert!(tokio::io::AsyncWrite::is_write_vectored(&stream));
        assert_eq!(stream.write_vectored(&bufs).await?, 13);
        assert_eq!(stream.write_vectored(&bufs[1..]).await?, 8);
        std::future::pending::<()>().await;
        Ok(())
    });
    sim.client("reader", async {
        let mut stream = connect_to_writer().await?;
        let mut buf = [0; 64];
        let n = stream.read(&mut buf).await?;
        assert_eq!(&buf[..n], b"head:contents");
        assert_eq!(&next_segment(&mut stream).await?[..], b"contents");
        Ok(())
    });
    sim.run().unwrap();
}

/// Bytes written as they are held become the segment itself: the reader is handed the very
/// memory the writer held, not a copy.
#[test]
fn bytes_written_as_held_arrive_without_a_copy() {
    use erlboot::net::{Runtime, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicUsize, Ordering};

    let sent = Arc::new(AtomicUsize::new(0));
    let mut sim = world(1);
    let at = Arc::clone(&sent);
    sim.host("writer", move || {
        let at = Arc::clone(&at);
        async move {
            let runtime = TurmoilRuntime::new();
            let listener = runtime
                .listen(SocketAddr::from((Ipv4Addr::UNSPECIFIED, TCP_PORT)))
                .await?;
            let (mut stream, _) = listener.accept().await?;
            let mut frame = bytes::Bytes::from(b"a whole reply frame".to_vec());
            at.store(frame.as_ptr() as usize, Ordering::SeqCst);
            let n = std::future::poll_fn(|cx| stream.poll_write_bytes(cx, &mut frame)).await?;
            assert_eq!(n, 19);
            assert!(frame.is_empty(), "what was written is taken out");
            std::future::pending::<()>().await;
            Ok(())
        }
    });
    sim.client("reader", async move {
        let mut stream = connect_to_writer().await?;
        let bytes = next_segment(&mut stream).await?;
        assert_eq!(&bytes[..], b"a whole reply frame");
        assert_eq!(bytes.as_ptr() as usize, sent.load(Ordering::SeqCst));
        Ok(())
    });
    sim.run().unwrap();
}

/// A connection attempt the loader gives up (its connect timeout) ends there: the client
/// driver's attempt is a task of its own, which must not live on and connect later. A
/// discovery answer points at a port whose listener never accepts, so the attempt never
/// ends by itself; the runtime counts the attempts dropped before they ended.
#[test]
fn an_attempt_given_up_is_aborted() {
    use erlboot::net::{Runtime, UdpSocket};
    use erlboot::proto::discovery::{Answer, Query};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts its connect futures dropped before they ended.
    #[derive(Clone)]
    struct Watched {
        inner: TurmoilRuntime,
        abandoned: Arc<AtomicUsize>,
    }

    struct Attempt(Option<Arc<AtomicUsize>>);

    impl Drop for Attempt {
        fn drop(&mut self) {
            if let Some(abandoned) = self.0.take() {
                abandoned.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    impl Runtime for Watched {
        type Udp = <TurmoilRuntime as Runtime>::Udp;
        type Listener = <TurmoilRuntime as Runtime>::Listener;
        type Stream = <TurmoilRuntime as Runtime>::Stream;
        type Timer = <TurmoilRuntime as Runtime>::Timer;

        async fn bind_udp(&self, addr: SocketAddr) -> std::io::Result<Self::Udp> {
            self.inner.bind_udp(addr).await
        }

        async fn listen(&self, addr: SocketAddr) -> std::io::Result<Self::Listener> {
            self.inner.listen(addr).await
        }

        async fn connect(&self, addr: SocketAddr) -> std::io::Result<Self::Stream> {
            let mut attempt = Attempt(Some(Arc::clone(&self.abandoned)));
            let stream = self.inner.connect(addr).await;
            attempt.0 = None;
            stream
        }

        fn now(&self) -> erlboot::time::Instant {
            self.inner.now()
        }

        fn timer(&self, at: erlboot::time::Instant) -> Self::Timer {
            self.inner.timer(at)
        }
    }

    let mut sim = world(3);
    sim.host("server", || async {
        let runtime = TurmoilRuntime::new();
        // Listening, never accepting: a connect waits for ever.
        let _listener = runtime
            .listen(SocketAddr::from((Ipv4Addr::UNSPECIFIED, TCP_PORT)))
            .await?;
        let any = SocketAddr::from((Ipv4Addr::UNSPECIFIED, erlboot::proto::discovery::PORT));
        let udp = runtime.bind_udp(any).await?;
        let mut buf = [0; 512];
        loop {
            let (n, from) = udp.recv_from(&mut buf).await?;
            if Query::parse(&buf[..n]).is_ok() {
                let answer = Answer {
                    priority: 0,
                    port: TCP_PORT,
                    version: b"13.1.5".to_vec(),
                };
                udp.send_to(&answer.to_bytes(), from).await?;
            }
        }
    });
    sim.client("node", async {
        let server = v4(turmoil::lookup("server"));
        let mut config = LoaderConfig::new(vec![server], "13.1.5");
        config.timings.connect_timeout = Duration::from_secs(2);
        let abandoned = Arc::new(AtomicUsize::new(0));
        let runtime = Watched {
            inner: TurmoilRuntime::new(),
            abandoned: Arc::clone(&abandoned),
        };
        let mut client = Client::new(runtime, config);
        let deadline = client.now() + Duration::from_secs(30);
        let outcome = client.call(&get("/lib/a.beam"), Some(deadline)).await;
        assert!(matches!(outcome, Err(CallError::Deadline)), "{outcome:?}");
        // The attempts given up (one every connect timeout, after a discovery) ended then.
        let given_up = abandoned.load(Ordering::SeqCst);
        assert!(given_up >= 1, "{given_up} attempts ended when given up");
        Ok(())
    });
    sim.run().unwrap();
}

/// A frame left half-sent is cut off by the frame timeout, counted from its first bytes, even
/// though the connection's idle timeout, armed first, comes much later: the server driver
/// moves its timer to the earlier deadline.
#[test]
fn a_stalled_frame_is_cut_off_at_its_own_deadline() {
    const FRAME: Duration = Duration::from_secs(2);
    const IDLE: Duration = Duration::from_secs(60);
    let mut sim = world(5);
    sim.host("server", || async {
        let config = config(SessionConfig {
            limits: SessionLimits {
                idle_timeout: Some(IDLE),
                frame_timeout: Some(FRAME),
                ..SessionLimits::default()
            },
            ..SessionConfig::default()
        });
        let files = FaultyFiles::new(tree(), Duration::ZERO);
        let server = Server::bind(TurmoilRuntime::new(), config, files).await?;
        server.run(std::future::pending()).await;
        Ok(())
    });
    sim.client("node", async {
        let to = SocketAddr::from((v4(turmoil::lookup("server")), TCP_PORT));
        let mut stream = turmoil::net::TcpStream::connect(to).await?;
        let request = encode_term_frame(&get("/lib/a.beam").to_term(), Profile::Otp25)?;
        stream.write_all(&request).await?;
        let mut buf = [0; 64];
        assert!(stream.read(&mut buf).await? > 0, "answered");
        tokio::time::sleep(Duration::from_secs(5)).await;
        let stalled = tokio::time::Instant::now();
        stream.write_all(&request[..request.len() - 1]).await?;
        let read = stream.read(&mut buf).await;
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        let after = stalled.elapsed();
        assert!(
            after >= FRAME && after < FRAME + Duration::from_secs(1),
            "cut off after {after:?}"
        );
        Ok(())
    });
    sim.run().unwrap();
}

/// A connection the loader gives up on (its reply timed out) is closed, not kept open beside
/// the next one: once the late answer is out, the server holds only the new connection.
#[test]
fn a_connection_given_up_is_closed() {
    use erlboot::net::Control;
    use std::sync::Mutex;

    let control: Arc<Mutex<Option<Control>>> = Arc::default();
    let mut sim = world(9);
    let shared = Arc::clone(&control);
    sim.host("server", move || {
        let shared = Arc::clone(&shared);
        async move {
            let files = FaultyFiles::new(tree(), Duration::ZERO);
            // Later than the 60 s reply timeout, for the first asking only.
            files.set_fault("/lib/slow.beam", FileFault::Slow(Duration::from_secs(70)));
            let healer = files.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(30)).await;
                healer.heal();
            });
            let config = config(SessionConfig::default());
            let server = Server::bind(TurmoilRuntime::new(), config, files).await?;
            *shared.lock().unwrap() = Some(server.control());
            server.run(std::future::pending()).await;
            Ok(())
        }
    });
    sim.client("node", async move {
        let server = v4(turmoil::lookup("server"));
        let config = LoaderConfig::new(vec![server], "13.1.5");
        let mut client = Client::new(TurmoilRuntime::new(), config);
        let slow = client.call(&get("/lib/slow.beam"), None).await?;
        assert_eq!(contents(slow), b"slow");
        let resent = client
            .take_events()
            .iter()
            .any(|(_, event)| matches!(event, erlboot::client::Event::Resending { .. }));
        assert!(resent, "the request was resent on a new connection");
        // Past the late answer on the first connection.
        tokio::time::sleep(Duration::from_secs(15)).await;
        let open = control.lock().unwrap().as_ref().unwrap().open_connections();
        assert_eq!(open, 1, "connections the server holds");
        Ok(())
    });
    sim.run().unwrap();
}

/// A tree whose answers a reply cache may keep, counting the questions it is asked.
struct Counted {
    tree: erlboot_conformance::rebuild::CapturedFiles,
    asked: std::sync::atomic::AtomicUsize,
}

impl Counted {
    fn new() -> Counted {
        let mut tree = erlboot_conformance::rebuild::CapturedFiles::default();
        tree.insert(
            erlboot::server::Question::Get("/lib/a.beam".into()),
            &Ok(erlboot::server::Found::Contents(bytes::Bytes::from_static(
                b"aaa",
            ))),
        );
        Counted {
            tree,
            asked: Default::default(),
        }
    }

    fn asked(&self) -> usize {
        self.asked.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl erlboot::server::FileSource for Counted {
    fn get(&self, name: &str) -> Result<bytes::Bytes, FileError> {
        self.tree.get(name)
    }
    fn list_dir(&self, name: &str) -> Result<Vec<String>, FileError> {
        self.tree.list_dir(name)
    }
    fn file_info(
        &self,
        name: &str,
        follow: erlboot::server::Follow,
    ) -> Result<erlboot::proto::FileInfo, FileError> {
        self.tree.file_info(name, follow)
    }
    fn cwd(&self) -> Result<String, FileError> {
        self.tree.cwd()
    }
    fn find(
        &self,
        question: &erlboot::server::FileQuestion,
    ) -> Result<erlboot::server::Found, FileError> {
        self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.tree.find(question)
    }
    fn version(&self) -> Option<erlboot::server::Version> {
        self.tree.version()
    }
    fn reuse(
        &self,
        question: &erlboot::server::Question,
        info: Option<&erlboot::proto::FileInfo>,
    ) -> erlboot::server::Reuse {
        self.tree.reuse(question, info)
    }
}

/// A server with a reply cache over `files`, whose replies each take `per_reply` of its one
/// worker.
fn start_caching_server(sim: &mut turmoil::Sim<'static>, files: FaultyFiles, per_reply: Duration) {
    sim.host("server", move || {
        let files = files.clone();
        async move {
            let costs = erlboot_sim::Costs {
                workers: 1,
                per_request: per_reply,
                ns_per_byte: 0.0,
            };
            let capacity = erlboot_sim::Capacity::new(costs, [1e6, 1e6], 0.0, Duration::ZERO, 0);
            let runtime =
                TurmoilRuntime::new().with_capacity(Arc::new(std::sync::Mutex::new(capacity)));
            let config = ServerConfig {
                reply_cache_bytes: 1 << 20,
                ..config(SessionConfig::default())
            };
            let server = Server::bind(runtime, config, files).await?;
            server.run(std::future::pending()).await;
            Ok(())
        }
    });
}

/// A server's replies wait for its capacity whether its reply cache gives them or its files
/// do: the cache answers the same question again without the files, and as late.
#[test]
fn replies_from_the_reply_cache_wait_for_the_servers_capacity_too() -> turmoil::Result {
    const PER_REPLY: Duration = Duration::from_secs(2);
    let source = Arc::new(Counted::new());
    let files = FaultyFiles::new(Arc::clone(&source) as Arc<_>, Duration::ZERO);
    let mut sim = world(5);
    start_caching_server(&mut sim, files, PER_REPLY);
    sim.client("node", async move {
        let server = v4(turmoil::lookup("server"));
        let mut client = Client::new(
            TurmoilRuntime::new(),
            LoaderConfig::new(vec![server], "13.1.5"),
        );
        // Connected before the clock starts: discovery's replies are not the capacity's.
        let _ = client.call(&Request::GetCwd, None).await?;
        for _ in 0..3 {
            let asked = client.now();
            let a = client.call(&get("/lib/a.beam"), None).await?;
            assert_eq!(contents(a), b"aaa");
            let waited = client.now() - asked;
            assert!(waited >= PER_REPLY, "the reply took {waited:?}");
            assert!(
                waited < PER_REPLY + Duration::from_millis(100),
                "took {waited:?}"
            );
        }
        assert_eq!(source.asked(), 2, "the cwd and the file, each asked once");
        Ok(())
    });
    sim.run()
}

/// A fault set on a file whose reply the cache holds applies from the next request, and
/// once healed the file is read again: the faults' changes move the files' version on, which
/// makes the cache forget.
#[test]
fn a_fault_on_a_remembered_file_applies_at_once() -> turmoil::Result {
    let source = Arc::new(Counted::new());
    let files = FaultyFiles::new(Arc::clone(&source) as Arc<_>, Duration::ZERO);
    let mut sim = world(6);
    start_caching_server(&mut sim, files.clone(), Duration::ZERO);
    sim.client("node", async move {
        let server = v4(turmoil::lookup("server"));
        let mut client = Client::new(
            TurmoilRuntime::new(),
            LoaderConfig::new(vec![server], "13.1.5"),
        );
        let a = client.call(&get("/lib/a.beam"), None).await?;
        assert_eq!(contents(a), b"aaa");
        let a = client.call(&get("/lib/a.beam"), None).await?;
        assert_eq!(contents(a), b"aaa");
        assert_eq!(source.asked(), 1, "the second answer is the cache's");

        files.set_fault("/lib/a.beam", FileFault::Fail(FileError::Io));
        for _ in 0..2 {
            let failed = client.call(&get("/lib/a.beam"), None).await?;
            assert_eq!(failed, Err(ReplyError::Server(Term::atom("eio"))));
        }

        files.set_fault("/lib/a.beam", FileFault::Slow(SLOW));
        for _ in 0..2 {
            let asked = client.now();
            let slow = client.call(&get("/lib/a.beam"), None).await?;
            assert_eq!(contents(slow), b"aaa");
            assert!(
                client.now() - asked >= SLOW,
                "a slow file is slow every time"
            );
        }
        let read = source.asked();

        files.heal();
        for _ in 0..2 {
            let a = client.call(&get("/lib/a.beam"), None).await?;
            assert_eq!(contents(a), b"aaa");
        }
        assert_eq!(
            source.asked(),
            read + 1,
            "read again once healed, then remembered"
        );
        Ok(())
    });
    sim.run()
}

/// A reply whose head and contents are, byte for byte, a frame the stream was given whole,
/// the contents its very bytes, goes out as that frame; the same bytes held elsewhere are
/// gathered, and arrive the same.
#[test]
fn a_reply_that_is_a_whole_frame_goes_out_as_that_frame() {
    use erlboot::net::{Runtime, TcpListener};
    use erlboot_sim::WholeFrames;
    use std::io::IoSlice;

    let frame = bytes::Bytes::from_static(b"head:contents");
    let contents = frame.slice(5..);
    let whole = Arc::new(WholeFrames::new([(frame.clone(), contents.clone())]));
    assert_eq!(whole.find(b"head:", &contents), Some(&frame));
    assert_eq!(whole.find(b"HEAD:", &contents), None, "another head");
    assert_eq!(
        whole.find(b"head:", b"contents"),
        None,
        "the same bytes elsewhere"
    );
    assert_eq!(
        whole.find(b"head:c", &contents[1..]),
        None,
        "not where they start"
    );
    let mut sim = world(1);
    let (sent, copy) = (frame.clone(), contents.to_vec());
    sim.host("writer", move || {
        let (whole, contents, copy) = (Arc::clone(&whole), contents.clone(), copy.clone());
        async move {
            let runtime = TurmoilRuntime::new().with_whole_frames(whole);
            let listener = runtime
                .listen(SocketAddr::from((Ipv4Addr::UNSPECIFIED, TCP_PORT)))
                .await?;
            let (mut stream, _) = listener.accept().await?;
            let head = IoSlice::new(b"head:");
            for contents in [&contents[..], &copy[..]] {
                let written = stream
                    .write_vectored(&[head, IoSlice::new(contents)])
                    .await?;
                assert_eq!(written, 13);
            }
            std::future::pending::<()>().await;
            Ok(())
        }
    });
    sim.client("reader", async move {
        let mut stream = connect_to_writer().await?;
        for is_frame in [true, false] {
            let bytes = next_segment(&mut stream).await?;
            assert_eq!(bytes, sent);
            assert_eq!(bytes.as_ptr() == sent.as_ptr(), is_frame);
        }
        Ok(())
    });
    sim.run().unwrap();
}
