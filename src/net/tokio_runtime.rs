//! The [`Runtime`] on tokio's sockets and clock: what `erlboot serve`, `fetch`, `boot` and
//! `bench` run on.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use crate::time::Instant;

use super::clock::{Clock, TokioTimer};
use super::runtime::{Runtime, TcpListener, TcpStream, UdpSocket};

/// Pending connections the kernel queues before `accept` (OTP's boot server uses 5).
const LISTEN_BACKLOG: u32 = 4096;

/// tokio's sockets, and tokio's clock counted from when the runtime value was made.
#[derive(Clone, Copy, Debug)]
pub struct TokioRuntime {
    clock: Clock,
}

impl TokioRuntime {
    /// A runtime whose epoch is now (call inside a tokio runtime).
    pub fn new() -> TokioRuntime {
        TokioRuntime {
            clock: Clock::start(),
        }
    }

    /// Its clock.
    pub fn clock(&self) -> Clock {
        self.clock
    }
}

impl Default for TokioRuntime {
    fn default() -> TokioRuntime {
        TokioRuntime::new()
    }
}

impl Runtime for TokioRuntime {
    type Udp = tokio::net::UdpSocket;
    type Listener = tokio::net::TcpListener;
    type Stream = tokio::net::TcpStream;
    type Timer = TokioTimer;

    async fn bind_udp(&self, addr: SocketAddr) -> io::Result<tokio::net::UdpSocket> {
        tokio::net::UdpSocket::bind(addr).await
    }

    async fn listen(&self, addr: SocketAddr) -> io::Result<tokio::net::TcpListener> {
        let socket = match addr {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(LISTEN_BACKLOG)
    }

    async fn connect(&self, addr: SocketAddr) -> io::Result<tokio::net::TcpStream> {
        tokio::net::TcpStream::connect(addr).await
    }

    fn now(&self) -> Instant {
        self.clock.now()
    }

    fn timer(&self, at: Instant) -> TokioTimer {
        self.clock.timer(at)
    }
}

impl UdpSocket for tokio::net::UdpSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        tokio::net::UdpSocket::local_addr(self)
    }

    fn set_broadcast(&self, on: bool) -> io::Result<()> {
        tokio::net::UdpSocket::set_broadcast(self, on)
    }

    fn send_to(
        &self,
        datagram: &[u8],
        to: SocketAddr,
    ) -> impl Future<Output = io::Result<usize>> + Send {
        tokio::net::UdpSocket::send_to(self, datagram, to)
    }

    fn recv_from(
        &self,
        buf: &mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + Send {
        tokio::net::UdpSocket::recv_from(self, buf)
    }
}

impl TcpListener for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;

    fn local_addr(&self) -> io::Result<SocketAddr> {
        tokio::net::TcpListener::local_addr(self)
    }

    fn accept(
        &self,
    ) -> impl Future<Output = io::Result<(tokio::net::TcpStream, SocketAddr)>> + Send {
        tokio::net::TcpListener::accept(self)
    }
}

impl TcpStream for tokio::net::TcpStream {
    fn set_nodelay(&self, on: bool) -> io::Result<()> {
        tokio::net::TcpStream::set_nodelay(self, on)
    }
}
