//! The tokio driver on loopback TCP (no discovery, so no UDP port 4368): the allow list at
//! accept, the connection limits, the timeouts, and shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use erlboot::etf::{Profile, Term};
use erlboot::net::{Blocking, Server, ServerConfig, TokioRuntime};
use erlboot::proto::frame::encode_term_frame;
use erlboot::server::{
    AllowList, ConnectionLimits, MemorySource, SessionConfig, SessionLimits, Versions,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

const PATIENCE: Duration = Duration::from_secs(10);

fn config(allow: &str, connections: ConnectionLimits, limits: SessionLimits) -> ServerConfig {
    ServerConfig {
        tcp: "127.0.0.1:0".parse().unwrap(),
        udp: None,
        allow: AllowList::new([allow.parse().unwrap()]),
        versions: Versions::Any,
        session: SessionConfig {
            limits,
            ..SessionConfig::default()
        },
        connections,
        reply_cache_bytes: 1 << 20,
    }
}

/// Starts a server; returns its address, the trigger that stops it, and its task.
async fn start(
    config: ServerConfig,
) -> (SocketAddr, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let tree = MemorySource::new("/srv").with_file("/srv/hello", &b"hello"[..]);
    let server = Server::bind(TokioRuntime::new(), config, Blocking(Arc::new(tree)))
        .await
        .unwrap();
    let addr = server.tcp_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    (addr, stop, task)
}

fn get_hello() -> Vec<u8> {
    let request = Term::tuple([Term::atom("get"), Term::string("hello")]);
    encode_term_frame(&request, Profile::Otp25).unwrap()
}

/// Sends a `get` and reads the reply frame; `None` if the server closed the connection.
async fn fetch(stream: &mut TcpStream) -> Option<Vec<u8>> {
    stream.write_all(&get_hello()).await.ok()?;
    let mut header = [0; 4];
    tokio::time::timeout(PATIENCE, stream.read_exact(&mut header))
        .await
        .expect("an answer or a close in time")
        .ok()?;
    let mut payload = vec![0; u32::from_be_bytes(header) as usize];
    stream.read_exact(&mut payload).await.ok()?;
    Some(payload)
}

/// Whether the server closes the connection without sending a byte.
async fn closed_without_a_byte(stream: &mut TcpStream) -> bool {
    let mut buf = [0; 1];
    match tokio::time::timeout(PATIENCE, stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => false,
        Err(_) => panic!("neither data nor a close within {PATIENCE:?}"),
    }
}

#[tokio::test]
async fn serves_allowed_clients_and_closes_on_others_without_a_byte() {
    let (addr, stop, task) =
        start(config("127.0.0.1", Default::default(), Default::default())).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    assert!(fetch(&mut stream).await.unwrap().ends_with(b"hello"));
    stop.send(()).unwrap();
    task.await.unwrap();

    let (addr, _stop, _task) =
        start(config("10.0.0.0/8", Default::default(), Default::default())).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    assert!(closed_without_a_byte(&mut stream).await);
}

#[tokio::test]
async fn connection_limits_refuse_the_excess_and_free_their_slots() {
    let limits = ConnectionLimits {
        max_connections: 10,
        max_per_ip: 2,
    };
    let (addr, _stop, _task) = start(config("127.0.0.0/8", limits, Default::default())).await;
    let mut first = TcpStream::connect(addr).await.unwrap();
    let mut second = TcpStream::connect(addr).await.unwrap();
    assert!(fetch(&mut first).await.is_some());
    assert!(fetch(&mut second).await.is_some());
    let mut third = TcpStream::connect(addr).await.unwrap();
    assert!(
        closed_without_a_byte(&mut third).await,
        "a third from one address"
    );
    drop(first);
    // The slot frees once the server sees the close.
    let mut again = None;
    for _ in 0..100 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        if fetch(&mut stream).await.is_some() {
            again = Some(stream);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "a freed slot is reused");
    assert!(fetch(&mut second).await.is_some(), "the others go on");
}

#[tokio::test]
async fn silent_and_stalled_connections_are_closed_and_the_server_goes_on() {
    let limits = SessionLimits {
        idle_timeout: Some(Duration::from_millis(300)),
        frame_timeout: Some(Duration::from_millis(200)),
        ..SessionLimits::default()
    };
    let (addr, _stop, _task) = start(config("127.0.0.1", Default::default(), limits)).await;
    let mut idle = TcpStream::connect(addr).await.unwrap();
    assert!(fetch(&mut idle).await.is_some());
    assert!(closed_without_a_byte(&mut idle).await, "closed when idle");
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled.write_all(&[0, 0, 0, 50, 131]).await.unwrap();
    assert!(
        closed_without_a_byte(&mut stalled).await,
        "closed with a partial frame"
    );
    let mut huge = TcpStream::connect(addr).await.unwrap();
    huge.write_all(&[0xFF, 0xFF, 0xFF, 0xFF]).await.unwrap();
    assert!(
        closed_without_a_byte(&mut huge).await,
        "closed on a 4 GiB length"
    );
    let mut fresh = TcpStream::connect(addr).await.unwrap();
    assert!(fetch(&mut fresh).await.is_some());
}

#[tokio::test]
async fn shutdown_closes_open_connections() {
    let (addr, stop, task) =
        start(config("127.0.0.1", Default::default(), Default::default())).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    assert!(fetch(&mut stream).await.is_some());
    stop.send(()).unwrap();
    tokio::time::timeout(PATIENCE, task).await.unwrap().unwrap();
    assert!(closed_without_a_byte(&mut stream).await);
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}
