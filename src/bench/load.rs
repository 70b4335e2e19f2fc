//! The load generator: connections that each replay whole boots, one request outstanding, a
//! new connection per boot (as a booting node does), with every reply checked.
//!
//! A reply is valid when it decodes and carries the command tag of its request (`{error,_}`
//! for a request that names no command). A boot counts only if every reply of it is valid, so
//! a server that answers garbage quickly gains nothing. Whether a reply is `ok` or `error` is
//! compared with the recorded boot too, but only counted (`mismatches`): file times, inodes
//! and the working directory legitimately differ between servers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use hdrhistogram::Histogram;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::etf::{DecodeError, Decoder, Limits};
use crate::proto::frame::{FrameDecoder, FrameError};
use crate::proto::{Command, Reply};

use super::workload::{Exchange, Workload};

/// Largest reply frame the generator accepts.
const MAX_REPLY: u32 = 256 << 20;

/// Slowest request latency the histograms hold, in microseconds (longer ones are clamped).
const MAX_LATENCY_US: u64 = 600_000_000;

/// Why one exchange, and so its boot, failed.
#[derive(Debug, Error)]
pub enum ExchangeError {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("send: {0}")]
    Send(std::io::Error),
    #[error("receive: {0}")]
    Receive(std::io::Error),
    #[error("the connection closed before the reply")]
    Closed,
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("{0} bytes arrived after the reply")]
    Extra(usize),
    #[error("the reply does not decode: {0}")]
    Decode(#[from] DecodeError),
    #[error("the reply is tagged {got:?}, the request was {expected:?}")]
    WrongCommand {
        expected: Option<Command>,
        got: Option<Command>,
    },
}

/// A reply that passed the checks.
#[derive(Debug)]
pub struct Answer {
    /// The frame's payload, without the 4-byte header.
    pub payload: Bytes,
    /// Whether it was `{_, {ok, _}}`.
    pub ok: bool,
}

