//! The baseline: the same world with pre-built frames in place of the protocol code — a
//! server that answers a connection's i-th request with the workload's i-th reply frame, and
//! nodes that send the request frames without discovery, connecting when and where the nodes
//! of the run they follow first connected (or at their start, to the servers in turn). What
//! moving the bytes through turmoil costs, for `--baseline`'s ratio.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use erlboot::etf::Profile;
use erlboot::net::Runtime;
use erlboot::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::capacity::Capacity;
use crate::report::FirstConnection;
use crate::runtime::TurmoilRuntime;
use crate::wakeups::SimTimer;
use crate::world::{lock, node_name, now, sleep, think, Baseline, Shared};

/// The baseline server: accepts, and answers the i-th request of a connection with the
/// workload's i-th pre-built reply frame, queued on the same capacity.
pub(crate) async fn serve_frames(shared: Arc<Shared>, i: usize) -> turmoil::Result {
    let state = &shared.servers[i];
    let spec = &shared.scenario.servers[i];
    let capacity = Arc::new(Mutex::new(Capacity::new(
        spec.capacity.costs(),
        shared.links_mbit(i),
        0.0,
        shared.rtt,
        shared.seed,
    )));
    let port = *lock(&state.port);
    let listener =
        turmoil::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))).await?;
    // One time base for the capacity's queues, and the timers its waits take, as the real
    // server's runtime gives its connections.
    let runtime = TurmoilRuntime::new().with_wakeups(Arc::clone(&shared.wakeups));
    loop {
        let (mut stream, _) = listener.accept().await?;
        let shared = Arc::clone(&shared);
        let capacity = Arc::clone(&capacity);
        let runtime = runtime.clone();
        tokio::spawn(async move {
            let mut head = [0u8; 4];
            let mut payload = Vec::new();
            let mut timer: Option<SimTimer> = None;
            for frame in &shared.workload.reply_frames {
                if stream.read_exact(&mut head).await.is_err() {
                    return;
                }
                payload.resize(u32::from_be_bytes(head) as usize, 0);
                if stream.read_exact(&mut payload).await.is_err() {
                    return;
                }
                let now = runtime.now();
                let at =
                    Instant::from_epoch(lock(&capacity).deliver(now.since_epoch(), frame.len()));
                if at > now {
                    SimTimer::arm(&mut timer, at, now, || runtime.timer(at)).await;
                }
                // The frame becomes the segment, as a remembered reply does in the real
                // server's writes.
                let sent = std::future::poll_fn(|cx| {
                    stream.poll_write_owned(cx, frame.len(), || frame.clone())
                })
                .await;
                if sent.is_err() {
                    return;
                }
            }
        });
    }
}

/// The baseline node: connects without discovery, as `baseline` says, and sends the
/// pre-built request frames one at a time, reading each reply frame whole.
pub(crate) async fn fetch_frames(shared: Arc<Shared>, id: usize, baseline: Baseline) {
    let (start, group) = {
        let r = shared.recorder();
        (r.nodes[id].start, r.nodes[id].group)
    };
    let first = match baseline {
        Baseline::Spread => {
            let spec = &shared.scenario.clients[group];
            let queried: Vec<usize> = (0..shared.servers.len())
                .filter(|&i| {
                    spec.servers.is_empty() || spec.servers.contains(&shared.servers[i].name)
                })
                .collect();
            let Some(&server) = queried.get(id % queried.len().max(1)) else {
                return;
            };
            FirstConnection { at: start, server }
        }
        Baseline::Following(connections) => match connections.get(id).copied().flatten() {
            Some(first) => first,
            None => return,
        },
    };
    sleep(&shared, first.at.saturating_sub(now())).await;
    let server = &shared.servers[first.server];
    let addr = SocketAddrV4::new(server.ip, *lock(&server.port));
    let t = now();
    {
        let mut r = shared.recorder();
        r.nodes[id].started = Some(t);
        r.nodes[id].allowed = true;
        r.nodes[id].first_connection = Some(first);
        r.trace(t, id, 1);
    }
    let Ok(mut stream) = turmoil::net::TcpStream::connect(addr).await else {
        return;
    };
    // Replies are taken as the segments that carry them, as the real node's driver takes them
    // (`TcpStream::poll_read_bytes`), and compared as they come: the least a node can do
    // with the bytes.
    // Think times on the timers a booting node sleeps them on.
    let runtime = TurmoilRuntime::new().with_wakeups(Arc::clone(&shared.wakeups));
    let mut timer = None;
    let mut owed = Duration::ZERO;
    for (index, request) in shared.workload.encoded(Profile::Otp25).iter().enumerate() {
        let gap = shared.workload.think[index];
        think(&shared, &runtime, &mut timer, &mut owed, gap).await;
        let want = &shared.workload.reply_frames[index];
        if stream.write_all(request.frame()).await.is_err() {
            return;
        }
        let mut same = true;
        let mut got = 0;
        while got < want.len() {
            match std::future::poll_fn(|cx| stream.poll_read_bytes(cx)).await {
                Ok(bytes) if !bytes.is_empty() => {
                    // As the real node's check does (`LazyTerm`'s equality): the same memory is
                    // the same bytes without reading them.
                    same &= want.get(got..got + bytes.len()).is_some_and(|want| {
                        (want.as_ptr() == bytes.as_ptr() && want.len() == bytes.len())
                            || want == &bytes[..]
                    });
                    got += bytes.len();
                }
                _ => return,
            }
        }
        let t = now();
        let mut r = shared.recorder();
        r.bytes += want.len() as u64;
        if !same {
            let who = node_name(&shared, &r.nodes[id]);
            r.violation(t, "safety", who, format!("reply {index} differs"));
        }
        r.nodes[id].last_progress = t;
        r.nodes[id].done = index + 1;
        r.trace(t, id, 100 + index as u64);
    }
    shared.recorder().finish(now(), id);
}
