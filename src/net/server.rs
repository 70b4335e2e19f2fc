//! The tokio driver: the boot server on real sockets.
//!
//! It owns the sockets and the clock and nothing else: every protocol decision is the
//! [`Session`]'s or the [`Responder`]'s. One task per TCP connection, one for UDP discovery,
//! and the accept loop, which enforces the allow list and the connection limits.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::io::{self, IoSlice};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::clock::Clock;

use crate::server::{
    AllowList, ConnectionLimits, FileSource, ReplyCache, Responder, Session, SessionConfig,
    Transmit, Verdict, Versions,
};

/// Pending connections the kernel queues before `accept` (OTP's boot server uses 5).
const LISTEN_BACKLOG: u32 = 4096;

/// Bytes read from a connection at a time.
const READ_CHUNK: usize = 16 * 1024;

/// Everything the server needs besides its files.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Where to accept boot connections; port 0 picks a free one.
    pub tcp: SocketAddr,
    /// Where to answer discovery, or `None` to answer none (clients must then be told the
    /// TCP port some other way).
    pub udp: Option<SocketAddr>,
    /// Who may discover and connect.
    pub allow: AllowList,
    /// Which client versions discovery answers.
    pub versions: Versions,
    /// Per-connection settings.
    pub session: SessionConfig,
    /// Server-wide connection limits.
    pub connections: ConnectionLimits,
    /// Bytes of reply frames remembered for the sources that allow it (0: none).
    pub reply_cache_bytes: usize,
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A socket could not be bound.
    #[error("cannot bind {what} {addr}: {source}")]
    Bind {
        /// `tcp` or `udp`.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: io::Error,
    },
}

/// A bound boot server, ready to run.
pub struct Server {
    listener: TcpListener,
    udp: Option<UdpSocket>,
    config: ServerConfig,
    source: Arc<dyn FileSource>,
}

impl Server {
    /// Binds the TCP listener and the UDP socket.
    pub async fn bind(
        config: ServerConfig,
        source: Arc<dyn FileSource>,
    ) -> Result<Server, ServeError> {
        let bind_error = |what, addr| move |source| ServeError::Bind { what, addr, source };
        let listener = listen(config.tcp).map_err(bind_error("tcp", config.tcp))?;
        let udp = match config.udp {
            Some(addr) => Some(
                UdpSocket::bind(addr)
                    .await
                    .map_err(bind_error("udp", addr))?,
            ),
            None => None,
        };
        Ok(Server {
            listener,
            udp,
            config,
            source,
        })
    }

    /// The address boot connections are accepted on.
    pub fn tcp_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The address discovery is answered on, if any.
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp.as_ref().and_then(|s| s.local_addr().ok())
    }

    /// Serves until `shutdown` completes, then closes every connection and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let clock = Clock::start();
        let tcp_port = self.tcp_addr().port();
        let mut tasks = JoinSet::new();
        if let Some(udp) = self.udp {
            let responder = Responder::new(
                self.config.allow.clone(),
                self.config.versions.clone(),
                tcp_port,
            );
            tasks.spawn(answer_discovery(udp, responder));
        }
        let registry = Arc::new(Registry::new(self.config.connections));
        let replies = Arc::new(ReplyCache::new(self.config.reply_cache_bytes));
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                accepted = self.listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(accepted) => accepted,
                        Err(error) => {
                            // Out of descriptors, most likely: back off instead of spinning.
                            warn!(%error, "accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                            continue;
                        }
                    };
                    if !self.config.allow.allows(peer.ip()) {
                        warn!(%peer, "connection refused: not on the allow list");
                        continue;
                    }
                    let Some(slot) = Registry::claim(&registry, peer.ip()) else {
                        warn!(%peer, limits = ?self.config.connections, "connection refused: connection limit reached");
                        continue;
                    };
                    let session = Session::new(Arc::clone(&self.source), self.config.session, clock.now())
                        .with_replies(Arc::clone(&replies));
                    tasks.spawn(async move {
                        serve_connection(stream, peer, session, clock).await;
                        drop(slot);
                    });
                }
            }
        }
        info!(connections = registry.open(), "shutting down");
        tasks.shutdown().await;
    }
}

fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Open connections, overall and per address.
struct Registry {
    limits: ConnectionLimits,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// A claimed connection slot, given back on drop.
struct Slot {
    registry: Arc<Registry>,
    ip: IpAddr,
}

impl Registry {
    fn new(limits: ConnectionLimits) -> Registry {
        Registry {
            limits,
            open: Mutex::new((0, HashMap::new())),
        }
    }

    fn claim(registry: &Arc<Registry>, ip: IpAddr) -> Option<Slot> {
        let mut open = registry.open.lock().expect("registry lock");
        let (total, per_ip) = &mut *open;
        let mine = per_ip.entry(ip).or_insert(0);
        if *total >= registry.limits.max_connections || *mine >= registry.limits.max_per_ip {
            if *mine == 0 {
                per_ip.remove(&ip);
            }
            return None;
        }
        *total += 1;
        *mine += 1;
        Some(Slot {
            registry: Arc::clone(registry),
            ip,
        })
    }

