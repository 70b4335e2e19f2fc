//! The socket seam: the few operations the drivers need from a network and a clock, as traits,
//! so that one driver runs on tokio's sockets and on a simulated network alike.
//!
//! Modelled on quinn's `Runtime` and `AsyncUdpSocket`: a [`Runtime`] binds UDP sockets,
//! listens, connects, reads its clock and makes timers; its sockets are [`UdpSocket`],
//! [`TcpListener`] and [`TcpStream`]. Tasks are tokio tasks in every runtime (a simulated
//! network runs on tokio too), so spawning is not part of the seam.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::time::Instant;

/// A network and a clock for the drivers.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// A bound UDP socket.
    type Udp: UdpSocket;
    /// A listening TCP socket.
    type Listener: TcpListener<Stream = Self::Stream>;
    /// A TCP connection.
    type Stream: TcpStream;
    /// A timer that can be moved.
    type Timer: Timer;

    /// Binds a UDP socket (port 0: any free port).
    fn bind_udp(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Udp>> + Send;

    /// Listens for TCP connections (port 0: any free port).
    fn listen(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Listener>> + Send;

    /// Opens a TCP connection.
    fn connect(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Stream>> + Send;

    /// The current time, on the clock the cores run on (since this runtime's epoch).
    fn now(&self) -> Instant;

    /// A timer that fires at `at` (at once if `at` has passed).
    fn timer(&self, at: Instant) -> Self::Timer;
}

/// A UDP socket: discovery queries and answers, broadcast included.
pub trait UdpSocket: Send + Sync + 'static {
    /// The address the socket is bound to.
    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// Allows sending to broadcast addresses (`SO_BROADCAST`).
    fn set_broadcast(&self, on: bool) -> io::Result<()>;

    /// Sends one datagram.
    fn send_to(
        &self,
        datagram: &[u8],
        to: SocketAddr,
    ) -> impl Future<Output = io::Result<usize>> + Send;

    /// Receives one datagram into `buf`: its length and its sender.
    fn recv_from(
        &self,
        buf: &mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + Send;
}

/// A listening TCP socket.
pub trait TcpListener: Send + Sync + 'static {
    /// The connections it accepts.
    type Stream: TcpStream;

    /// The address it listens on.
    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// The next connection and its peer.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send;
}

/// A TCP connection: read and write through tokio's `AsyncRead`/`AsyncWrite` (shutdown is
/// `AsyncWrite::poll_shutdown`; dropping it closes it).
pub trait TcpStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Whether reads hand over bytes the runtime holds already, as a simulated network's
    /// do: [`TcpStream::poll_read_bytes`] then copies nothing and leaves its buffer alone,
    /// and a driver takes what it returns rather than reading into a buffer of its own.
    const HOLDS_BYTES: bool = false;

    /// Sends small writes at once (`TCP_NODELAY`).
    fn set_nodelay(&self, on: bool) -> io::Result<()>;

    /// Reads what has arrived as bytes of their own, which a reader can keep without copying
    /// them: up to `size` bytes read into `buf`, the caller's buffer for the reads to come,
    /// which a read fills and hands over whole (a read that has to wait keeps it, rather than
    /// making a new one each time); or, from a runtime that holds what arrived as bytes
    /// already (a simulated network), those bytes handed over whole, `buf` untouched. Empty
    /// at the end of the stream.
    fn poll_read_bytes(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        size: usize,
    ) -> Poll<io::Result<Bytes>> {
        debug_assert!(buf.is_empty(), "a read hands its buffer over whole");
        buf.reserve(size);
        let mut read = ReadBuf::uninit(&mut buf.spare_capacity_mut()[..size]);
        let start = read.filled().as_ptr();
        ready!(Pin::new(&mut *self).poll_read(cx, &mut read))?;
        let filled = read.filled().len();
        // A reader cannot hand back another buffer than the one it was given (as tokio-util's
        // `poll_read_buf` also checks).
        assert_eq!(start, read.filled().as_ptr());
        // SAFETY: `poll_read` initialised the first `filled` bytes of the spare capacity.
        unsafe { buf.set_len(filled) };
        Poll::Ready(Ok(std::mem::take(buf).freeze()))
    }

    /// Writes from the front of `bytes`, held already, and takes what it wrote out of them:
    /// like `poll_write` (some of them, their count returned), but a runtime whose segments
    /// are bytes of their own (a simulated network) takes them whole, as they are, rather
    /// than copying them or sharing them with the writer.
    fn poll_write_bytes(
        &mut self,
        cx: &mut Context<'_>,
        bytes: &mut Bytes,
    ) -> Poll<io::Result<usize>> {
        poll_write_copied(self, cx, bytes)
    }
}

/// [`TcpStream::poll_write_bytes`] through `poll_write`, for a stream that copies what it
/// writes: the bytes written are taken from the front of `bytes`.
pub(crate) fn poll_write_copied<S: AsyncWrite + Unpin + ?Sized>(
    stream: &mut S,
    cx: &mut Context<'_>,
    bytes: &mut Bytes,
) -> Poll<io::Result<usize>> {
    let n = ready!(Pin::new(stream).poll_write(cx, bytes))?;
    bytes.advance(n);
    Poll::Ready(Ok(n))
}

/// Writes all of `bytes` through [`TcpStream::poll_write_bytes`], taking what goes out from
/// their front: whole where the stream takes them whole, the rest after a short write.
pub(crate) fn poll_write_all<S: TcpStream>(
    stream: &mut S,
    cx: &mut Context<'_>,
    bytes: &mut Bytes,
) -> Poll<io::Result<()>> {
    while !bytes.is_empty() {
        if ready!(stream.poll_write_bytes(cx, bytes))? == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
    }
    Poll::Ready(Ok(()))
}

/// A timer: a future that completes at its deadline, which can be moved.
pub trait Timer: Future<Output = ()> + Unpin + Send + 'static {
    /// Moves the deadline to `at`.
    fn reset(&mut self, at: Instant);
}
