//! The server driver: the boot server on a [`Runtime`]'s sockets.
//!
//! It owns the sockets, the timers and the file answers and nothing else: every protocol
//! decision is the [`Session`]'s, the [`Responder`]'s or the [`Admission`]'s. One task per
//! TCP connection, one for UDP discovery, and the accept loop. The same code runs on tokio
//! (`erlboot serve`) and on a simulated network.

use std::cell::RefCell;
use std::future::Future;
use std::io::{self, IoSlice};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::proto::discovery::MAX_DATAGRAM;
use crate::server::{
    Admission, AllowList, CloseReason, ConnectionLimits, FileAnswer, ReplyCache, Responder,
    Session, SessionConfig, Transmit, Verdict, Versions,
};
use crate::time::Instant;

use super::files::FileAnswerer;
use super::runtime::{poll_write_all, Runtime, TcpListener, TcpStream, Timer, UdpSocket};

/// Bytes read from a connection at a time.
const READ_CHUNK: usize = 16 * 1024;

/// How long the accept loop backs off after a failed accept (out of descriptors, most likely).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

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

impl ServerConfig {
    /// What `erlboot serve` remembers unless told otherwise (`--cache-size`): of file
    /// contents, and as many of reply frames.
    pub const DEFAULT_CACHE_BYTES: usize = 256 << 20;
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

/// What can be changed while a server runs.
#[derive(Clone, Debug)]
pub struct Control {
    admission: Arc<Mutex<Admission>>,
    responder: Option<Arc<Mutex<Responder>>>,
}

impl Control {
    /// Replaces the allow list, for discovery and for new connections; open ones stay.
    pub fn set_allow(&self, allow: AllowList) {
        if let Some(responder) = &self.responder {
            lock(responder).set_allow(allow.clone());
        }
        lock(&self.admission).set_allow(allow);
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        lock(&self.admission).open()
    }
}

/// A bound boot server, ready to run.
pub struct Server<R: Runtime, F: FileAnswerer> {
    runtime: R,
    listener: R::Listener,
    udp: Option<R::Udp>,
    config: ServerConfig,
    files: Arc<F>,
    control: Control,
}

impl<R: Runtime, F: FileAnswerer> Server<R, F> {
    /// Binds the TCP listener and the UDP socket.
    pub async fn bind(runtime: R, config: ServerConfig, files: F) -> Result<Self, ServeError> {
        let bind_error = |what, addr| move |source| ServeError::Bind { what, addr, source };
        let listener = runtime
            .listen(config.tcp)
            .await
            .map_err(bind_error("tcp", config.tcp))?;
        let udp = match config.udp {
            Some(addr) => Some(
                runtime
                    .bind_udp(addr)
                    .await
                    .map_err(bind_error("udp", addr))?,
            ),
            None => None,
        };
        let tcp_port = listener
            .local_addr()
            .map_err(bind_error("tcp", config.tcp))?
            .port();
        let responder = udp.as_ref().map(|_| {
            let responder = Responder::new(config.allow.clone(), config.versions.clone(), tcp_port);
            Arc::new(Mutex::new(responder))
        });
        let admission = Admission::new(config.allow.clone(), config.connections);
        Ok(Server {
            runtime,
            listener,
            udp,
            config,
            files: Arc::new(files),
            control: Control {
                admission: Arc::new(Mutex::new(admission)),
                responder,
            },
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

    /// What can be changed while the server runs.
    pub fn control(&self) -> Control {
        self.control.clone()
    }

    /// Serves until `shutdown` completes, then closes every connection and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Server {
            runtime,
            listener,
            udp,
            config,
            files,
            control,
        } = self;
        let mut tasks = JoinSet::new();
        if let (Some(udp), Some(responder)) = (udp, control.responder.clone()) {
            tasks.spawn(answer_discovery(udp, responder));
        }
        let replies = Arc::new(ReplyCache::new(config.reply_cache_bytes));
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(accepted) => accepted,
                        Err(error) => {
                            warn!(%error, "accept failed");
                            let mut backoff = runtime.timer(runtime.now() + ACCEPT_BACKOFF);
                            (&mut backoff).await;
                            continue;
                        }
                    };
                    let admitted = lock(&control.admission).admit(peer.ip());
                    if let Err(refusal) = admitted {
                        warn!(%peer, %refusal, "connection refused");
                        continue;
                    }
                    let slot = Slot { admission: Arc::clone(&control.admission), peer: peer.ip() };
                    let mut session = Session::new(config.session, runtime.now());
                    // A cache that can hold nothing is not consulted at all.
                    if config.reply_cache_bytes > 0 {
                        session = session.with_replies(Arc::clone(&replies));
                    }
                    let connection = Connection {
                        runtime: runtime.clone(),
                        files: Arc::clone(&files),
                        replies: Arc::clone(&replies),
                        peer,
                    };
                    tasks.spawn(Serving::new(connection, stream, session, slot));
                }
            }
        }
        info!(
            connections = control.open_connections(),
            reason = %CloseReason::Shutdown,
            "shutting down"
        );
        tasks.shutdown().await;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The state behind these locks is updated in single steps that cannot panic half-way.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An admitted connection, released when its task ends (or is aborted at shutdown).
