//! A load client for boot servers: replays recorded boots over TCP and validates every reply,
//! plus a minimal server that answers from the recorded replies (the machine's ceiling).
//!
//! The workload comes from request/reply payload pairs, e.g. those of `capture::TcpStream`.
//!
//! A reply is valid when it decodes (`Reply::decode`) and carries the command tag of its request
//! (`{error,_}` for a request that names no command). A boot counts only if every reply of it is
//! valid, so a server that answers garbage quickly gains nothing. Whether a reply is `ok` or
//! `error` is compared with the recording too, but only counted (`mismatches`): file times,
//! inodes and the cwd legitimately differ between machines.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use erlboot::etf::{Decoder, Limits};
use erlboot::proto::{Command, FrameDecoder, Reply, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Largest reply frame the client accepts.
const MAX_REPLY: u32 = 256 << 20;

/// One request and what the recording says about its reply.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// The request frame, 4-byte header included.
    pub request: Bytes,
    /// The command the reply must be tagged with; `None` means the reply must be `{error,_}`.
    pub command: Option<Command>,
    /// Whether the recorded reply was `{_, {ok, _}}`.
    pub ok: bool,
    /// The recorded reply frame, 4-byte header included.
    pub reply: Bytes,
}

/// The requests of one boot, in order.
#[derive(Clone, Debug)]
pub struct Workload {
    pub exchanges: Vec<Exchange>,
}

impl Workload {
    /// Builds a workload from (request payload, reply payload) pairs, without frame headers.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Result<Workload, String> {
        let requests = Decoder::new(Limits::request());
        let replies = Decoder::new(Limits::reply());
        let mut exchanges = Vec::new();
        for (i, (q, r)) in pairs.into_iter().enumerate() {
            let request = Request::decode(q, &requests)
                .map_err(|e| format!("request {i} does not decode: {e}"))?;
            let reply = Reply::decode(r, &replies)
                .map_err(|e| format!("reply {i} does not decode: {e}"))?;
            let command = request.command();
            if reply.command() != command {
                return Err(format!(
                    "reply {i} is tagged {:?} but its request is {request:?}",
                    reply.command()
                ));
            }
            exchanges.push(Exchange {
                request: framed(q),
                command,
                ok: is_ok(&reply),
                reply: framed(r),
            });
        }
        if exchanges.is_empty() {
            return Err("no requests".into());
        }
        Ok(Workload { exchanges })
    }

    /// The first exchange whose request names `command`.
    pub fn find(&self, command: Command) -> Option<&Exchange> {
        self.exchanges.iter().find(|e| e.command == Some(command))
    }

    /// Bytes a boot sends to the server and receives from it (recorded sizes).
    pub fn bytes(&self) -> (usize, usize) {
        self.exchanges.iter().fold((0, 0), |(up, down), e| {
            (up + e.request.len(), down + e.reply.len())
        })
    }

    /// Request payload (no header) → recorded reply frame, first occurrence wins.
    pub fn reply_map(&self) -> HashMap<Bytes, Bytes> {
        let mut map = HashMap::new();
        for e in &self.exchanges {
            map.entry(e.request.slice(4..))
                .or_insert_with(|| e.reply.clone());
        }
        map
    }
}

fn framed(payload: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out.into()
}

fn is_ok(reply: &Reply) -> bool {
    match reply {
        Reply::Get(r) => r.is_ok(),
        Reply::ListDir(r) => r.is_ok(),
        Reply::ReadFileInfo(r) | Reply::ReadLinkInfo(r) => r.is_ok(),
        Reply::GetCwd(r) => r.is_ok(),
        Reply::Error(_) | Reply::Other(_) => false,
    }
}

