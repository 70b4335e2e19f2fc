//! The client driver: the inet loader's actions on a [`Runtime`]'s sockets.
//!
//! Every protocol decision is the [`Loader`]'s; this performs its actions (a UDP socket for
//! discovery, TCP connections) and hands back what the network does, with the time. Open
//! connections and connection attempts are polled where the loader waits, in [`Client::call`];
//! the discovery socket, read by a task of its own, hands its answers over through a channel.
//! The same code runs on tokio (`erlboot fetch`, `erlboot boot`) and on a simulated network.

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info};

use crate::client::{Action, ConnId, Event, Loader, LoaderConfig, LoaderError};
use crate::client::{ReplyError, ReplyMemo, Response};
use crate::proto::{EncodedRequest, Request};
use crate::time::Instant;

use super::runtime::{poll_write_all, Runtime, TcpStream, Timer, UdpSocket};

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

/// The discovery socket, the task that reads it, and the answers the task hands over. The
/// channel is the socket's own: answers that arrived for a socket since closed die with it.
struct Discovery<U> {
    socket: Arc<U>,
    reader: JoinHandle<()>,
    answers: mpsc::UnboundedReceiver<(SocketAddrV4, Vec<u8>)>,
}

impl<U> Drop for Discovery<U> {
    fn drop(&mut self) {
        self.reader.abort();
    }
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

/// One TCP connection: connecting (its attempt's task, which gives the stream), then open.
/// Its tag and the read's size and buffer come first (`repr(u8)` lays each variant out in
/// order), in the line of its [`Entry`]'s id.
#[repr(u8)]
enum Conn<S> {
    Connecting(JoinHandle<io::Result<S>>),
    Open {
        /// What the next read asks for ([`next_read_size`]).
        read_size: usize,
        /// The next read's buffer (see [`TcpStream::poll_read_bytes`]).
        buf: BytesMut,
        stream: S,
    },
}

impl<S> Drop for Conn<S> {
    fn drop(&mut self) {
        if let Conn::Connecting(task) = self {
            task.abort();
        }
    }
}

/// What happened on a connection.
enum Happened {
    Connected,
    ConnectFailed,
    Data(Bytes),
    Closed,
}

/// A future of the loader's rarer actions, which wait on the runtime: boxed while under way.
type Pending<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What the client is doing for the loader's last action, until it is done.
enum Performing<U> {
    /// Sending a request: on which connection, and what of its frame is not out yet.
    Send { conn: ConnId, frame: Bytes },
    /// Opening a discovery socket, which gives the socket (or none, if it failed).
    OpenDiscovery(Pending<Option<Discovery<U>>>),
    /// Sending a discovery query.
    Query(Pending<()>),
}

/// The inet loader on a runtime's sockets.
///
/// A booting node waits for each reply, and a simulation holds thousands of nodes, each cold
/// in the cache by its turn: what every reply reads comes first, in this order (`repr(C)`),
/// and a call is one flat state machine ([`Client::poll_reply`]) rather than nested async
/// functions.
#[repr(C)]
pub struct Client<R: Runtime> {
    /// The clock, read at every event.
    runtime: R,
    /// When the timer is armed for. It is moved only when a deadline comes earlier than the
    /// armed one: every request postpones the reply timeout, and a timer that fires early
    /// (the loader finds nothing due) is far cheaper than moving it per request.
    armed: Option<Instant>,
    performing: Option<Performing<R::Udp>>,
    /// In the order they were opened: a node has one or two, so a list is searched faster
    /// than any map.
    conns: Vec<Entry<R::Stream>>,
    /// The one timer every call sleeps on.
    timer: R::Timer,
    discovery: Option<Discovery<R::Udp>>,
    events: Vec<(Instant, Event)>,
    /// Last: what every reply reads of it comes first, its configuration last.
    loader: Loader,
}

/// A connection and its id, the id beside the state read with it.
#[repr(C)]
struct Entry<S> {
    conn: ConnId,
    state: Conn<S>,
}

impl<R: Runtime> Client<R> {
    /// A client that starts discovering at once, as a booting node does.
    pub fn new(runtime: R, config: LoaderConfig) -> Client<R> {
        Client {
            loader: Loader::new(config, runtime.now()),
            timer: runtime.timer(runtime.now()),
            armed: None,
            performing: None,
            runtime,
            discovery: None,
            conns: Vec::new(),
            events: Vec::new(),
        }
    }