struct Slot {
    admission: Arc<Mutex<Admission>>,
    peer: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        lock(&self.admission).release(self.peer);
    }
}

async fn answer_discovery<U: UdpSocket>(socket: U, responder: Arc<Mutex<Responder>>) {
    let mut buf = vec![0; MAX_DATAGRAM];
    loop {
        let (len, source) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(error) => {
                warn!(%error, "discovery receive failed");
                continue;
            }
        };
        let verdict = lock(&responder).handle_datagram(source.ip(), &buf[..len]);
        match verdict {
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

/// What one connection's task holds besides its socket and session.
#[repr(C)]
struct Connection<R, F> {
    runtime: R,
    files: Arc<F>,
    replies: Arc<ReplyCache>,
    peer: SocketAddr,
}

/// The answer to a file question, while it is out.
type Answering = Pin<Box<dyn Future<Output = FileAnswer> + Send>>;

/// One connection's task: the session's replies written in order, its file questions
/// answered, its timer kept and its requests read, as one flat state machine rather than
/// nested async functions.
///
/// A server holds thousands of these, and each is cold in the cache by its turn. Polled
/// once per request and once per reply, it reads what it needs from a few lines: the fields
/// every poll reads come first, in this order (`repr(C)`), and there is one state to resume
/// rather than one per nested `async fn`.
#[repr(C)]
struct Serving<R: Runtime, F: FileAnswerer> {
    /// When the timer is armed for. It is moved only when the session's deadline comes
    /// earlier: a deadline that moved later (every request postpones the idle timeout) is
    /// found when the armed timer fires, far cheaper than re-arming per request.
    armed: Option<Instant>,
    /// The answer to the session's question, while one is out. The connection reads nothing
    /// meanwhile: a client waits for its reply, and a pipelining one waits in its socket.
    answering: Option<Answering>,
    /// The reply being written: what is not out yet.
    writing: Option<Transmit>,
    requests: u64,
    errors: u64,
    sent: u64,
    /// The clock, the files and the reply cache, read at every request.
    connection: Connection<R, F>,
    session: Session,
    stream: R::Stream,
    timer: R::Timer,
    /// Released last, once the socket is closed.
    _slot: Slot,
}

// Nothing in it is pinned: the stream and the timer are `Unpin`, and the answer is boxed.
impl<R: Runtime, F: FileAnswerer> Unpin for Serving<R, F> {}

impl<R: Runtime, F: FileAnswerer> Serving<R, F> {
    fn new(connection: Connection<R, F>, stream: R::Stream, session: Session, slot: Slot) -> Self {
        // Replies are whole messages, written at once; Nagle would only delay them.
        let _ = stream.set_nodelay(true);
        info!(peer = %connection.peer, "connection opened");
        Serving {
            writing: None,
            armed: None,
            answering: None,
            session,
            stream,
            // One timer for the connection's life, moved as `armed` says.
            timer: connection.runtime.timer(connection.runtime.now()),
            requests: 0,
            errors: 0,
            sent: 0,
            connection,
            _slot: slot,
        }
    }

    /// Serves until the connection ends: why it did.
    fn poll_serve(&mut self, cx: &mut Context<'_>) -> Poll<CloseReason> {
        loop {
            loop {
                if self.writing.is_none() {
                    self.writing = self.session.poll_transmit();
                }
                let Some(transmit) = &mut self.writing else {
                    break;
                };
                if let Err(error) = ready!(poll_write_transmit(
                    &mut self.stream,
                    cx,
                    transmit,
                    &mut self.sent
                )) {
                    return Poll::Ready(CloseReason::WriteFailed(error.kind()));
                }
                self.writing = None;
            }
            while let Some(served) = self.session.poll_served() {
                self.requests += 1;
                self.errors += u64::from(served.error.is_some());
                debug!(peer = %self.connection.peer, command = ?served.command, name = ?served.name, error = ?served.error.as_ref().map(|r| r.to_string()), "request");
            }
            if let Some(reason) = self.session.close_reason() {
                return Poll::Ready(reason.clone());
            }
            if self.answering.is_none() {
                if let Some(question) = self.session.poll_question() {
                    debug!(peer = %self.connection.peer, question = ?question.question, remember = question.remember, "file question");
                    let files = Arc::clone(&self.connection.files);
                    self.answering = Some(Box::pin(async move { files.answer(question).await }));
                }
            }
            // While the session wants no timeout (it waits for the files' answer to each
            // question) the timer stays armed: it would otherwise be moved once per request.
            // Should it fire meanwhile, the session finds nothing due.
            match (self.session.poll_timeout(), self.armed) {
                (Some(deadline), Some(at)) if deadline >= at => {}
                (Some(deadline), _) => {
                    self.timer.reset(deadline);
                    self.armed = Some(deadline);
                }
                (None, _) => {}
            }
            // In a fixed order, the timer first: a peer whose bytes are always ready cannot
            // hold off its own timeouts.
            if self.armed.is_some() && Pin::new(&mut self.timer).poll(cx).is_ready() {
                self.armed = None;
                self.session.handle_timeout(self.connection.runtime.now());
                continue;
            }
            if let Some(answering) = &mut self.answering {
                let answer = ready!(answering.as_mut().poll(cx));
                self.answering = None;
                self.session
                    .handle_answer(self.connection.runtime.now(), answer);
                continue;
            }
            let read =
                ready!(self
                    .connection
                    .poll_read_into(&mut self.stream, cx, &mut self.session));
            match read {
                Ok(0) => return Poll::Ready(CloseReason::ClosedByClient),
                Ok(_) => {}
                Err(error) => return Poll::Ready(CloseReason::ReadFailed(error.kind())),
            }
        }
    }
}

impl<R: Runtime, F: FileAnswerer> Future for Serving<R, F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let reason = ready!(this.poll_serve(cx));
        let (peer, requests, errors, sent) =
            (this.connection.peer, this.requests, this.errors, this.sent);
        info!(%peer, requests, errors, bytes_sent = sent, reason = %reason, "connection closed");
        Poll::Ready(())
    }
}