/// One client connection.
pub struct Conn {
    stream: TcpStream,
    buf: BytesMut,
    frames: FrameDecoder,
    terms: Decoder,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: BytesMut::with_capacity(64 << 10),
            frames: FrameDecoder::new(MAX_REPLY),
            terms: Decoder::new(Limits::reply()),
        })
    }

    /// Sends the request, reads its reply fully and validates it. `Ok(ok)` says whether the
    /// reply was `{_, {ok, _}}`.
    pub async fn exchange(&mut self, e: &Exchange) -> Result<bool, String> {
        self.stream
            .write_all(&e.request)
            .await
            .map_err(|err| format!("send: {err}"))?;
        let frame = loop {
            if let Some(frame) = self
                .frames
                .decode(&mut self.buf)
                .map_err(|err| err.to_string())?
            {
                break frame;
            }
            if self.buf.capacity() - self.buf.len() < 16 << 10 {
                self.buf.reserve(64 << 10);
            }
            let n = self
                .stream
                .read_buf(&mut self.buf)
                .await
                .map_err(|err| format!("receive: {err}"))?;
            if n == 0 {
                return Err("connection closed before the reply".into());
            }
        };
        if !self.buf.is_empty() {
            return Err(format!("{} bytes more than one reply", self.buf.len()));
        }
        let reply = Reply::decode(&frame, &self.terms)
            .map_err(|err| format!("reply does not decode: {err}"))?;
        if reply.command() != e.command {
            return Err(format!(
                "reply {reply:?} does not answer command {:?}",
                e.command
            ));
        }
        Ok(is_ok(&reply))
    }

    pub fn into_stream(self) -> TcpStream {
        self.stream
    }
}

/// What a closed-loop run measured.
#[derive(Clone, Debug, Default)]
pub struct RunStats {
    pub elapsed: Duration,
    /// Boots whose every reply was valid.
    pub boots: u64,
    /// Valid exchanges of complete boots and of the boots still running at the deadline;
    /// divided by the boot's length this gives fractional boots.
    pub exchanges: u64,
    /// Boots abandoned on an invalid reply or an I/O error (their exchanges do not count).
    pub failed_boots: u64,
    /// Connections that could not be opened.
    pub connect_errors: u64,
    /// Valid replies whose ok/error differs from the recording.
    pub mismatches: u64,
    /// Indexes in the workload of the first few of them.
    pub mismatched: Vec<usize>,
    pub first_error: Option<String>,
}

