//! What a server's work costs in simulated time: CPU per request and per byte on a few
//! workers, its link's bandwidth, and the retransmissions of lost TCP segments.
//!
//! Every reply of a server goes through one [`Capacity`] as the server's driver writes it
//! (see [`TurmoilRuntime::with_capacity`](crate::TurmoilRuntime::with_capacity)), whether
//! its session answered from the files or from its reply cache: it is queued on the worker
//! free first, then on the server's link, and delivered when both are done and the asking
//! node's own link has carried it (a node waits for each reply before it asks again, so its
//! link is free when the reply starts). A herd therefore queues as it would on a real server,
//! and an overloaded one makes its clients wait past their reply timeout.
//!
//! # The presets (`cargo bench --bench serve`, README.md, "On this machine")
//! On this 2-core machine, 64 connections each replaying the 386-request OTP 25 boot
//! (4.05 MB of replies), release build:
//! - erlboot: 253.4 boots/s, 3.52 ms of server CPU per boot;
//! - OTP 25's `erl_boot_server`: 101.5 boots/s, 15.44 ms of server CPU per boot.
//!
//! With both cores busy a boot holds a worker `2 / boots/s`: 7.9 ms (erlboot) and 19.7 ms
//! (OTP). The split between per-request and per-byte cost is not measured; the presets put
//! about half of erlboot's on the requests (10 µs each, the session bench's order of magnitude)
//! and the rest on the bytes (1 ns/byte), and OTP's three times as high per request (30 µs:
//! a process message and a `term_to_binary` each) with the rest on the bytes (2 ns/byte).

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// A named capacity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// `erlboot serve` on this machine.
    #[default]
    Erlboot,
    /// OTP's `erl_boot_server` on this machine.
    Otp,
    /// No cost at all (the network and the loader alone).
    Free,
}

/// How fast a server works.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Costs {
    /// Requests worked on at once.
    pub workers: usize,
    /// CPU time per request.
    pub per_request: Duration,
    /// CPU time per byte of reply, in nanoseconds.
    pub ns_per_byte: f64,
}

impl Preset {
    /// The preset's costs (see the module's docs for where they come from).
    pub fn costs(self) -> Costs {
        match self {
            Preset::Erlboot => Costs {
                workers: 2,
                per_request: Duration::from_micros(10),
                ns_per_byte: 1.0,
            },
            Preset::Otp => Costs {
                workers: 2,
                per_request: Duration::from_micros(30),
                ns_per_byte: 2.0,
            },
            Preset::Free => Costs {
                workers: 1,
                per_request: Duration::ZERO,
                ns_per_byte: 0.0,
            },
        }
    }
}

/// Linux's smallest retransmission timeout (`TCP_RTO_MIN`).
pub const RTO_MIN: Duration = Duration::from_millis(200);

/// A server's queues: its workers, its link, and the loss on its connections. Times are
/// offsets on the simulated clock.
#[derive(Debug)]
pub struct Capacity {
    costs: Costs,
    /// When each worker is free again.
    workers: Vec<Duration>,
    /// When the link has sent everything queued so far.
    link_free: Duration,
    /// Nanoseconds per byte on the link.
    link_ns_per_byte: f64,
    /// Nanoseconds per byte on a node's link.
    node_ns_per_byte: f64,
    /// The share of TCP segments lost.
    tcp_loss: f64,
    /// The round-trip time the retransmission timeout starts from.
    rtt: Duration,
    rng: SmallRng,
    /// Retransmissions so far.
    pub retransmissions: u64,
}

/// A TCP segment's payload (Ethernet MTU, IPv4, TCP with timestamps).
const MSS: usize = 1448;

impl Capacity {
    /// A server with `costs`, a link of `mbit` Mbit/s, to nodes on links of `node_mbit`,
    /// connections losing `tcp_loss` of their segments over links of round-trip time `rtt`;
    /// losses drawn from `seed`.
    pub fn new(
        costs: Costs,
        [mbit, node_mbit]: [f64; 2],
        tcp_loss: f64,
        rtt: Duration,
        seed: u64,
    ) -> Capacity {
        Capacity {
            costs,
            workers: vec![Duration::ZERO; costs.workers.max(1)],
            link_free: Duration::ZERO,
            link_ns_per_byte: 8_000.0 / mbit,
            node_ns_per_byte: 8_000.0 / node_mbit,
            tcp_loss,
            rtt,
            rng: SmallRng::seed_from_u64(seed),
            retransmissions: 0,
        }
    }