impl<R: Runtime, F: FileAnswerer> Connection<R, F> {
    /// Reads what is ready into the session, after telling the reply cache the source's
    /// version (a request must never get a reply remembered before a change it follows).
    ///
    /// Through `poll_read` rather than an attempted read: a read that does not fill the buffer
    /// tells the runtime the socket is drained, which saves the second `recv` (answered
    /// `EAGAIN`) that every request would otherwise cost.
    fn poll_read_into(
        &self,
        stream: &mut R::Stream,
        cx: &mut Context<'_>,
        session: &mut Session,
    ) -> Poll<io::Result<usize>> {
        if <R::Stream as TcpStream>::HOLDS_BYTES {
            // The bytes that arrived, taken as they are: a request alone in them is kept
            // without a copy.
            let data = ready!(stream.poll_read_bytes(cx, &mut BytesMut::new(), READ_CHUNK))?;
            let len = data.len();
            if len > 0 {
                self.replies.observe(self.files.version());
            }
            session.handle_bytes(self.runtime.now(), data);
            return Poll::Ready(Ok(len));
        }
        READ_BUFFER.with(|buf| {
            let mut buf = buf.borrow_mut();
            buf.clear();
            buf.reserve(READ_CHUNK);
            let mut read = ReadBuf::uninit(&mut buf.spare_capacity_mut()[..READ_CHUNK]);
            ready!(Pin::new(stream).poll_read(cx, &mut read))?;
            let data = read.filled();
            if !data.is_empty() {
                self.replies.observe(self.files.version());
            }
            session.handle_data(self.runtime.now(), data);
            Poll::Ready(Ok(data.len()))
        })
    }
}

thread_local! {
    /// Each worker thread's read buffer: connections borrow it only while they read, so that
    /// thousands of idle connections hold none, and it is never zeroed.
    static READ_BUFFER: RefCell<BytesMut> = RefCell::new(BytesMut::with_capacity(READ_CHUNK));
}