impl RunStats {
    /// Boots per second, counting the fraction done of boots cut by the deadline.
    pub fn boots_per_sec(&self, workload: &Workload) -> f64 {
        self.exchanges as f64 / workload.exchanges.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn add(&mut self, other: RunStats) {
        self.boots += other.boots;
        self.exchanges += other.exchanges;
        self.failed_boots += other.failed_boots;
        self.connect_errors += other.connect_errors;
        self.mismatches += other.mismatches;
        if self.mismatched.len() < 8 {
            self.mismatched.extend(other.mismatched);
        }
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// `concurrency` connections, each replaying whole boots back to back (a new connection per
/// boot, one request outstanding, as `erl_prim_loader` does) until `duration` has passed.
pub async fn run_boots(
    addr: SocketAddr,
    workload: Arc<Workload>,
    concurrency: usize,
    duration: Duration,
) -> RunStats {
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| tokio::spawn(boot_loop(addr, workload.clone(), Some(deadline), None)))
        .collect();
    let mut total = RunStats::default();
    for task in tasks {
        total.add(task.await.expect("client task panicked"));
    }
    total.elapsed = start.elapsed();
    total
}

/// Exactly one boot on one connection.
pub async fn one_boot(addr: SocketAddr, workload: Arc<Workload>) -> RunStats {
    let start = Instant::now();
    let mut stats = boot_loop(addr, workload, None, Some(1)).await;
    stats.elapsed = start.elapsed();
    stats
}

async fn boot_loop(
    addr: SocketAddr,
    workload: Arc<Workload>,
    deadline: Option<Instant>,
    max_attempts: Option<u64>,
) -> RunStats {
    let past = |deadline: Option<Instant>| deadline.is_some_and(|d| Instant::now() >= d);
    let mut stats = RunStats::default();
    let mut attempts = 0;
    while !past(deadline) && max_attempts.map_or(true, |max| attempts < max) {
        attempts += 1;
        // One timer per boot: a boot cut by the deadline counts the exchanges done so far.
        let mut done = 0;
        let mut outcome = Ok(());
        let boot = async {
            let mut conn = match Conn::connect(addr).await {
                Ok(conn) => conn,
                Err(err) => {
                    stats.connect_errors += 1;
                    stats.first_error.get_or_insert(format!("connect: {err}"));
                    outcome = Err(false);
                    return;
                }
            };
            for (i, e) in workload.exchanges.iter().enumerate() {
                match conn.exchange(e).await {
                    Ok(ok) => {
                        done += 1;
                        if ok != e.ok {
                            stats.mismatches += 1;
                            if stats.mismatched.len() < 8 {
                                stats.mismatched.push(i);
                            }
                        }
                    }
                    Err(err) => {
                        stats
                            .first_error
                            .get_or_insert(format!("request {i} ({:?}): {err}", e.command));
                        outcome = Err(true);
                        return;
                    }
                }
            }
        };
        match deadline {
            Some(d) => {
                let _ = tokio::time::timeout_at(d.into(), boot).await;
            }
            None => boot.await,
        }
        match outcome {
            Ok(()) => {
                stats.exchanges += done;
                stats.boots += u64::from(done == workload.exchanges.len() as u64);
            }
            Err(true) => stats.failed_boots += 1,
            // Refused: do not spin.
            Err(false) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    stats
}

/// What opening many idle connections measured.
#[derive(Debug, Default)]
pub struct IdleStats {
    /// Connections whose request got a valid reply.
    pub answered: usize,
    pub failed: usize,
    /// From the first connect until the last valid reply.
    pub last_answer: Duration,
    pub first_error: Option<String>,
}

/// Opens `total` connections in bursts of `burst` and sends `probe` on each; returns once all
/// have answered or failed, or at `timeout`. The answered connections are returned open.
///
/// With a non-zero `interval` a burst starts every `interval` whatever the server does (the
/// same offered load for every server); with `Duration::ZERO` a burst starts once every
/// connection of the previous one has answered or failed.
pub async fn open_idle(
    addr: SocketAddr,
    total: usize,
    burst: usize,
    interval: Duration,
    probe: Exchange,
    timeout: Duration,
) -> (IdleStats, Vec<TcpStream>) {
    type Answer = Result<Result<(TcpStream, Instant), String>, tokio::time::error::Elapsed>;
    let start = Instant::now();
    let deadline = tokio::time::Instant::from_std(start + timeout);
    let probe = Arc::new(probe);
    let mut pending = Vec::with_capacity(total);
    let mut answers: Vec<Answer> = Vec::with_capacity(total);
    let mut next_burst = tokio::time::Instant::from_std(start);
    let mut launched = 0;
    while launched < total {
        tokio::time::sleep_until(next_burst).await;
        next_burst += interval;
        for _ in 0..burst.min(total - launched) {
            let probe = probe.clone();
            launched += 1;
            pending.push(tokio::spawn(tokio::time::timeout_at(
                deadline,
                async move {
                    let mut conn = Conn::connect(addr)
                        .await
                        .map_err(|err| format!("connect: {err}"))?;
                    conn.exchange(&probe).await?;
                    Ok((conn.into_stream(), Instant::now()))
                },
            )));
        }
        if interval.is_zero() {
            for task in pending.drain(..) {
                answers.push(task.await.expect("idle task panicked"));
            }
        }
    }
    for task in pending {
        answers.push(task.await.expect("idle task panicked"));
    }
    let mut stats = IdleStats::default();
    let mut streams = Vec::with_capacity(total);
    for answer in answers {
        match answer {
            Ok(Ok((stream, at))) => {
                stats.answered += 1;
                stats.last_answer = stats.last_answer.max(at - start);
                streams.push(stream);
            }
            Ok(Err(err)) => {
                stats.failed += 1;
                stats.first_error.get_or_insert(err);
            }
            Err(_) => {
                stats.failed += 1;
                stats
                    .first_error
                    .get_or_insert(format!("no reply within {timeout:?}"));
            }
        }
    }
    (stats, streams)
}

/// The ceiling: answers each request with the reply recorded for the same request bytes,
/// one task per connection. A request it does not know closes the connection.
pub async fn serve_recorded(listener: TcpListener, replies: Arc<HashMap<Bytes, Bytes>>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let replies = replies.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let frames = FrameDecoder::new(1 << 20);
            let mut buf = BytesMut::with_capacity(4 << 10);
            loop {
                while let Ok(Some(request)) = frames.decode(&mut buf) {
                    let Some(reply) = replies.get(&request[..]) else {
                        return;
                    };
                    if stream.write_all(reply).await.is_err() {
                        return;
                    }
                }
                match stream.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        });
    }
}
