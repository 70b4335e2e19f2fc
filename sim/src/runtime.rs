//! The socket seam on turmoil: simulated UDP (broadcast included) and TCP, and the simulated
//! clock of the host the code runs on.
//!
//! turmoil's sockets are wrapped (the seam's traits are erlboot's and the sockets turmoil's,
//! so the implementations live on types of this crate); each call goes straight through.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use erlboot::net::{Clock, Runtime, TcpListener, TcpStream, TokioTimer, UdpSocket};
use erlboot::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// turmoil's network and the simulated clock, counted from when the value was made (make it
/// inside the host that uses it).
#[derive(Clone, Copy, Debug)]
pub struct TurmoilRuntime {
    clock: Clock,
}

impl TurmoilRuntime {
    /// A runtime whose epoch is the host's simulated now.
    pub fn new() -> TurmoilRuntime {
        TurmoilRuntime {
            clock: Clock::start(),
        }
    }
}

impl Default for TurmoilRuntime {
    fn default() -> TurmoilRuntime {
        TurmoilRuntime::new()
    }
}

impl Runtime for TurmoilRuntime {
    type Udp = TurmoilUdp;
    type Listener = TurmoilListener;
    type Stream = TurmoilStream;
    type Timer = TokioTimer;

    async fn bind_udp(&self, addr: SocketAddr) -> io::Result<TurmoilUdp> {
        turmoil::net::UdpSocket::bind(addr).await.map(TurmoilUdp)
    }

    async fn listen(&self, addr: SocketAddr) -> io::Result<TurmoilListener> {
        turmoil::net::TcpListener::bind(addr)
            .await
            .map(TurmoilListener)
    }

    async fn connect(&self, addr: SocketAddr) -> io::Result<TurmoilStream> {
        turmoil::net::TcpStream::connect(addr)
            .await
            .map(TurmoilStream)
    }

    fn now(&self) -> Instant {
        self.clock.now()
    }

    /// turmoil drives tokio's paused clock, so tokio's timers are simulated ones here.
    fn timer(&self, at: Instant) -> TokioTimer {
        self.clock.timer(at)
    }
}

/// A simulated UDP socket.
#[derive(Debug)]
pub struct TurmoilUdp(turmoil::net::UdpSocket);

impl UdpSocket for TurmoilUdp {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.0.set_broadcast(on)
    }

    async fn send_to(&self, datagram: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.0.send_to(datagram, to).await
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.0.recv_from(buf).await
    }
}

/// A simulated listening socket.
pub struct TurmoilListener(turmoil::net::TcpListener);

impl TcpListener for TurmoilListener {
    type Stream = TurmoilStream;

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    async fn accept(&self) -> io::Result<(TurmoilStream, SocketAddr)> {
        let (stream, peer) = self.0.accept().await?;
        Ok((TurmoilStream(stream), peer))
    }
}

/// A simulated TCP connection.
#[derive(Debug)]
pub struct TurmoilStream(turmoil::net::TcpStream);

impl TcpStream for TurmoilStream {
    type ReadHalf = turmoil::net::tcp::OwnedReadHalf;
    type WriteHalf = turmoil::net::tcp::OwnedWriteHalf;

    fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.0.set_nodelay(on)
    }

    fn into_split(self) -> (Self::ReadHalf, Self::WriteHalf) {
        self.0.into_split()
    }
}

impl AsyncRead for TurmoilStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TurmoilStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
