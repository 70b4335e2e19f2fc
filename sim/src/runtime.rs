//! The socket seam on turmoil: simulated UDP (broadcast included) and TCP, and the simulated
//! clock of the host the code runs on.
//!
//! turmoil's sockets are wrapped (the seam's traits are erlboot's and the sockets turmoil's,
//! so the implementations live on types of this crate); each call goes straight through, but
//! for UDP datagram loss: turmoil's own `fail_rate` takes a whole link down for a while (a
//! flapping link), not one datagram, so a [`UdpLoss`] drops datagrams one by one as they are
//! sent, each drawn from the simulation's seed, and every datagram on a cut link (the world
//! cuts a link by holding its TCP segments, which a real TCP would retransmit, and drops its
//! datagrams here, which nothing retransmits); and for a server's work: a server's runtime
//! may queue each of its connections' writes (a reply each) on its [`Capacity`], which is
//! where the simulated server pays for its replies, whether its session answered from the
//! files or from its reply cache.
//!
//! A turmoil segment is one buffer, where the server driver writes a reply's head and file
//! contents with one vectored write (one `writev` on a real socket, which copies nothing in
//! the process): the stream gathers the two into a new buffer, unless they are byte for byte
//! a frame it was given whole ([`WholeFrames`]: the workload's reply frames, whose contents
//! are the very bytes the simulated tree serves), which then goes out as it is.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use erlboot::net::{Clock, Runtime, TcpListener, TcpStream, UdpSocket};
use erlboot::time::Instant;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::capacity::Capacity;
use crate::wakeups::{SimTimer, Wakeups};

/// turmoil's network and the simulated clock, counted from when the value was made (make it
/// inside the host that uses it).
#[derive(Clone, Debug)]
#[repr(C)]
pub struct TurmoilRuntime {
    /// First: the drivers read it at every event.
    clock: Clock,
    udp_loss: Option<(Arc<UdpLoss>, Ipv4Addr)>,
    wakeups: Option<Arc<Wakeups>>,
    capacity: Option<Arc<Mutex<Capacity>>>,
    whole: Option<Arc<WholeFrames>>,
}

impl TurmoilRuntime {
    /// A runtime whose epoch is the host's simulated now.
    pub fn new() -> TurmoilRuntime {
        TurmoilRuntime {
            clock: Clock::start(),
            udp_loss: None,
            wakeups: None,
            capacity: None,
            whole: None,
        }
    }

    /// The same runtime, its streams sending a vectored write that is one of `frames` as
    /// that frame, rather than gathering it.
    pub fn with_whole_frames(mut self, frames: Arc<WholeFrames>) -> TurmoilRuntime {
        self.whole = Some(frames);
        self
    }

    /// The same runtime, each write on the connections its listeners accept (a server's
    /// replies) waiting for its turn on `capacity`, whose times count from this runtime's
    /// epoch (make both inside the host that uses them).
    pub fn with_capacity(mut self, capacity: Arc<Mutex<Capacity>>) -> TurmoilRuntime {
        self.capacity = Some(capacity);
        self
    }

    /// A timer whose wake-up the world is not told of (a planted defect of the simulator).
    pub(crate) fn unregistered_timer(&self, at: Instant) -> SimTimer {
        SimTimer::new(self.clock, at, None)
    }

    /// The same runtime, its timers registered in `wakeups`.
    pub fn with_wakeups(mut self, wakeups: Arc<Wakeups>) -> TurmoilRuntime {
        self.wakeups = Some(wakeups);
        self
    }

    /// The same runtime on the host at `ip`, its UDP datagrams lost as `loss` says.
    pub fn with_udp_loss(mut self, loss: Arc<UdpLoss>, ip: Ipv4Addr) -> TurmoilRuntime {
        self.udp_loss = Some((loss, ip));
        self
    }
}

/// Datagram loss, shared by every socket of a simulation: each datagram sent is lost with the
/// rate in force, drawn from a seeded generator (one simulation runs on one thread, in an
/// order fixed by its seed, so the draws are too).
#[derive(Debug)]
pub struct UdpLoss {
    state: Mutex<(f64, SmallRng)>,
    /// Links cut, from and to.
    cut: Mutex<BTreeSet<(Ipv4Addr, Ipv4Addr)>>,
    lost: std::sync::atomic::AtomicU64,
}

impl UdpLoss {
    /// No loss yet; draws from `seed`.
    pub fn new(seed: u64) -> UdpLoss {
        UdpLoss {
            state: Mutex::new((0.0, SmallRng::seed_from_u64(seed))),
            cut: Mutex::new(BTreeSet::new()),
            lost: Default::default(),
        }
    }

    /// Sets the share of datagrams lost from now on.
    pub fn set_rate(&self, rate: f64) {
        self.state.lock().expect("loss lock").0 = rate;
    }