    /// Changes the share of TCP segments lost.
    pub fn set_tcp_loss(&mut self, rate: f64) {
        self.tcp_loss = rate;
    }

    /// When an answer of `bytes` asked at `now` is delivered: after a worker's CPU time, the
    /// link's transmission (and the node's link's, where it is the slower), and the
    /// retransmissions of any lost segment.
    pub fn deliver(&mut self, now: Duration, bytes: usize) -> Duration {
        let cpu = self.costs.per_request
            + Duration::from_nanos((self.costs.ns_per_byte * bytes as f64) as u64);
        let (worker, free) = self
            .workers
            .iter()
            .copied()
            .enumerate()
            .min_by_key(|&(i, free)| (free, i))
            .expect("at least one worker");
        let done = free.max(now) + cpu;
        self.workers[worker] = done;
        let wire = Duration::from_nanos((self.link_ns_per_byte * bytes as f64) as u64);
        let sent = self.link_free.max(done) + wire;
        self.link_free = sent;
        // The bytes stream through both links: the slower one sets when the last arrives.
        let node_wire = Duration::from_nanos((self.node_ns_per_byte * bytes as f64) as u64);
        let sent = sent.max(sent - wire + node_wire);
        // The request's segment and the reply's.
        let segments = 1 + bytes.div_ceil(MSS);
        sent + self.retransmission_delay(segments)
    }

    /// What lost segments add: each lost one arrives a retransmission timeout late, the
    /// timeout doubling with each loss of the same segment, as Linux's does.
    fn retransmission_delay(&mut self, segments: usize) -> Duration {
        if self.tcp_loss <= 0.0 {
            return Duration::ZERO;
        }
        let rto = RTO_MIN.max(self.rtt * 3);
        let mut delay = Duration::ZERO;
        for _ in 0..segments {
            let mut timeout = rto;
            while self.rng.random_bool(self.tcp_loss) {
                self.retransmissions += 1;
                delay += timeout;
                timeout = (timeout * 2).min(Duration::from_secs(120));
            }
        }
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn answers_queue_on_the_workers_then_on_the_link() {
        let costs = Costs {
            workers: 2,
            per_request: ms(10),
            ns_per_byte: 0.0,
        };
        // 8 Mbit/s: a 1,000-byte answer takes 1 ms on the wire.
        let mut c = Capacity::new(costs, [8.0, 1e6], 0.0, ms(1), 1);
        assert_eq!(c.deliver(ms(0), 1000), ms(11));
        assert_eq!(
            c.deliver(ms(0), 1000),
            ms(12),
            "second worker, link busy until 11"
        );
        assert_eq!(c.deliver(ms(0), 1000), ms(21), "both workers busy until 10");
        assert_eq!(c.deliver(ms(100), 0), ms(110), "idle again");
    }

    #[test]
    fn a_slower_node_link_sets_when_the_reply_arrives() {
        let free = Preset::Free.costs();
        // 10 Gbit/s server, 1 Gbit/s node: a megabyte takes 0.8 ms to leave, 8 ms to arrive.
        let mut c = Capacity::new(free, [10_000.0, 1_000.0], 0.0, ms(1), 1);
        assert_eq!(c.deliver(ms(0), 1_000_000), ms(8));
        // The server's link is free again at 0.8 ms: the next node's reply is not queued
        // behind the first node's link.
        assert_eq!(
            c.deliver(ms(0), 1_000_000),
            Duration::from_micros(800) + ms(8)
        );
        // A node faster than the server: the server's link sets it.
        let mut fast = Capacity::new(free, [1_000.0, 10_000.0], 0.0, ms(1), 1);
        assert_eq!(fast.deliver(ms(0), 1_000_000), ms(8));
    }

    #[test]
    fn lost_segments_arrive_late_by_a_doubling_timeout() {
        let free = Preset::Free.costs();
        let mut lossy = Capacity::new(free, [1e6, 1e6], 0.5, ms(1), 7);
        let mut total = Duration::ZERO;
        for _ in 0..100 {
            total += lossy.deliver(ms(0), 0);
        }
        // Half the segments lost at least once: about 100 × (0.5·200 + 0.25·400 + ...) ms.
        assert!(lossy.retransmissions > 50, "{}", lossy.retransmissions);
        assert!(total >= RTO_MIN * 50, "{total:?}");
        let mut clean = Capacity::new(free, [1e6, 1e6], 0.0, ms(1), 7);
        // 100 kB at 1 Tbit/s: 800 ns on the wire, and nothing late.
        assert_eq!(clean.deliver(ms(0), 100_000), Duration::from_nanos(800));
    }
}