impl Answer {
    /// The whole frame, header included.
    pub fn frame(&self) -> Vec<u8> {
        let mut frame = Vec::with_capacity(self.payload.len() + 4);
        frame.extend_from_slice(&(self.payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(&self.payload);
        frame
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
    pub async fn connect(addr: SocketAddr) -> Result<Conn, ExchangeError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(ExchangeError::Connect)?;
        stream.set_nodelay(true).map_err(ExchangeError::Connect)?;
        Ok(Conn {
            stream,
            buf: BytesMut::with_capacity(64 << 10),
            frames: FrameDecoder::new(MAX_REPLY),
            terms: Decoder::new(Limits::reply()),
        })
    }

    /// Sends the request and reads and checks its reply.
    pub async fn exchange(&mut self, exchange: &Exchange) -> Result<Answer, ExchangeError> {
        self.stream
            .write_all(&exchange.request)
            .await
            .map_err(ExchangeError::Send)?;
        let payload = loop {
            if let Some(payload) = self.frames.decode(&mut self.buf)? {
                break payload;
            }
            if self.buf.capacity() - self.buf.len() < 16 << 10 {
                self.buf.reserve(64 << 10);
            }
            let n = self
                .stream
                .read_buf(&mut self.buf)
                .await
                .map_err(ExchangeError::Receive)?;
            if n == 0 {
                return Err(ExchangeError::Closed);
            }
        };
        if !self.buf.is_empty() {
            return Err(ExchangeError::Extra(self.buf.len()));
        }
        let reply = Reply::decode(&payload, &self.terms)?;
        if reply.command() != exchange.command {
            return Err(ExchangeError::WrongCommand {
                expected: exchange.command,
                got: reply.command(),
            });
        }
        Ok(Answer {
            ok: is_ok(&reply),
            payload,
        })
    }
}

impl Conn {
    /// The connection itself, without the reading buffer.
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }
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

/// A new, empty latency histogram (microseconds, three significant digits).
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct RunStats {
    pub elapsed: Duration,
    /// Boots whose every reply was valid.
    pub boots: u64,
    /// Valid exchanges of complete boots and of the boots still running at the deadline;
    /// divided by the boot's length this gives fractional boots.
    pub exchanges: u64,
    /// Reply bytes of those exchanges, headers included.
    pub reply_bytes: u64,
    /// Boots abandoned on an invalid reply or an I/O error (their exchanges do not count).
    pub failed_boots: u64,
    /// Connections that could not be opened.
    pub connect_errors: u64,
    /// Valid replies whose ok/error differs from the recorded boot.
    pub mismatches: u64,
    pub first_error: Option<String>,
    /// Request latency, send to whole reply, in microseconds.
    pub latency: Histogram<u64>,
}

impl Default for RunStats {
    fn default() -> RunStats {
        RunStats {
            elapsed: Duration::ZERO,
            boots: 0,
            exchanges: 0,
            reply_bytes: 0,
            failed_boots: 0,
            connect_errors: 0,
            mismatches: 0,
            first_error: None,
            latency: latency_histogram(),
        }
    }
}

impl RunStats {
    /// Boots done, counting the fraction done of boots cut by the deadline.
    pub fn boots_done(&self, workload: &Workload) -> f64 {
        self.exchanges as f64 / workload.exchanges.len() as f64
    }

    fn add(&mut self, other: RunStats) {
        self.boots += other.boots;
        self.exchanges += other.exchanges;
        self.reply_bytes += other.reply_bytes;
        self.failed_boots += other.failed_boots;
        self.connect_errors += other.connect_errors;
        self.mismatches += other.mismatches;
        self.latency
            .add(&other.latency)
            .expect("histograms of the same bounds");
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// `concurrency` connections, each replaying whole boots back to back until `duration` has
/// passed.
pub async fn run_boots(
    addr: SocketAddr,
    workload: Arc<Workload>,
    concurrency: usize,
    duration: Duration,
) -> RunStats {
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| tokio::spawn(boot_loop(addr, workload.clone(), deadline)))
        .collect();
    let mut total = RunStats::default();
    for task in tasks {
        total.add(task.await.expect("a load task panicked"));
    }
    total.elapsed = start.elapsed();
    total
}

/// One whole boot on one connection, every reply kept: the recording the ceiling replays and
/// the check that a server boots a node at all.
pub async fn record_boot(
    addr: SocketAddr,
    workload: &Workload,
) -> Result<Vec<Answer>, (usize, ExchangeError)> {
    let mut conn = Conn::connect(addr).await.map_err(|e| (0, e))?;
    let mut answers = Vec::with_capacity(workload.exchanges.len());
    for (i, exchange) in workload.exchanges.iter().enumerate() {
        answers.push(conn.exchange(exchange).await.map_err(|e| (i, e))?);
    }
    Ok(answers)
}

async fn boot_loop(addr: SocketAddr, workload: Arc<Workload>, deadline: Instant) -> RunStats {
    let mut stats = RunStats::default();
    while Instant::now() < deadline {
        // A boot cut by the deadline counts the exchanges done so far.
        let mut done = 0;
        let mut bytes = 0;
        let mut outcome = Ok(());
        let boot = async {
            let mut conn = match Conn::connect(addr).await {
                Ok(conn) => conn,
                Err(err) => {
                    outcome = Err((None, err));
                    return;
                }
            };
            for (i, exchange) in workload.exchanges.iter().enumerate() {
                let sent = Instant::now();
                match conn.exchange(exchange).await {
                    Ok(answer) => {
                        let us = sent.elapsed().as_micros() as u64;
                        stats.latency.saturating_record(us.max(1));
                        done += 1;
                        bytes += answer.payload.len() as u64 + 4;
                        if exchange.recorded_ok.is_some_and(|ok| ok != answer.ok) {
                            stats.mismatches += 1;
                        }
                    }
                    Err(err) => {
                        outcome = Err((Some(i), err));
                        return;
                    }
                }
            }
        };
        let _ = tokio::time::timeout_at(deadline.into(), boot).await;
        match outcome {
            Ok(()) => {
                stats.exchanges += done;
                stats.reply_bytes += bytes;
                stats.boots += u64::from(done == workload.exchanges.len() as u64);
            }
            Err((None, err)) => {
                stats.connect_errors += 1;
                stats.first_error.get_or_insert(err.to_string());
                // Refused: do not spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err((Some(i), err)) => {
                stats.failed_boots += 1;
                stats
                    .first_error
                    .get_or_insert(format!("request {i} ({:?}): {err}", workload.requests[i]));
            }
        }
    }
    stats
}

/// Raises the soft limit on open files to the hard one (a herd holds two per node); returns
/// the limit now in force.
pub fn raise_open_files_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a valid struct for this process.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    limit.rlim_cur
}
