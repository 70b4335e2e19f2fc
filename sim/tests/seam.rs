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
    use erlboot::net::{Runtime, TcpListener, TcpStream};
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
        let to = SocketAddr::from((v4(turmoil::lookup("writer")), TCP_PORT));
        let mut stream = TurmoilRuntime::new().connect(to).await?;
        let mut buf = [0; 64];
        let n = stream.read(&mut buf).await?;
        assert_eq!(&buf[..n], b"head:contents");
        // A read of bytes is handed the segment whole, whatever size it asks for, and leaves
        // its buffer alone.
        let mut unused = bytes::BytesMut::new();
        let bytes = std::future::poll_fn(|cx| stream.poll_read_bytes(cx, &mut unused, 4)).await?;
        assert_eq!(&bytes[..], b"contents");
        assert_eq!(unused.capacity(), 0);
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
            let frame = bytes::Bytes::from(b"a whole reply frame".to_vec());
            at.store(frame.as_ptr() as usize, Ordering::SeqCst);
            let n = std::future::poll_fn(|cx| stream.poll_write_bytes(cx, &frame)).await?;
            assert_eq!(n, frame.len());
            std::future::pending::<()>().await;
            Ok(())
        }
    });
    sim.client("reader", async move {
        let to = SocketAddr::from((v4(turmoil::lookup("writer")), TCP_PORT));
        let mut stream = TurmoilRuntime::new().connect(to).await?;
        let mut unused = bytes::BytesMut::new();
        let bytes = std::future::poll_fn(|cx| stream.poll_read_bytes(cx, &mut unused, 4)).await?;
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
