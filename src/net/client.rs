//! The tokio driver of the inet loader: the [`Loader`]'s actions on real sockets.
//!
//! Every protocol decision is the loader's; this performs its actions (a UDP socket for
//! discovery, TCP connections) and hands back what the network does, with the time. Sockets
//! report through one channel, so the loader sees events in the order they happened.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info};

use super::clock::Clock;
use crate::proto::Request;
use crate::time::Instant;

use crate::client::{Action, ConnId, Event, Loader, LoaderConfig, LoaderError};
use crate::client::{ReplyError, Response};

/// What the sockets report.
enum Network {
    Datagram {
        socket: u64,
        from: SocketAddrV4,
        bytes: Vec<u8>,
    },
    Connected {
        conn: ConnId,
        stream: TcpStream,
    },
    ConnectFailed {
        conn: ConnId,
    },
    Data {
        conn: ConnId,
        bytes: Vec<u8>,
    },
    Closed {
        conn: ConnId,
    },
}

/// Why a call did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The loader refused the request.
    #[error(transparent)]
    Loader(#[from] LoaderError),
    /// The deadline passed first (the loader itself never gives up).
    #[error("no answer before the deadline")]
    Deadline,
}

/// One TCP connection's tasks and write half.
struct Conn {
    task: JoinHandle<()>,
    writer: Option<OwnedWriteHalf>,
}

/// The inet loader on tokio sockets.
pub struct Client {
    loader: Loader,
    clock: Clock,
    discovery: Option<(u64, Arc<UdpSocket>, JoinHandle<()>)>,
    sockets: u64,
    conns: BTreeMap<ConnId, Conn>,
    tx: mpsc::UnboundedSender<Network>,
    rx: mpsc::UnboundedReceiver<Network>,
    events: Vec<(Instant, Event)>,
}

impl Client {
    /// A client that starts discovering at once, as a booting node does.
    pub fn new(config: LoaderConfig) -> Client {
        let clock = Clock::start();
        let (tx, rx) = mpsc::unbounded_channel();
        Client {
            loader: Loader::new(config, clock.now()),
            clock,
            discovery: None,
            sockets: 0,
            conns: BTreeMap::new(),
            tx,
            rx,
            events: Vec::new(),
        }
    }

    /// The driver's clock (its epoch is when the client was made).
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// What the loader did since the last call, with when: discovery rounds, connects,
    /// resends (the replies themselves are returned by [`Client::call`]).
    pub fn take_events(&mut self) -> Vec<(Instant, Event)> {
        std::mem::take(&mut self.events)
    }