    /// Datagrams lost so far.
    pub fn lost(&self) -> u64 {
        self.lost.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Datagrams from `from` to `to` are lost (`true`) or pass again (`false`).
    pub fn set_cut(&self, from: Ipv4Addr, to: Ipv4Addr, cut: bool) {
        let mut links = self.cut.lock().expect("loss lock");
        if cut {
            links.insert((from, to));
        } else {
            links.remove(&(from, to));
        }
    }

    /// Whether the link from `from` to `to` is cut.
    pub fn is_cut(&self, from: Ipv4Addr, to: Ipv4Addr) -> bool {
        self.cut.lock().expect("loss lock").contains(&(from, to))
    }

    fn drops(&self, from: Ipv4Addr, to: SocketAddr) -> bool {
        if let IpAddr::V4(to) = to.ip() {
            if self.is_cut(from, to) {
                self.lost.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return true;
            }
        }
        let mut state = self.state.lock().expect("loss lock");
        let (rate, rng) = &mut *state;
        let lost = *rate > 0.0 && rng.random_bool(*rate);
        if lost {
            self.lost.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        lost
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
    type Timer = SimTimer;

    async fn bind_udp(&self, addr: SocketAddr) -> io::Result<TurmoilUdp> {
        let socket = turmoil::net::UdpSocket::bind(addr).await?;
        Ok(TurmoilUdp(socket, self.udp_loss.clone()))
    }

    async fn listen(&self, addr: SocketAddr) -> io::Result<TurmoilListener> {
        let listener = turmoil::net::TcpListener::bind(addr).await?;
        Ok(TurmoilListener {
            listener,
            whole: self.whole.clone(),
            queueing: self.capacity.as_ref().map(|capacity| Queueing {
                capacity: Arc::clone(capacity),
                clock: self.clock,
                wakeups: self.wakeups.clone(),
            }),
        })
    }

    async fn connect(&self, addr: SocketAddr) -> io::Result<TurmoilStream> {
        let stream = turmoil::net::TcpStream::connect(addr).await?;
        Ok(TurmoilStream {
            stream,
            queue: None,
            whole: self.whole.clone(),
        })
    }

    fn now(&self) -> Instant {
        self.clock.now()
    }

    /// turmoil drives tokio's paused clock, so tokio's timers are simulated ones here.
    fn timer(&self, at: Instant) -> SimTimer {
        SimTimer::new(self.clock, at, self.wakeups.as_ref())
    }
}

/// A simulated UDP socket.
#[derive(Debug)]
pub struct TurmoilUdp(turmoil::net::UdpSocket, Option<(Arc<UdpLoss>, Ipv4Addr)>);

impl UdpSocket for TurmoilUdp {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.0.set_broadcast(on)
    }

    async fn send_to(&self, datagram: &[u8], to: SocketAddr) -> io::Result<usize> {
        if self
            .1
            .as_ref()
            .is_some_and(|(loss, ip)| loss.drops(*ip, to))
        {
            // Sent, as far as the sender can tell.
            return Ok(datagram.len());
        }
        self.0.send_to(datagram, to).await
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.0.recv_from(buf).await
    }
}

/// A simulated listening socket.
pub struct TurmoilListener {
    listener: turmoil::net::TcpListener,
    whole: Option<Arc<WholeFrames>>,
    /// What its connections' writes queue on.
    queueing: Option<Queueing>,
}

impl TcpListener for TurmoilListener {
    type Stream = TurmoilStream;

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    async fn accept(&self) -> io::Result<(TurmoilStream, SocketAddr)> {
        let (stream, peer) = self.listener.accept().await?;
        let queue = self.queueing.clone().map(|queueing| WriteQueue {
            queueing,
            timer: None,
            turn: Turn::None,
        });
        let whole = self.whole.clone();
        Ok((
            TurmoilStream {
                stream,
                queue,
                whole,
            },
            peer,
        ))
    }
}

/// A simulated TCP connection.
#[derive(Debug)]
pub struct TurmoilStream {
    stream: turmoil::net::TcpStream,
    queue: Option<WriteQueue>,
    whole: Option<Arc<WholeFrames>>,
}

/// Frames known whole, by the address where their file contents start: a vectored write of a
/// head and contents that together are one of them, the contents being its very bytes, is
/// sent as that frame rather than gathered into a new buffer. Looked up, never iterated, so
/// the addresses do not order anything a run does.
#[derive(Debug, Default)]
pub struct WholeFrames {
    by_contents: BTreeMap<usize, Bytes>,
}

impl WholeFrames {
    /// Each frame with its `contents`, where they are its last bytes (pairs where they are
    /// not are left out).
    pub fn new(frames: impl IntoIterator<Item = (Bytes, Bytes)>) -> WholeFrames {
        let by_contents = frames
            .into_iter()
            .filter(|(frame, contents)| {
                let range = frame.as_ptr_range();
                !contents.is_empty()
                    && contents.as_ptr_range().end == range.end
                    && range.contains(&contents.as_ptr())
            })
            .map(|(frame, contents)| (contents.as_ptr() as usize, frame))
            .collect();
        WholeFrames { by_contents }
    }

    /// The frame that is `head` then `contents`, if `contents` are its own bytes.
    pub fn find(&self, head: &[u8], contents: &[u8]) -> Option<&Bytes> {
        let frame = self.by_contents.get(&(contents.as_ptr() as usize))?;
        let (frame_head, frame_contents) = frame.split_at(frame.len().checked_sub(contents.len())?);
        (frame_contents.as_ptr() == contents.as_ptr() && frame_head == head).then_some(frame)
    }
}

/// Where a server's connection stands with the server's [`Capacity`]: each write is one
/// reply, which is worked on and sent when the capacity says, and goes out then.
#[derive(Debug)]
struct WriteQueue {
    queueing: Queueing,
    /// Made at the first wait, reset for the later ones.
    timer: Option<SimTimer>,
    turn: Turn,
}

/// A server's capacity, the clock its times count on, and where waits for it are registered.
#[derive(Clone, Debug)]
struct Queueing {
    capacity: Arc<Mutex<Capacity>>,
    clock: Clock,
    wakeups: Option<Arc<Wakeups>>,
}

/// The write in hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    /// None: the next write queues.
    None,
    /// Queued, waiting for the timer.
    Waiting,
    /// Its time has come: the write goes out as soon as turmoil takes it.
    Due,
}

impl WriteQueue {
    /// Whether a write of `len` bytes may go out now; the first poll of a write queues it.
    fn poll_turn(&mut self, cx: &mut Context<'_>, len: usize) -> Poll<()> {
        if self.turn == Turn::None {
            let Queueing {
                capacity,
                clock,
                wakeups,
            } = &self.queueing;
            let now = clock.now();
            let at = Instant::from_epoch(
                capacity
                    .lock()
                    .expect("capacity lock")
                    .deliver(now.since_epoch(), len),
            );
            // The queues keep exact times; the reply waits for the first tick at or after its
            // time (one already due goes out now).
            if at <= now {
                self.turn = Turn::Due;
                return Poll::Ready(());
            }
            SimTimer::arm(&mut self.timer, at, now, || {
                SimTimer::new(*clock, at, wakeups.as_ref())
            });
            self.turn = Turn::Waiting;
        }
        if self.turn == Turn::Waiting {
            let timer = self.timer.as_mut().expect("a waiting write has a timer");
            std::task::ready!(std::future::Future::poll(Pin::new(timer), cx));
            self.turn = Turn::Due;
        }
        Poll::Ready(())
    }
}

impl TurmoilStream {
    /// A write of `len` bytes through `write`, once the server's capacity (if any) has come
    /// to it.
    fn poll_write_queued(
        &mut self,
        cx: &mut Context<'_>,
        len: usize,
        write: impl FnOnce(&mut turmoil::net::TcpStream, &mut Context<'_>) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        // An empty write is no reply, and takes no turn.
        let Some(queue) = self.queue.as_mut().filter(|_| len > 0) else {
            return write(&mut self.stream, cx);
        };
        std::task::ready!(queue.poll_turn(cx, len));
        let written = std::task::ready!(write(&mut self.stream, cx));
        queue.turn = Turn::None;
        Poll::Ready(written)
    }
}

impl TcpStream for TurmoilStream {
    const HOLDS_BYTES: bool = true;

    fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.stream.set_nodelay(on)
    }

    /// The segment that arrived, handed over as it is: a reply the server wrote in one write
    /// reaches the node's loader without a copy.
    fn poll_read_bytes(
        &mut self,
        cx: &mut Context<'_>,
        _buf: &mut BytesMut,
        _size: usize,
    ) -> Poll<io::Result<Bytes>> {
        self.stream.poll_read_bytes(cx)
    }

    /// The bytes become the segment itself, taken whole: a request is sent as the client
    /// made it, a remembered reply as the server holds it.
    fn poll_write_bytes(
        &mut self,
        cx: &mut Context<'_>,
        bytes: &mut Bytes,
    ) -> Poll<io::Result<usize>> {
        let len = bytes.len();
        self.poll_write_queued(cx, len, |stream, cx| {
            stream.poll_write_owned(cx, len, || std::mem::take(bytes))
        })
    }
}

impl AsyncRead for TurmoilStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TurmoilStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_queued(cx, buf.len(), |stream, cx| {
            Pin::new(stream).poll_write(cx, buf)
        })
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // turmoil sends each write as one segment and writes only the first buffer of a
        // vectored write: a reply's head and file contents (one `writev` the kernel sends as
        // one stream) are gathered into one segment, so a node reads a reply in one read, as
        // from a real TCP, rather than its head alone first. The gathered buffer becomes the
        // segment itself, not copied again.
        let len = bufs.iter().map(|b| b.len()).sum();
        let whole = match (bufs, &self.whole) {
            ([head, contents], Some(frames)) => frames.find(head, contents).cloned(),
            _ => None,
        };
        self.poll_write_queued(cx, len, |stream, cx| {
            stream.poll_write_owned(cx, len, || {
                if let Some(frame) = whole {
                    return frame;
                }
                let mut whole = Vec::with_capacity(len);
                for buf in bufs {
                    whole.extend_from_slice(buf);
                }
                Bytes::from(whole)
            })
        })
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