    /// The same client, its loader reading replies through `memo` (see
    /// [`Loader::with_memo`]).
    pub fn with_memo(self, memo: Arc<ReplyMemo>) -> Client<R> {
        Client {
            loader: self.loader.with_memo(memo),
            ..self
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
        std::future::poll_fn(|cx| self.poll_ready(cx)).await;
        self.send(request)?;
        std::future::poll_fn(|cx| self.poll_reply(cx, deadline)).await
    }

    /// Hands `request` to the loader (see [`Client::poll_ready`]).
    pub fn send(&mut self, request: &Request) -> Result<(), CallError> {
        Ok(self.loader.request(self.runtime.now(), request)?)
    }

    /// [`Client::send`] with the frame encoded beforehand (see [`Loader::request_encoded`]).
    pub fn send_encoded(&mut self, encoded: &EncodedRequest) -> Result<(), CallError> {
        Ok(self.loader.request_encoded(self.runtime.now(), encoded)?)
    }

    /// Runs the loader until it has the answer to the request sent, or until `deadline`
    /// (see [`Client::poll_ready`]).
    pub fn poll_reply(
        &mut self,
        cx: &mut Context<'_>,
        deadline: Option<Instant>,
    ) -> Poll<Result<Result<Response, ReplyError>, CallError>> {
        loop {
            ready!(self.poll_ready(cx));
            while let Some(event) = self.loader.poll_event() {
                match event {
                    Event::Reply(reply) => return Poll::Ready(Ok(reply)),
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
            // In a fixed order, the network first: what has arrived is taken before a
            // timeout fires, as an Erlang `receive ... after` does.
            if let Poll::Ready((conn, happened)) = poll_conns(&mut self.conns, cx) {
                self.deliver(conn, happened);
                continue;
            }
            if let Poll::Ready((from, bytes)) = poll_answers(&mut self.discovery, cx) {
                self.loader
                    .handle_datagram(self.runtime.now(), from, &bytes);
                continue;
            }
            if self.armed.is_some() && Pin::new(&mut self.timer).poll(cx).is_ready() {
                self.armed = None;
                let now = self.runtime.now();
                if deadline.is_some_and(|d| now >= d) {
                    return Poll::Ready(Err(CallError::Deadline));
                }
                self.loader.handle_timeout(now);
                continue;
            }
            return Poll::Pending;
        }
    }

    fn deliver(&mut self, conn: ConnId, happened: Happened) {
        let now = self.runtime.now();
        match happened {
            Happened::Connected => self.loader.handle_connected(now, conn),
            Happened::ConnectFailed => {
                remove(&mut self.conns, conn);
                self.loader.handle_connect_failed(now, conn);
            }
            Happened::Data(bytes) => self.loader.handle_data(now, conn, bytes),
            Happened::Closed => {
                remove(&mut self.conns, conn);
                self.loader.handle_closed(now, conn);
            }
        }
    }

    /// [`Client::call`] in steps, for a caller that is a state machine itself: once this is
    /// ready, [`Client::send`] the request, then poll [`Client::poll_reply`] for its answer.
    /// Performs every action the loader asks for, each done before the next is taken; ready
    /// once they are all done.
    pub fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            match &mut self.performing {
                Some(Performing::Send { conn, frame }) => {
                    let conn = *conn;
                    let stream = self.conns.iter_mut().find_map(|entry| match entry {
                        Entry {
                            conn: c,
                            state: Conn::Open { stream, .. },
                        } if *c == conn => Some(stream),
                        _ => None,
                    });
                    if let Some(stream) = stream {
                        if ready!(poll_write_all(stream, cx, frame)).is_err() {
                            // The next read reports the close; the loader resends from there.
                            debug!(?conn, "send failed");
                        }
                    }
                }
                Some(Performing::OpenDiscovery(opening)) => {
                    self.discovery = ready!(opening.as_mut().poll(cx));
                }
                Some(Performing::Query(sending)) => ready!(sending.as_mut().poll(cx)),
                None => {}
            }
            self.performing = None;
            let Some(action) = self.loader.poll_action() else {
                return Poll::Ready(());
            };
            match action {
                Action::OpenDiscovery => {
                    self.discovery = None;
                    let runtime = self.runtime.clone();
                    self.performing = Some(Performing::OpenDiscovery(Box::pin(async move {
                        open_discovery(&runtime).await
                    })));
                }
                Action::Query { to, datagram } => {
                    // A failed send is ignored, as OTP ignores it.
                    if let Some(discovery) = &self.discovery {
                        let socket = Arc::clone(&discovery.socket);
                        self.performing = Some(Performing::Query(Box::pin(async move {
                            let _ = socket.send_to(&datagram, SocketAddr::V4(to)).await;
                        })));
                    }
                }
                Action::CloseDiscovery => self.discovery = None,
                Action::Connect { conn, to } => {
                    let runtime = self.runtime.clone();
                    let task =
                        tokio::spawn(async move { runtime.connect(SocketAddr::V4(to)).await });
                    debug_assert!(self.conns.iter().all(|e| e.conn != conn), "a new id");
                    self.conns.push(Entry {
                        conn,
                        state: Conn::Connecting(task),
                    });
                }
                Action::Send { conn, frame } => {
                    self.performing = Some(Performing::Send { conn, frame });
                }
                Action::Close { conn } => {
                    remove(&mut self.conns, conn);
                }
            }
        }
    }
}

/// A discovery socket, bound, broadcasting, and read by a task of its own; `None` if it
/// could not be bound: without a socket the queries go nowhere, and the loader's rounds find
/// no server, as OTP's would.
async fn open_discovery<R: Runtime>(runtime: &R) -> Option<Discovery<R::Udp>> {
    let any = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
    let socket = match runtime.bind_udp(any).await {
        Ok(socket) => Arc::new(socket),
        Err(error) => {
            info!(%error, "discovery socket could not be opened");
            return None;
        }
    };
    let _ = socket.set_broadcast(true);
    let (tx, answers) = mpsc::unbounded_channel();
    let read = Arc::clone(&socket);
    let reader = tokio::spawn(async move {
        let mut buf = vec![0; ANSWER_BUFFER];
        while let Ok((n, from)) = read.recv_from(&mut buf).await {
            let SocketAddr::V4(from) = from else { continue };
            if tx.send((from, buf[..n].to_vec())).is_err() {
                return;
            }
        }
    });
    Some(Discovery {
        socket,
        reader,
        answers,
    })
}

/// The first connection (in the order they were opened) on which something happened: an
/// attempt that ended (a stream that connected is opened in place), or bytes read, in a buffer
/// of their own that the loader keeps and reads the reply in without copying it again, or a
/// close (a read error closes it too).
fn poll_conns<S: TcpStream>(
    conns: &mut [Entry<S>],
    cx: &mut Context<'_>,
) -> Poll<(ConnId, Happened)> {
    for Entry { conn, state: entry } in conns.iter_mut() {
        let conn = *conn;
        let (stream, read_size, buf) = match entry {
            Conn::Connecting(task) => match Pin::new(task).poll(cx) {
                Poll::Pending => continue,
                Poll::Ready(Ok(Ok(stream))) => {
                    *entry = Conn::Open {
                        stream,
                        read_size: READ_MIN,
                        buf: BytesMut::new(),
                    };
                    return Poll::Ready((conn, Happened::Connected));
                }
                Poll::Ready(_) => return Poll::Ready((conn, Happened::ConnectFailed)),
            },
            Conn::Open {
                stream,
                read_size,
                buf,
            } => (stream, read_size, buf),
        };
        let bytes = match stream.poll_read_bytes(cx, buf, *read_size) {
            Poll::Pending => continue,
            Poll::Ready(Ok(bytes)) if !bytes.is_empty() => bytes,
            Poll::Ready(_) => return Poll::Ready((conn, Happened::Closed)),
        };
        *read_size = next_read_size(*read_size, bytes.len());
        return Poll::Ready((conn, Happened::Data(bytes)));
    }
    Poll::Pending
}

/// Drops connection `conn`, if it is there (an attempt still under way is aborted).
fn remove<S>(conns: &mut Vec<Entry<S>>, conn: ConnId) {
    conns.retain(|e| e.conn != conn);
}

/// The next answer the discovery socket got, if one is open.
fn poll_answers<U>(
    discovery: &mut Option<Discovery<U>>,
    cx: &mut Context<'_>,
) -> Poll<(SocketAddrV4, Vec<u8>)> {
    match discovery {
        // A reader that has stopped (its socket failed) hands over nothing more.
        Some(discovery) => match discovery.answers.poll_recv(cx) {
            Poll::Ready(Some(answer)) => Poll::Ready(answer),
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        },
        None => Poll::Pending,
    }
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
