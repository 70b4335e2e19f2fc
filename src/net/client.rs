//! The client driver: the inet loader's actions on a [`Runtime`]'s sockets.
//!
//! Every protocol decision is the [`Loader`]'s; this performs its actions (a UDP socket for
//! discovery, TCP connections) and hands back what the network does, with the time. Open
//! connections are read where the loader waits, in [`Client::call`]; the discovery socket and
//! connection attempts, which finish on their own, report through one channel. The same code
//! runs on tokio (`erlboot fetch`, `erlboot boot`) and on a simulated network.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info};

use crate::client::{Action, ConnId, Event, Loader, LoaderConfig, LoaderError};
use crate::client::{ReplyError, Response};
use crate::proto::Request;
use crate::time::Instant;

use super::runtime::{Runtime, TcpStream, Timer, UdpSocket};

/// The least and the most a connection's read asks for. Replies are mostly tens of bytes and
/// sometimes hundreds of kilobytes: a read that fills its buffer doubles the next one, and one
/// that fills less than a quarter of it halves the next, so that a node waiting for a small
/// reply holds little and a large one arrives in few reads.
const READ_MIN: usize = 4 * 1024;
const READ_MAX: usize = 256 * 1024;

/// What a discovery read takes. A client reads an answer's first nine bytes (`EBOOTR`, the
/// priority and the port) and ignores the version after them, as OTP's loader does, so a
/// longer datagram cut short here is read the same; a node waiting in discovery holds this
/// much rather than a buffer for the largest datagram.
const ANSWER_BUFFER: usize = 1024;