/// Writes `transmit` out, taking what goes out from its front and counting it in `sent`: its
/// head and file contents in one vectored write while the head is not all out (one `writev`,
/// which copies nothing), a head alone as the bytes it is held in (handed over whole where the
/// stream takes them so).
fn poll_write_transmit<S: TcpStream>(
    stream: &mut S,
    cx: &mut Context<'_>,
    transmit: &mut Transmit,
    sent: &mut u64,
) -> Poll<io::Result<()>> {
    let Transmit { head, body } = transmit;
    if body.is_empty() {
        let left = head.len();
        let written = poll_write_all(stream, cx, head);
        *sent += (left - head.len()) as u64;
        return written;
    }
    while !body.is_empty() {
        let n = if head.is_empty() {
            ready!(Pin::new(&mut *stream).poll_write(cx, body))?
        } else {
            let bufs = [IoSlice::new(head), IoSlice::new(body)];
            ready!(Pin::new(&mut *stream).poll_write_vectored(cx, &bufs))?
        };
        if n == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        let of_head = n.min(head.len());
        head.advance(of_head);
        body.advance(n - of_head);
        *sent += n as u64;
    }
    Poll::Ready(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    /// Writes all of `transmit`.
    async fn write_transmit<S: TcpStream>(stream: &mut S, transmit: &Transmit) -> io::Result<()> {
        let (mut left, mut sent) = (transmit.clone(), 0);
        let written =
            std::future::poll_fn(|cx| poll_write_transmit(stream, cx, &mut left, &mut sent)).await;
        assert_eq!(
            sent as usize,
            transmit.len() - left.len(),
            "what went out is counted"
        );
        written
    }

    /// A stream that takes at most `max` bytes a write, as a socket whose buffer is nearly
    /// full does, and reads nothing; one that `takes_whole` takes bytes held already whole, as
    /// a simulated network's segments do. It keeps each write.
    struct Sink {
        writes: Vec<Bytes>,
        max: usize,
        takes_whole: bool,
    }

    impl Sink {
        fn new(max: usize, takes_whole: bool) -> Sink {
            Sink {
                writes: Vec::new(),
                max,
                takes_whole,
            }
        }
    }

    impl AsyncRead for Sink {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Pending
        }
    }

    impl tokio::io::AsyncWrite for Sink {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.max);
            self.writes.push(Bytes::copy_from_slice(&buf[..n]));
            Poll::Ready(Ok(n))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    impl TcpStream for Sink {
        fn set_nodelay(&self, _: bool) -> io::Result<()> {
            Ok(())
        }

        fn poll_write_bytes(
            &mut self,
            cx: &mut Context<'_>,
            bytes: &mut Bytes,
        ) -> Poll<io::Result<usize>> {
            if !self.takes_whole {
                return crate::net::runtime::poll_write_copied(self, cx, bytes);
            }
            let whole = std::mem::take(bytes);
            let n = whole.len();
            self.writes.push(whole);
            Poll::Ready(Ok(n))
        }
    }

    /// A reply that is a head alone is handed to a stream that takes bytes whole as the very
    /// bytes the session made, not a copy, and nothing of it is left behind; one with file
    /// contents goes out through the vectored writes, in order.
    #[tokio::test]
    async fn a_head_alone_is_handed_over_as_it_is_held() {
        let head = Bytes::from(b"\0\0\0\x05hello".to_vec());
        let mut transmit = Transmit {
            head: head.clone(),
            body: Bytes::new(),
        };
        let mut stream = Sink::new(usize::MAX, true);
        let mut sent = 0;
        let written = std::future::poll_fn(|cx| {
            poll_write_transmit(&mut stream, cx, &mut transmit, &mut sent)
        })
        .await;
        assert!(written.is_ok());
        assert_eq!(sent, 9);
        assert!(transmit.is_empty(), "what went out is taken out");
        assert_eq!(stream.writes.len(), 1);
        assert_eq!(stream.writes[0].as_ptr(), head.as_ptr(), "the head itself");
        let mut split = Transmit {
            head: Bytes::from_static(b"\0\0\0\x0bhead:"),
            body: Bytes::from_static(b"contents"),
        };
        let written =
            std::future::poll_fn(|cx| poll_write_transmit(&mut stream, cx, &mut split, &mut sent))
                .await;
        assert!(written.is_ok());
        assert_eq!(sent, 9 + 17);
        assert!(split.is_empty());
        assert_eq!(stream.writes[1..].concat(), b"\0\0\0\x0bhead:contents");
    }

    /// A reply goes out whole and in order however little each write takes, whether it is
    /// one buffer or a head and file contents.
    #[tokio::test]
    async fn replies_go_out_whole_through_short_writes() {
        let whole = Transmit {
            head: Bytes::from_static(b"\0\0\0\x05hello"),
            body: Bytes::new(),
        };
        let split = Transmit {
            head: Bytes::from_static(b"\0\0\0\x0bhead:"),
            body: Bytes::from_static(b"contents"),
        };
        for max in [1, 3, 7, 64] {
            let mut stream = Sink::new(max, false);
            write_transmit(&mut stream, &whole).await.unwrap();
            write_transmit(&mut stream, &split).await.unwrap();
            assert_eq!(
                stream.writes.concat(),
                b"\0\0\0\x05hello\0\0\0\x0bhead:contents",
                "{max} bytes a write"
            );
        }
        // A stream that takes nothing fails the write rather than spinning.
        let mut stuck = Sink::new(0, false);
        let error = write_transmit(&mut stuck, &whole).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::WriteZero);
        let error = write_transmit(&mut stuck, &split).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::WriteZero);
    }
}