    /// Sends `request` and runs the loader until it has the answer, or until `deadline`.
    pub async fn call(
        &mut self,
        request: &Request,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Result<Response, ReplyError>, CallError> {
        self.perform().await;
        self.loader.request(self.clock.now(), request)?;
        loop {
            self.perform().await;
            while let Some(event) = self.loader.poll_event() {
                match event {
                    Event::Reply(reply) => return Ok(reply),
                    event => {
                        log(&event);
                        self.events.push((self.clock.now(), event));
                    }
                }
            }
            let wake = self.loader.poll_timeout().map(|at| self.clock.to_tokio(at));
            let wake = match (wake, deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            tokio::select! {
                report = self.rx.recv() => {
                    let report = report.expect("the client holds a sender");
                    self.deliver(report);
                }
                () = sleep_until(wake) => {
                    if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                        return Err(CallError::Deadline);
                    }
                    self.loader.handle_timeout(self.clock.now());
                }
            }
        }
    }

    fn deliver(&mut self, report: Network) {
        let now = self.clock.now();
        match report {
            Network::Datagram {
                socket,
                from,
                bytes,
            } => {
                // A datagram for a socket the loader has closed since is not delivered: it
                // died with that socket.
                if self.discovery.as_ref().map(|d| d.0) == Some(socket) {
                    self.loader.handle_datagram(now, from, &bytes);
                }
            }
            Network::Connected { conn, stream } => {
                let Some(entry) = self.conns.get_mut(&conn) else {
                    return;
                };
                let (mut reader, writer) = stream.into_split();
                entry.writer = Some(writer);
                let tx = self.tx.clone();
                entry.task = tokio::spawn(async move {
                    let mut buf = vec![0; 64 * 1024];
                    loop {
                        match reader.read(&mut buf).await {
                            Ok(0) | Err(_) => {
                                let _ = tx.send(Network::Closed { conn });
                                return;
                            }
                            Ok(n) => {
                                let bytes = buf[..n].to_vec();
                                if tx.send(Network::Data { conn, bytes }).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
                self.loader.handle_connected(now, conn);
            }
            Network::ConnectFailed { conn } => {
                if self.conns.remove(&conn).is_some() {
                    self.loader.handle_connect_failed(now, conn);
                }
            }
            Network::Data { conn, bytes } => {
                if self.conns.contains_key(&conn) {
                    self.loader.handle_data(now, conn, &bytes);
                }
            }
            Network::Closed { conn } => {
                if self.conns.remove(&conn).is_some() {
                    self.loader.handle_closed(now, conn);
                }
            }
        }
    }

    /// Performs every action the loader asks for.
    async fn perform(&mut self) {
        while let Some(action) = self.loader.poll_action() {
            match action {
                Action::OpenDiscovery => self.open_discovery().await,
                Action::Query { to, datagram } => {
                    // A failed send is ignored, as OTP ignores it.
                    if let Some((_, socket, _)) = &self.discovery {
                        let _ = socket.send_to(&datagram, SocketAddr::V4(to)).await;
                    }
                }
                Action::CloseDiscovery => {
                    if let Some((_, _, task)) = self.discovery.take() {
                        task.abort();
                    }
                }
                Action::Connect { conn, to } => {
                    let tx = self.tx.clone();
                    let task = tokio::spawn(async move {
                        let report = match TcpStream::connect(SocketAddr::V4(to)).await {
                            Ok(stream) => Network::Connected { conn, stream },
                            Err(_) => Network::ConnectFailed { conn },
                        };
                        let _ = tx.send(report);
                    });
                    self.conns.insert(conn, Conn { task, writer: None });
                }
                Action::Send { conn, frame } => self.send(conn, frame).await,
                Action::Close { conn } => {
                    if let Some(closed) = self.conns.remove(&conn) {
                        closed.task.abort();
                    }
                }
            }
        }
    }

    async fn open_discovery(&mut self) {
        if let Some((_, _, task)) = self.discovery.take() {
            task.abort();
        }
        self.sockets += 1;
        let id = self.sockets;
        let socket = match UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).await {
            Ok(socket) => Arc::new(socket),
            // Without a socket the queries go nowhere, and the loader's rounds find no server,
            // as OTP's would.
            Err(error) => {
                info!(%error, "discovery socket could not be opened");
                return;
            }
        };
        let _ = socket.set_broadcast(true);
        let tx = self.tx.clone();
        let reader = Arc::clone(&socket);
        let task = tokio::spawn(async move {
            let mut buf = vec![0; 64 * 1024];
            while let Ok((n, from)) = reader.recv_from(&mut buf).await {
                let SocketAddr::V4(from) = from else { continue };
                let bytes = buf[..n].to_vec();
                if tx
                    .send(Network::Datagram {
                        socket: id,
                        from,
                        bytes,
                    })
                    .is_err()
                {
                    return;
                }
            }
        });
        self.discovery = Some((id, socket, task));
    }

    async fn send(&mut self, conn: ConnId, frame: Bytes) {
        let Some(writer) = self.conns.get_mut(&conn).and_then(|c| c.writer.as_mut()) else {
            return;
        };
        if writer.write_all(&frame).await.is_err() {
            // The reader reports the close; the loader resends from there.
            debug!(?conn, "send failed");
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        for conn in self.conns.values() {
            conn.task.abort();
        }
        if let Some((_, _, task)) = &self.discovery {
            task.abort();
        }
    }
}

fn log(event: &Event) {
    match event {
        Event::NoServerFound { sleep } => info!(?sleep, "no server found"),
        Event::Connected { server, .. } => info!(server = %server.addr, "connected"),
        Event::Resending { reason, .. } => info!(?reason, "resending after a new discovery"),
        event => debug!(?event, "loader"),
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