/// What the discovery socket and connection attempts report.
enum Network<S> {
    Datagram {
        socket: u64,
        from: SocketAddrV4,
        bytes: Vec<u8>,
    },
    Connected {
        conn: ConnId,
        stream: S,
    },
    ConnectFailed {
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

/// One TCP connection: connecting (its attempt's task), then open.
enum Conn<S> {
    Connecting(JoinHandle<()>),
    Open {
        stream: S,
        /// What the next read asks for ([`next_read_size`]).
        read_size: usize,
        /// The next read's buffer (see [`TcpStream::poll_read_bytes`]).
        buf: BytesMut,
    },
}

impl<S> Drop for Conn<S> {
    fn drop(&mut self) {
        if let Conn::Connecting(task) = self {
            task.abort();
        }
    }
}

/// What a connection's read gave.
enum Read {
    Data(Bytes),
    Closed,
}

/// The inet loader on a runtime's sockets.
pub struct Client<R: Runtime> {
    runtime: R,
    loader: Loader,
    /// The one timer every call sleeps on, and when it is armed for. It is moved only when a
    /// deadline comes earlier than the armed one: every request postpones the reply timeout,
    /// and a timer that fires early (the loader finds nothing due) is far cheaper than moving
    /// it per request.
    timer: R::Timer,
    armed: Option<Instant>,
    discovery: Option<(u64, Arc<R::Udp>, JoinHandle<()>)>,
    sockets: u64,
    conns: BTreeMap<ConnId, Conn<R::Stream>>,
    tx: mpsc::UnboundedSender<Network<R::Stream>>,
    rx: mpsc::UnboundedReceiver<Network<R::Stream>>,
    events: Vec<(Instant, Event)>,
}

impl<R: Runtime> Client<R> {
    /// A client that starts discovering at once, as a booting node does.
    pub fn new(runtime: R, config: LoaderConfig) -> Client<R> {
        let (tx, rx) = mpsc::unbounded_channel();
        Client {
            loader: Loader::new(config, runtime.now()),
            timer: runtime.timer(runtime.now()),
            armed: None,
            runtime,
            discovery: None,
            sockets: 0,
            conns: BTreeMap::new(),
            tx,
            rx,
            events: Vec::new(),
        }
    }

    /// The runtime the client runs on.
    pub fn runtime(&self) -> &R {
        &self.runtime
    }

    /// The time now, on the runtime's clock.
    pub fn now(&self) -> Instant {
        self.runtime.now()
    }

    /// What the loader did since the last call, with when: discovery rounds, connects,
    /// resends (the replies themselves are returned by [`Client::call`]).
    pub fn take_events(&mut self) -> Vec<(Instant, Event)> {
        std::mem::take(&mut self.events)
    }

    /// An `erl_prim_loader:get_modules` call begins: its requests follow (see
    /// [`Loader::begin_modules`]).
    pub fn begin_modules(&mut self) -> Result<(), LoaderError> {
        self.loader.begin_modules()
    }

    /// The `get_modules` call ends (see [`Loader::end_modules`]).
    pub fn end_modules(&mut self) -> Result<(), LoaderError> {
        self.loader.end_modules(self.runtime.now())
    }

    /// Sends `request` and runs the loader until it has the answer, or until `deadline`.
    pub async fn call(
        &mut self,
        request: &Request,
        deadline: Option<Instant>,
    ) -> Result<Result<Response, ReplyError>, CallError> {
        self.perform().await;
        self.loader.request(self.runtime.now(), request)?;
        loop {
            self.perform().await;
            while let Some(event) = self.loader.poll_event() {
                match event {
                    Event::Reply(reply) => return Ok(reply),
                    event => {
                        log(&event);
                        self.events.push((self.runtime.now(), event));
                    }
                }
            }
            let wake = match (self.loader.poll_timeout(), deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            match (wake, self.armed) {
                (Some(wake), Some(armed)) if wake >= armed => {}
                (Some(wake), _) => {
                    self.timer.reset(wake);
                    self.armed = Some(wake);
                }
                (None, _) => self.armed = None,
            }
            tokio::select! {
                report = self.rx.recv() => {
                    let report = report.expect("the client holds a sender");
                    self.deliver(report);
                }
                (conn, read) = std::future::poll_fn(|cx| poll_reads(&mut self.conns, cx)) => {
                    self.deliver_read(conn, read);
                }
                () = &mut self.timer, if self.armed.is_some() => {
                    self.armed = None;
                    let now = self.runtime.now();
                    if deadline.is_some_and(|d| now >= d) {
                        return Err(CallError::Deadline);
                    }
                    self.loader.handle_timeout(now);
                }
            }
        }
    }

    fn deliver(&mut self, report: Network<R::Stream>) {
        let now = self.runtime.now();
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
                *entry = Conn::Open {
                    stream,
                    read_size: READ_MIN,
                    buf: BytesMut::new(),
                };
                self.loader.handle_connected(now, conn);
            }
            Network::ConnectFailed { conn } => {
                if self.conns.remove(&conn).is_some() {
                    self.loader.handle_connect_failed(now, conn);
                }
            }
        }
    }

    fn deliver_read(&mut self, conn: ConnId, read: Read) {
        let now = self.runtime.now();
        match read {
            Read::Data(bytes) => self.loader.handle_data(now, conn, bytes),
            Read::Closed => {
                self.conns.remove(&conn);
                self.loader.handle_closed(now, conn);
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
                    let runtime = self.runtime.clone();
                    let task = tokio::spawn(async move {
                        let report = match runtime.connect(SocketAddr::V4(to)).await {
                            Ok(stream) => Network::Connected { conn, stream },
                            Err(_) => Network::ConnectFailed { conn },
                        };
                        let _ = tx.send(report);
                    });
                    self.conns.insert(conn, Conn::Connecting(task));
                }
                Action::Send { conn, frame } => self.send(conn, frame).await,
                Action::Close { conn } => {
                    self.conns.remove(&conn);
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
        let any = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
        let socket = match self.runtime.bind_udp(any).await {
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
            let mut buf = vec![0; ANSWER_BUFFER];
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
        let Some(Conn::Open { stream, .. }) = self.conns.get_mut(&conn) else {
            return;
        };
        if stream.write_all(&frame).await.is_err() {
            // The next read reports the close; the loader resends from there.
            debug!(?conn, "send failed");
        }
    }
}

/// Reads the first open connection (in the order they were opened) that has something: its
/// bytes, in a buffer of their own that the loader keeps and reads the reply in without
/// copying it again, or its close (a read error closes it too).
fn poll_reads<S: TcpStream>(
    conns: &mut BTreeMap<ConnId, Conn<S>>,
    cx: &mut Context<'_>,
) -> Poll<(ConnId, Read)> {
    for (&conn, entry) in conns.iter_mut() {
        let Conn::Open {
            stream,
            read_size,
            buf,
        } = entry
        else {
            continue;
        };
        let bytes = match stream.poll_read_bytes(cx, buf, *read_size) {
            Poll::Pending => continue,
            Poll::Ready(Ok(bytes)) if !bytes.is_empty() => bytes,
            Poll::Ready(_) => return Poll::Ready((conn, Read::Closed)),
        };
        *read_size = next_read_size(*read_size, bytes.len());
        return Poll::Ready((conn, Read::Data(bytes)));
    }
    Poll::Pending
}

/// The size of the read after one of `size` bytes that got `read`.
fn next_read_size(size: usize, read: usize) -> usize {
    if read >= size {
        (size * 2).min(READ_MAX)
    } else if read < size / 4 {
        (size / 2).max(READ_MIN)
    } else {
        size
    }
}

impl<R: Runtime> Drop for Client<R> {
    fn drop(&mut self) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_grow_while_they_fill_and_shrink_while_they_do_not() {
        let mut size = READ_MIN;
        let mut sizes = vec![];
        // A 657 kB reply, read as it arrives.
        let mut left = 657_081;
        while left > 0 {
            let read = left.min(size);
            left -= read;
            sizes.push(size);
            size = next_read_size(size, read);
        }
        assert_eq!(sizes, [4, 8, 16, 32, 64, 128, 256, 256].map(|k| k * 1024));
        // Then small replies: back down, a halving a read, never below the least.
        for expected in [128, 64, 32, 16, 8, 4, 4] {
            size = next_read_size(size, 43);
            assert_eq!(size, expected * 1024);
        }
        // A read between a quarter and the whole keeps the size.
        assert_eq!(next_read_size(READ_MIN * 4, READ_MIN * 2), READ_MIN * 4);
        assert_eq!(next_read_size(READ_MAX, READ_MAX), READ_MAX);
    }
}