    fn open(&self) -> usize {
        self.open.lock().expect("registry lock").0
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.registry.open.lock().expect("registry lock");
        let (total, per_ip) = &mut *open;
        *total -= 1;
        if let Some(mine) = per_ip.get_mut(&self.ip) {
            *mine -= 1;
            if *mine == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

async fn answer_discovery(socket: UdpSocket, responder: Responder) {
    let mut buf = vec![0; 64 * 1024];
    loop {
        let (len, source) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(error) => {
                warn!(%error, "discovery receive failed");
                continue;
            }
        };
        match responder.handle_datagram(source.ip(), &buf[..len]) {
            Verdict::Answer(answer) => {
                debug!(%source, "discovery answered");
                if let Err(error) = socket.send_to(&answer, source).await {
                    warn!(%source, %error, "discovery answer not sent");
                }
            }
            Verdict::Denied => warn!(%source, "discovery refused: not on the allow list"),
            Verdict::OtherVersion(version) => warn!(
                %source,
                version = %String::from_utf8_lossy(&version),
                "discovery ignored: client version not served"
            ),
            Verdict::Unrecognized => {
                warn!(%source, len, "discovery ignored: not an EBOOTQ datagram")
            }
        }
    }
}

async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    mut session: Session<dyn FileSource>,
    clock: Clock,
) {
    // Replies are whole messages, written at once; Nagle would only delay them.
    let _ = stream.set_nodelay(true);
    let (mut requests, mut errors, mut sent) = (0u64, 0u64, 0u64);
    info!(%peer, "connection opened");
    // One timer for the connection's life. It is moved only when the session's deadline comes
    // earlier than the armed one: a deadline that moved later (every request postpones the
    // idle timeout) is found when the armed timer fires, far cheaper than re-arming per request.
    let sleep = tokio::time::sleep_until(tokio::time::Instant::now());
    tokio::pin!(sleep);
    let mut armed: Option<tokio::time::Instant> = None;
    let end = 'connection: loop {
        while let Some(transmit) = session.poll_transmit() {
            if let Err(error) = write_transmit(&mut stream, &transmit).await {
                break 'connection format!("write failed: {error}");
            }
            sent += transmit.len() as u64;
        }
        while let Some(served) = session.poll_served() {
            requests += 1;
            errors += u64::from(served.error.is_some());
            debug!(%peer, command = ?served.command, name = ?served.name, error = ?served.error.as_ref().map(|r| r.to_string()), "request");
        }
        if let Some(reason) = session.close_reason() {
            break reason.to_string();
        }
        match (session.poll_timeout().map(|at| clock.to_tokio(at)), armed) {
            (Some(deadline), Some(at)) if deadline >= at => {}
            (Some(deadline), _) => {
                sleep.as_mut().reset(deadline);
                armed = Some(deadline);
            }
            (None, _) => armed = None,
        }
        tokio::select! {
            read = std::future::poll_fn(|cx| poll_read_into(&mut stream, cx, &mut session, &clock)) => {
                match read {
                    Ok(0) => break "closed by the client".to_owned(),
                    Ok(_) => {}
                    Err(error) => break format!("read failed: {error}"),
                }
            }
            () = &mut sleep, if armed.is_some() => {
                armed = None;
                session.handle_timeout(clock.now());
            }
        }
    };
    info!(%peer, requests, errors, bytes_sent = sent, reason = %end, "connection closed");
}

thread_local! {
    /// Each worker thread's read buffer: connections borrow it only while they read, so that
    /// thousands of idle connections hold none, and it is never zeroed.
    static READ_BUFFER: RefCell<BytesMut> = RefCell::new(BytesMut::with_capacity(READ_CHUNK));
}

/// Reads what is ready into the session.
///
/// Through `poll_read` rather than `try_read`: a read that does not fill the buffer tells the
/// runtime the socket is drained, which saves the second `recv` (answered `EAGAIN`) that
/// every request would otherwise cost.
fn poll_read_into<S: FileSource + ?Sized>(
    stream: &mut TcpStream,
    cx: &mut Context<'_>,
    session: &mut Session<S>,
    clock: &Clock,
) -> Poll<io::Result<usize>> {
    READ_BUFFER.with(|buf| {
        let mut buf = buf.borrow_mut();
        buf.clear();
        buf.reserve(READ_CHUNK);
        let mut read = ReadBuf::uninit(&mut buf.spare_capacity_mut()[..READ_CHUNK]);
        ready!(Pin::new(stream).poll_read(cx, &mut read))?;
        let data = read.filled();
        session.handle_data(clock.now(), data);
        Poll::Ready(Ok(data.len()))
    })
}

async fn write_transmit(stream: &mut TcpStream, transmit: &Transmit) -> io::Result<()> {
    if transmit.body.is_empty() {
        return stream.write_all(&transmit.head).await;
    }
    let (head, body) = (&transmit.head[..], &transmit.body[..]);
    let mut written = 0;
    while written < head.len() + body.len() {
        let n = if written < head.len() {
            stream
                .write_vectored(&[IoSlice::new(&head[written..]), IoSlice::new(body)])
                .await?
        } else {
            stream.write(&body[written - head.len()..]).await?
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        written += n;
    }
    Ok(())
}
