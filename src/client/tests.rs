//! The loader in virtual time: a small world plays the network (answering servers, listeners
//! that accept, refuse or never answer) and records every action and event with its time.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use bytes::Bytes;

use std::sync::Arc;

use crate::etf::{Decoder, Limits, Profile, Term};
use crate::proto::discovery::Answer;
use crate::proto::frame::encode_term_frame;
use crate::proto::Request;
use crate::time::Instant;

use super::*;

const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const VERSION: &[u8] = b"13.1.5";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn at(d: Duration) -> Instant {
    Instant::from_epoch(d)
}

fn answer(priority: u8, port: u16) -> Vec<u8> {
    Answer {
        priority,
        port,
        version: VERSION.to_vec(),
    }
    .to_bytes()
}

fn udp_from(ip: Ipv4Addr) -> SocketAddrV4 {
    SocketAddrV4::new(ip, 4368)
}

fn server(priority: u8, ip: Ipv4Addr, port: u16) -> Discovered {
    Discovered {
        priority,
        addr: SocketAddrV4::new(ip, port),
    }
}

fn frame(term: &Term) -> Vec<u8> {
    encode_term_frame(term, Profile::Otp25).unwrap()
}

fn get_ok(contents: &[u8]) -> Vec<u8> {
    frame(&Term::tuple([
        Term::atom("get"),
        Term::tuple([Term::atom("ok"), Term::binary(contents.to_vec())]),
    ]))
}

fn file(contents: &[u8]) -> Event {
    Event::Reply(Ok(Response::File(Term::binary(contents.to_vec()).into())))
}

/// What a TCP listener does with a connect.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Listener {
    Accept,
    Refuse,
}

/// The network and the clock around one loader.
struct World {
    loader: Loader,
    now: Instant,
    /// Hosts that answer every query at once: queried address, answer's source, answer.
    answering: Vec<(Ipv4Addr, SocketAddrV4, Vec<u8>)>,
    /// TCP listeners; an address with none never answers a connect.
    listeners: Vec<(SocketAddrV4, Listener)>,
    actions: Vec<(Duration, Action)>,
    events: Vec<(Duration, Event)>,
}

impl World {
    fn new(hosts: &[Ipv4Addr]) -> World {
        World::with(LoaderConfig::new(hosts.to_vec(), VERSION))
    }

    fn with(config: LoaderConfig) -> World {
        let mut world = World {
            loader: Loader::new(config, Instant::ZERO),
            now: Instant::ZERO,
            answering: Vec::new(),
            listeners: Vec::new(),
            actions: Vec::new(),
            events: Vec::new(),
        };
        world.pump();
        world
    }

    /// A boot server at `ip`, answering with priority 0 and accepting on `port`.
    fn serve(&mut self, ip: Ipv4Addr, port: u16) {
        self.answer_from(ip, 0, port);
        self.listen(SocketAddrV4::new(ip, port), Listener::Accept);
    }

    fn answer_from(&mut self, ip: Ipv4Addr, priority: u8, port: u16) {
        self.answering
            .push((ip, udp_from(ip), answer(priority, port)));
    }

    fn listen(&mut self, addr: SocketAddrV4, listener: Listener) {
        self.listeners.push((addr, listener));
    }

    /// The server at `ip` is gone: no answers, no listeners, and nothing on open connections.
    fn power_off(&mut self, ip: Ipv4Addr) {
        self.answering.retain(|(_, from, _)| *from.ip() != ip);
        self.listeners.retain(|(addr, _)| *addr.ip() != ip);
    }

    /// Performs actions and reacts to them until the loader has nothing more to say.
    fn pump(&mut self) {
        let elapsed = self.now.since_epoch();
        loop {
            let mut datagrams = Vec::new();
            let mut connects = Vec::new();
            let mut acted = false;
            while let Some(action) = self.loader.poll_action() {
                acted = true;
                match &action {
                    Action::Query { to, .. } => {
                        for (host, from, bytes) in &self.answering {
                            if host == to.ip() {
                                datagrams.push((*from, bytes.clone()));
                            }
                        }
                    }
                    Action::Connect { conn, to } => {
                        let listener = self.listeners.iter().find(|(a, _)| a == to);
                        if let Some((_, listener)) = listener {
                            connects.push((*conn, *listener));
                        }
                    }
                    _ => {}
                }
                self.actions.push((elapsed, action));
            }
            while let Some(event) = self.loader.poll_event() {
                self.events.push((elapsed, event));
            }
            for (from, bytes) in datagrams {
                self.loader.handle_datagram(self.now, from, &bytes);
            }
            for (conn, listener) in connects {
                match listener {
                    Listener::Accept => self.loader.handle_connected(self.now, conn),
                    Listener::Refuse => self.loader.handle_connect_failed(self.now, conn),
                }
            }
            if !acted {
                return;
            }
        }
    }

    /// Lets time pass until `t`, acting on every timeout on the way at its own time.
    fn run_until(&mut self, t: Duration) {
        self.pump();
        while let Some(due) = self.loader.poll_timeout() {
            if due > at(t) {
                break;
            }
            self.now = due;
            self.loader.handle_timeout(due);
            self.pump();
        }
        self.now = at(t);
    }

    fn datagram(&mut self, from: SocketAddrV4, bytes: &[u8]) {
        self.loader.handle_datagram(self.now, from, bytes);
        self.pump();
    }

    fn request(&mut self, request: Request) {
        self.loader.request(self.now, &request).unwrap();
        self.pump();
    }

    fn data(&mut self, conn: ConnId, bytes: &[u8]) {
        self.loader
            .handle_data(self.now, conn, Bytes::copy_from_slice(bytes));
        self.pump();
    }

    fn closed(&mut self, conn: ConnId) {
        self.loader.handle_closed(self.now, conn);
        self.pump();
    }

    fn query_times(&self) -> Vec<Duration> {
        self.actions
            .iter()
            .filter(|(_, a)| matches!(a, Action::Query { .. }))
            .map(|(t, _)| *t)
            .collect()
    }

    fn connects(&self) -> Vec<(Duration, ConnId, SocketAddrV4)> {
        self.actions
            .iter()
            .filter_map(|(t, a)| match a {
                Action::Connect { conn, to } => Some((*t, *conn, *to)),
                _ => None,
            })
            .collect()
    }

    fn sends(&self) -> Vec<(Duration, ConnId, Bytes)> {
        self.actions
            .iter()
            .filter_map(|(t, a)| match a {
                Action::Send { conn, frame } => Some((*t, *conn, frame.clone())),
                _ => None,
            })
            .collect()
    }

    fn closes(&self) -> Vec<(Duration, ConnId)> {
        self.actions
            .iter()
            .filter_map(|(t, a)| match a {
                Action::Close { conn } => Some((*t, *conn)),
                _ => None,
            })
            .collect()
    }

    fn count(&self, action: &Action) -> usize {
        self.actions.iter().filter(|(_, a)| a == action).count()
    }

    fn sleeps(&self) -> Vec<(Duration, Duration)> {
        self.events
            .iter()
            .filter_map(|(t, e)| match e {
                Event::NoServerFound { sleep } => Some((*t, *sleep)),
                _ => None,
            })
            .collect()
    }

    fn replies(&self) -> Vec<(Duration, Event)> {
        self.events
            .iter()
            .filter(|(_, e)| matches!(e, Event::Reply(_)))
            .cloned()
            .collect()
    }

    fn last_conn(&self) -> ConnId {
        self.connects().last().expect("a connect").1
    }

    fn has_event(&self, event: &Event) -> bool {
        self.events.iter().any(|(_, e)| e == event)
    }
}

/// The times of a round of three unanswered queries starting at `start`.
fn round(start: Duration) -> [Duration; 3] {
    [start, start + ms(500), start + ms(1000)]
}

#[test]
fn no_answer_sends_three_queries_then_sleeps_10s_ten_times_then_60s() {
    let mut world = World::new(&[A]);
    world.run_until(secs(400));
    let mut expected = Vec::new();
    let mut start = Duration::ZERO;
    let mut sleeps = Vec::new();
    for k in 0..15 {
        expected.extend(round(start));
        let sleep = if k < 10 { secs(10) } else { secs(60) };
        sleeps.push((start + ms(1500), sleep));
        start += ms(1500) + sleep;
    }
    // Rounds start at 0, 11.5 s, …, 115 s, then 176.5 s, 238 s, 299.5 s, 361 s; the next
    // would start at 422.5 s.
    assert_eq!(start, ms(422_500));
    assert_eq!(world.query_times(), expected);
    assert_eq!(world.sleeps(), sleeps);
    assert_eq!(world.count(&Action::OpenDiscovery), 1);
    let query = Action::Query {
        to: SocketAddrV4::new(A, 4368),
        datagram: Bytes::from_static(b"EBOOTQ13.1.5"),
    };
    assert_eq!(world.count(&query), expected.len());
    assert!(world.connects().is_empty());
}

#[test]
fn without_hosts_nothing_is_sent_and_no_server_is_ever_found() {
    let mut world = World::new(&[]);
    world.run_until(secs(30));
    assert!(world.query_times().is_empty());
    assert_eq!(
        world.sleeps(),
        [
            (ms(1500), secs(10)),
            (ms(13_000), secs(10)),
            (ms(24_500), secs(10))
        ]
    );
}

#[test]
fn every_host_gets_each_query_in_order() {
    let mut world = World::new(&[B, A, Ipv4Addr::BROADCAST]);
    world.run_until(ms(100));
    let to: Vec<_> = world
        .actions
        .iter()
        .filter_map(|(_, a)| match a {
            Action::Query { to, .. } => Some(*to.ip()),
            _ => None,
        })
        .collect();
    assert_eq!(to, [B, A, Ipv4Addr::BROADCAST]);
}

#[test]
fn a_priority_0_answer_ends_discovery_after_one_window() {
    let mut world = World::new(&[A]);
    world.serve(A, 40000);
    // The world answers the queries it sees from now on; the first went out at 0.
    world.datagram(udp_from(A), &answer(0, 40000));
    world.run_until(secs(1));
    assert_eq!(world.query_times(), [Duration::ZERO]);
    let conn = world.last_conn();
    assert_eq!(
        world.connects(),
        [(ms(500), conn, SocketAddrV4::new(A, 40000))]
    );
    assert!(world.has_event(&Event::Connected {
        conn,
        server: server(0, A, 40000)
    }));
    assert_eq!(world.count(&Action::CloseDiscovery), 1);
    // Connected with nothing asked: idle until the idle timeout.
    assert_eq!(world.loader.poll_timeout(), Some(at(ms(60_500))));
}

#[test]
fn other_priorities_wait_for_all_three_queries() {
    let mut world = World::new(&[A]);
    world.answer_from(A, 7, 40000);
    world.listen(SocketAddrV4::new(A, 40000), Listener::Accept);
    world.datagram(udp_from(A), &answer(7, 40000));
    world.run_until(secs(3));
    assert_eq!(world.query_times(), round(Duration::ZERO));
    assert_eq!(world.connects()[0].0, ms(1500));
    // Three identical answers are one server.
    assert!(world.has_event(&Event::Discovered {
        answered: vec![server(7, A, 40000)],
        to_try: vec![server(7, A, 40000)],
    }));
}

#[test]
fn the_collect_window_starts_over_on_every_datagram_garbage_included() {
    let mut world = World::new(&[A]);
    world.run_until(ms(300));
    world.datagram(udp_from(A), &answer(0, 40000));
    world.listen(SocketAddrV4::new(A, 40000), Listener::Accept);
    world.run_until(ms(700));
    world.datagram(udp_from(B), b"garbage");
    world.run_until(ms(1100));
    world.datagram(udp_from(B), b"");
    world.run_until(ms(1599));
    assert!(world.connects().is_empty());
    world.run_until(secs(2));
    assert_eq!(world.connects()[0].0, ms(1600));
    assert_eq!(world.query_times(), [Duration::ZERO]);

    // Without a priority 0, the restarted window delays the next query.
    let mut world = World::new(&[A]);
    world.run_until(ms(400));
    world.datagram(udp_from(B), b"EBOOTR\x00");
    world.run_until(secs(1));
    assert_eq!(world.query_times(), [Duration::ZERO, ms(900)]);
}

#[test]
fn servers_are_tried_newest_first_whatever_their_priority() {
    // The broken keysort: a priority 1 answer that came last is tried before a priority 0 one.
    let mut world = World::new(&[Ipv4Addr::BROADCAST]);
    world.listen(SocketAddrV4::new(A, 1000), Listener::Refuse);
    world.listen(SocketAddrV4::new(B, 2000), Listener::Accept);
    world.run_until(ms(100));
    world.datagram(udp_from(A), &answer(0, 1000));
    world.run_until(ms(200));
    world.datagram(udp_from(B), &answer(1, 2000));
    world.run_until(secs(1));
    let expected = vec![server(1, B, 2000), server(0, A, 1000)];
    assert!(world.has_event(&Event::Discovered {
        answered: expected.clone(),
        to_try: expected,
    }));
    let targets: Vec<_> = world.connects().iter().map(|c| c.2).collect();
    assert_eq!(targets, [SocketAddrV4::new(B, 2000)]);
    assert_eq!(world.connects()[0].0, ms(700));
}

#[test]
fn the_connect_goes_to_the_answers_source_address() {
    // Queried by broadcast, answered from 10.0.0.2: the connect goes there, to the named port.
    let mut world = World::new(&[Ipv4Addr::BROADCAST]);
    world.answering.push((
        Ipv4Addr::BROADCAST,
        SocketAddrV4::new(B, 9),
        answer(0, 5555),
    ));
    world.listen(SocketAddrV4::new(B, 5555), Listener::Accept);
    world.datagram(SocketAddrV4::new(B, 9), &answer(0, 5555));
    world.run_until(secs(1));
    assert_eq!(world.connects()[0].2, SocketAddrV4::new(B, 5555));
}

#[test]
fn a_failed_connect_moves_on_to_the_next_server() {
    let mut world = World::new(&[Ipv4Addr::BROADCAST]);
    world.listen(SocketAddrV4::new(A, 1000), Listener::Accept);
    world.datagram(udp_from(A), &answer(0, 1000));
    world.datagram(udp_from(B), &answer(0, 2000));
    // B (newest) has no listener at all: its connect times out after 15 s.
    world.run_until(secs(20));
    let connects = world.connects();
    assert_eq!(connects.len(), 2);
    assert_eq!(
        (connects[0].0, connects[0].2),
        (ms(500), SocketAddrV4::new(B, 2000))
    );
    assert_eq!(
        (connects[1].0, connects[1].2),
        (ms(15_500), SocketAddrV4::new(A, 1000))
    );
    assert_eq!(world.closes(), [(ms(15_500), connects[0].1)]);
    assert!(world.has_event(&Event::ConnectFailed {
        conn: connects[0].1,
        server: server(0, B, 2000),
        timed_out: true
    }));
}

#[test]
fn a_server_that_refuses_tcp_makes_back_to_back_rounds_until_its_port_changes() {
    let mut world = World::new(&[A]);
    world.answer_from(A, 0, 1000);
    world.listen(SocketAddrV4::new(A, 1000), Listener::Refuse);
    world.datagram(udp_from(A), &answer(0, 1000));
    world.run_until(ms(2900));
    // One connect, refused at 0.5 s; from then on every answer is ignored, and each round
    // starts as soon as the last one ends: no sleep, no 'no server found'.
    assert_eq!(world.connects().len(), 1);
    assert_eq!(
        world.query_times(),
        [0, 500, 1000, 1500, 2000, 2500].map(ms)
    );
    assert!(world.sleeps().is_empty());
    assert!(world.has_event(&Event::Discovered {
        answered: vec![server(0, A, 1000)],
        to_try: vec![],
    }));
    assert_eq!(world.count(&Action::OpenDiscovery), 1);

    // The server restarts on another port: the new triple is not ignored.
    world.power_off(A);
    world.serve(A, 1001);
    world.run_until(secs(4));
    let connects = world.connects();
    assert_eq!(connects.len(), 2);
    assert_eq!(
        (connects[1].0, connects[1].2),
        (ms(3500), SocketAddrV4::new(A, 1001))
    );
    assert!(world.has_event(&Event::Connected {
        conn: connects[1].1,
        server: server(0, A, 1001)
    }));
}

#[test]
fn the_ignore_list_lasts_until_a_connect_succeeds() {
    let mut world = World::new(&[Ipv4Addr::BROADCAST]);
    world
        .answering
        .push((Ipv4Addr::BROADCAST, udp_from(A), answer(0, 1000)));
    world.listen(SocketAddrV4::new(A, 1000), Listener::Refuse);
    world.datagram(udp_from(A), &answer(0, 1000));
    world.run_until(ms(1200));
    // B appears; A is still ignored, B is tried and accepts.
    world
        .answering
        .push((Ipv4Addr::BROADCAST, udp_from(B), answer(0, 2000)));
    world.listen(SocketAddrV4::new(B, 2000), Listener::Accept);
    world.run_until(ms(2000));
    assert!(world.has_event(&Event::Discovered {
        answered: vec![server(0, B, 2000), server(0, A, 1000)],
        to_try: vec![server(0, B, 2000)],
    }));
    let first = world.last_conn();
    assert_eq!(world.connects().len(), 2);

    // After that connection ends, a new discovery starts with an empty ignore list: A, the
    // newest answer now, is tried again.
    world.power_off(B);
    world.closed(first);
    world.request(Request::Get("/x".into()));
    world.run_until(ms(3000));
    let targets: Vec<_> = world.connects().iter().map(|c| c.2).collect();
    assert_eq!(targets.last(), Some(&SocketAddrV4::new(A, 1000)));
}

#[test]
fn a_round_with_answers_resets_the_count_of_short_sleeps() {
    let mut world = World::new(&[A]);
    world.run_until(secs(300));
    assert_eq!(world.sleeps().last().unwrap().1, secs(60));
    // The round that started at 299.5 s gets one answer, from a server that refuses TCP.
    world.listen(SocketAddrV4::new(A, 1000), Listener::Refuse);
    let before = world.sleeps().len();
    world.datagram(udp_from(A), &answer(0, 1000));
    world.run_until(secs(310));
    assert_eq!(world.connects().len(), 1);
    assert_eq!(world.connects()[0].0, ms(300_500));
    assert_eq!(world.sleeps()[before], (ms(302_000), secs(10)));
}

#[test]
fn answers_that_arrive_during_a_sleep_are_read_by_the_next_round() {
    let mut world = World::new(&[A]);
    world.run_until(secs(5));
    world.datagram(udp_from(A), &answer(0, 1000));
    world.listen(SocketAddrV4::new(A, 1000), Listener::Accept);
    world.run_until(secs(20));
    // The next round starts at 11.5 s with one query and finds the waiting answer at once.
    assert_eq!(world.query_times()[3], ms(11_500));
    assert_eq!(world.query_times().len(), 4);
    assert_eq!(world.connects()[0].0, ms(12_000));
}

#[test]
fn answers_that_arrive_during_a_connect_are_read_by_the_next_round() {
    let mut world = World::new(&[Ipv4Addr::BROADCAST]);
    world.datagram(udp_from(A), &answer(0, 1000));
    world.run_until(secs(2));
    // A's connect hangs; B answers meanwhile, once.
    world.datagram(udp_from(B), &answer(0, 2000));
    world.listen(SocketAddrV4::new(B, 2000), Listener::Accept);
    world.run_until(secs(20));
    let connects = world.connects();
    assert_eq!(connects.len(), 2);
    assert_eq!(
        (connects[1].0, connects[1].2),
        (ms(16_000), SocketAddrV4::new(B, 2000))
    );
}

#[test]
fn a_request_is_sent_as_soon_as_discovery_connects() {
    let mut world = World::new(&[A]);
    world.serve(A, 40000);
    world.request(Request::Get("/tmp/bs/hello.txt".into()));
    world.datagram(udp_from(A), &answer(0, 40000));
    world.run_until(secs(1));
    let conn = world.last_conn();
    let sends = world.sends();
    assert_eq!(sends.len(), 1);
    assert_eq!((sends[0].0, sends[0].1), (ms(500), conn));
    // PROTOCOL.md §5.4, the OTP 25 client's frame.
    assert_eq!(
        &sends[0].2[..],
        [
            0x00, 0x00, 0x00, 0x1D, 0x83, 0x68, 0x02, 0x64, 0x00, 0x03, 0x67, 0x65, 0x74, 0x6B,
            0x00, 0x11, 0x2F, 0x74, 0x6D, 0x70, 0x2F, 0x62, 0x73, 0x2F, 0x68, 0x65, 0x6C, 0x6C,
            0x6F, 0x2E, 0x74, 0x78, 0x74
        ]
    );
    assert_eq!(world.loader.poll_timeout(), Some(at(ms(60_500))));
    world.data(conn, &get_ok(b"hi\n"));
    assert_eq!(world.replies(), [(secs(1), file(b"hi\n"))]);
    assert!(!world.loader.is_busy());
}

/// A world connected to A:40000 at 0.5 s with nothing outstanding.
fn connected() -> (World, ConnId) {
    connected_with(LoaderConfig::new(vec![A], VERSION))
}

/// [`connected`], the loader configured as `config`.
fn connected_with(config: LoaderConfig) -> (World, ConnId) {
    let mut world = World::with(config);
    world.serve(A, 40000);
    world.datagram(udp_from(A), &answer(0, 40000));
    world.run_until(secs(1));
    let conn = world.last_conn();
    (world, conn)
}

#[test]
fn request_frames_match_the_golden_vectors_of_both_profiles() {
    let hex = |s: &str| -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    };
    let cases = [
        (
            Profile::Otp25,
            Request::Get("/tmp/bs/hello.txt".into()),
            "00 00 00 1D 83 68 02 64 00 03 67 65 74 6B 00 11 2F 74 6D 70 2F 62 73 2F 68 65 6C 6C 6F 2E 74 78 74",
        ),
        (
            Profile::Otp26,
            Request::Get("/tmp/bs/hello.txt".into()),
            "00 00 00 1C 83 68 02 77 03 67 65 74 6B 00 11 2F 74 6D 70 2F 62 73 2F 68 65 6C 6C 6F 2E 74 78 74",
        ),
        (Profile::Otp25, Request::GetCwd, "00 00 00 0B 83 64 00 07 67 65 74 5F 63 77 64"),
        (Profile::Otp26, Request::GetCwd, "00 00 00 0A 83 77 07 67 65 74 5F 63 77 64"),
    ];
    for (profile, request, golden) in cases {
        let mut config = LoaderConfig::new(vec![A], VERSION);
        config.profile = profile;
        let (mut world, _) = connected_with(config);
        world.request(request.clone());
        assert_eq!(world.sends()[0].2, hex(golden), "{request:?} {profile:?}");
    }
}

#[test]
fn an_encoded_request_is_sent_as_the_very_frame_it_holds() {
    let requests = [
        Request::Get("/tmp/bs/hello.txt".into()),
        Request::GetCwd,
        Request::ListDir("/tmp/bs".into()),
    ];
    for profile in [Profile::Otp25, Profile::Otp26] {
        let encoded = crate::proto::EncodedRequest::all(&requests, profile).unwrap();
        // Each frame is the request's own, and all of them are cut from one allocation.
        for (request, encoded) in requests.iter().zip(&encoded) {
            assert_eq!(encoded.request(), request);
            assert_eq!(encoded.profile(), profile);
            assert_eq!(encoded.frame()[..], request.frame(profile).unwrap()[..]);
        }
        for pair in encoded.windows(2) {
            let end = pair[0].frame().as_ptr().wrapping_add(pair[0].frame().len());
            assert_eq!(pair[1].frame().as_ptr(), end, "{profile:?}");
        }

        let mut config = LoaderConfig::new(vec![A], VERSION);
        config.profile = profile;
        let (mut world, conn) = connected_with(config);
        world
            .loader
            .request_encoded(world.now, &encoded[0])
            .unwrap();
        world.pump();
        assert_eq!(
            world.loader.request_encoded(world.now, &encoded[1]),
            Err(LoaderError::Busy)
        );
        let sent = world.sends();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].1, conn);
        assert_eq!(sent[0].2.as_ptr(), encoded[0].frame().as_ptr());
        assert_eq!(sent[0].2.len(), encoded[0].frame().len());
    }
}

#[test]
fn a_request_encoded_for_another_profile_is_sent_as_the_loaders_profile_encodes_it() {
    let request = Request::Get("/tmp/bs/hello.txt".into());
    let otp25 = crate::proto::EncodedRequest::new(request.clone(), Profile::Otp25).unwrap();
    let mut config = LoaderConfig::new(vec![A], VERSION);
    config.profile = Profile::Otp26;
    let (mut world, _) = connected_with(config);
    world.loader.request_encoded(world.now, &otp25).unwrap();
    world.pump();
    let sent = world.sends();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].2[..], request.frame(Profile::Otp26).unwrap()[..]);
    assert_ne!(sent[0].2[..], otp25.frame()[..]);
}

#[test]
fn a_second_request_is_refused_while_one_is_outstanding() {
    let (mut world, conn) = connected();
    world.request(Request::GetCwd);
    assert_eq!(
        world.loader.request(world.now, &Request::GetCwd),
        Err(LoaderError::Busy)
    );
    assert_eq!(world.sends().len(), 1);
    world.data(
        conn,
        &frame(&Term::tuple([
            Term::atom("get_cwd"),
            Term::tuple([Term::atom("ok"), Term::string("/srv")]),
        ])),
    );
    assert_eq!(
        world.replies()[0].1,
        Event::Reply(Ok(Response::Ok(Term::string("/srv").into())))
    );
    world.request(Request::GetCwd);
    assert_eq!(world.sends().len(), 2);
}

#[test]
fn a_reply_timeout_closes_rediscovers_and_resends_the_same_bytes() {
    let (mut world, first) = connected();
    world.run_until(secs(2));
    world.request(Request::ListDir("/usr/lib/erlang/lib".into()));
    world.run_until(ms(61_999));
    assert!(world.closes().is_empty());
    world.run_until(secs(63));
    assert_eq!(world.closes(), [(secs(62), first)]);
    assert!(world.has_event(&Event::Resending {
        conn: first,
        reason: ResendReason::ReplyTimeout
    }));
    assert_eq!(world.count(&Action::OpenDiscovery), 2);
    let second = world.last_conn();
    assert_ne!(first, second);
    let sends = world.sends();
    assert_eq!(sends.len(), 2);
    assert_eq!((sends[1].0, sends[1].1), (ms(62_500), second));
    assert_eq!(sends[0].2, sends[1].2);
    // The order of it all: close, a fresh socket, a query.
    let from = world
        .actions
        .iter()
        .position(|(_, a)| *a == Action::Close { conn: first })
        .unwrap();
    assert_eq!(world.actions[from + 1].1, Action::OpenDiscovery);
    assert!(matches!(world.actions[from + 2].1, Action::Query { .. }));
    // And it never gives up.
    world.run_until(secs(400));
    assert_eq!(world.sends().len(), 7);
}

#[test]
fn a_server_that_comes_back_on_another_port_is_found_after_the_reply_timeout() {
    let (mut world, first) = connected();
    world.request(Request::Get("/a".into()));
    world.data(first, &get_ok(b"a"));
    // The server dies without a word and restarts on another port at 5 s.
    world.run_until(secs(2));
    world.power_off(A);
    world.request(Request::Get("/b".into()));
    world.run_until(secs(5));
    world.serve(A, 40001);
    // The client stalls on the dead connection until its reply timeout.
    world.run_until(secs(61));
    assert_eq!(world.connects().len(), 1);
    world.run_until(secs(63));
    let second = world.last_conn();
    assert_eq!(
        world.connects()[1],
        (ms(62_500), second, SocketAddrV4::new(A, 40001))
    );
    assert_eq!(world.sends()[2].1, second);
    world.data(second, &get_ok(b"b"));
    assert_eq!(world.replies()[1].1, file(b"b"));
}

#[test]
fn a_close_during_a_request_rediscovers_at_once_and_resends() {
    let (mut world, first) = connected();
    world.request(Request::ReadFileInfo("/x".into()));
    world.run_until(secs(3));
    world.closed(first);
    assert!(world.has_event(&Event::Resending {
        conn: first,
        reason: ResendReason::Closed
    }));
    world.run_until(secs(4));
    let sends = world.sends();
    assert_eq!(sends.len(), 2);
    assert_eq!(sends[1].0, ms(3500));
    assert_eq!(sends[0].2, sends[1].2);
    // The loader does not close what the driver reported closed.
    assert!(world.closes().is_empty());
}

#[test]
fn an_unused_connection_closes_after_60s_and_the_next_request_rediscovers() {
    let (mut world, first) = connected();
    world.run_until(secs(10));
    world.request(Request::Get("/a".into()));
    world.data(first, &get_ok(b"a"));
    world.run_until(ms(69_999));
    assert!(world.closes().is_empty());
    world.run_until(secs(100));
    assert_eq!(world.closes(), [(secs(70), first)]);
    assert!(world.has_event(&Event::IdleClosed { conn: first }));
    assert_eq!(world.loader.poll_timeout(), None);
    world.request(Request::Get("/b".into()));
    world.run_until(secs(101));
    assert_eq!(world.count(&Action::OpenDiscovery), 2);
    assert_eq!(world.query_times().last(), Some(&secs(100)));
    let second = world.last_conn();
    assert_eq!(world.sends().last().unwrap().0, ms(100_500));
    assert_eq!(world.sends().last().unwrap().1, second);
}

#[test]
fn unsolicited_frames_are_dropped_and_restart_the_idle_wait() {
    let (mut world, conn) = connected();
    world.run_until(secs(30));
    world.data(conn, &get_ok(b"stray"));
    assert!(world.replies().is_empty());
    world.run_until(secs(89));
    assert!(world.closes().is_empty());
    world.run_until(secs(91));
    assert_eq!(world.closes(), [(secs(90), conn)]);
}

#[test]
fn a_server_close_while_unused_means_the_next_request_rediscovers() {
    let (mut world, conn) = connected();
    world.closed(conn);
    assert!(world.has_event(&Event::Lost { conn }));
    assert_eq!(world.loader.poll_timeout(), None);
    world.run_until(secs(5));
    world.request(Request::GetCwd);
    world.run_until(secs(6));
    assert_eq!(world.connects().len(), 2);
    assert_eq!(world.sends()[0].0, ms(5500));
}

#[test]
fn late_events_for_old_connections_are_ignored() {
    let mut world = World::new(&[Ipv4Addr::BROADCAST]);
    world.datagram(udp_from(B), &answer(0, 2000));
    world.run_until(secs(16));
    // B's connect timed out at 15.5 s; it reports in late, and fails too.
    let stale = world.connects()[0].1;
    world.loader.handle_connected(world.now, stale);
    world.loader.handle_connect_failed(world.now, stale);
    world.pump();
    assert!(!world
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::Connected { .. })));

    let (mut world, first) = connected();
    world.request(Request::Get("/a".into()));
    world.run_until(secs(62));
    let second = world.last_conn();
    world.assert_waiting_on(second);
    // The reply to the first send arrives on the old connection, then it closes.
    world.data(first, &get_ok(b"old"));
    world.closed(first);
    world.loader.handle_connected(world.now, first);
    world.pump();
    assert!(world.replies().is_empty());
    assert_eq!(world.connects().len(), 2);
    world.data(second, &get_ok(b"new"));
    assert_eq!(world.replies()[0].1, file(b"new"));
}

impl World {
    fn assert_waiting_on(&self, conn: ConnId) {
        assert!(self.loader.is_busy());
        assert_eq!(self.sends().last().unwrap().1, conn);
    }
}

#[test]
fn replies_may_arrive_in_pieces_and_extra_frames_are_dropped() {
    let (mut world, conn) = connected();
    world.request(Request::Get("/a".into()));
    let mut bytes = get_ok(b"contents");
    bytes.extend_from_slice(&get_ok(b"extra"));
    bytes.extend_from_slice(&get_ok(b"part")[..7]);
    let (head, tail) = bytes.split_at(3);
    world.data(conn, head);
    assert!(world.replies().is_empty());
    world.data(conn, tail);
    assert_eq!(world.replies(), [(secs(1), file(b"contents"))]);
    // The rest of a partial frame completes it as the next request's reply, as OTP's
    // `{packet,4}` socket would deliver it.
    world.request(Request::Get("/b".into()));
    world.data(conn, &get_ok(b"part")[7..]);
    assert_eq!(world.replies()[1].1, file(b"part"));
}

#[test]
fn the_rest_of_a_reply_is_not_taken_for_a_reply_of_its_own() {
    // A reply whose payload begins with what looks like a whole reply frame: after its header
    // alone, the rest completes it (an undecodable reply), and is not read as the inner one.
    let (mut world, conn) = connected();
    world.request(Request::Get("/a".into()));
    let inner = get_ok(b"inner");
    let outer = [&(inner.len() as u32).to_be_bytes()[..], &inner].concat();
    world.data(conn, &outer[..4]);
    world.data(conn, &outer[4..]);
    let replies = world.replies();
    assert_eq!(replies.len(), 1);
    assert!(
        matches!(&replies[0].1, Event::Reply(Err(ReplyError::Undecodable(_)))),
        "{replies:?}"
    );
}

#[test]
fn errors_and_undecodable_replies_keep_the_connection() {
    let (mut world, conn) = connected();
    world.request(Request::Get("/nope".into()));
    world.data(
        conn,
        &frame(&Term::tuple([
            Term::atom("get"),
            Term::tuple([Term::atom("error"), Term::atom("enoent")]),
        ])),
    );
    world.request(Request::Get("/bad".into()));
    world.data(conn, &[0, 0, 0, 2, 131, 200]);
    let replies = world.replies();
    assert_eq!(
        replies[0].1,
        Event::Reply(Err(ReplyError::Server(Term::atom("enoent"))))
    );
    assert!(matches!(
        replies[1].1,
        Event::Reply(Err(ReplyError::Undecodable(_)))
    ));
    world.request(Request::Get("/c".into()));
    assert_eq!(world.sends().last().unwrap().1, conn);
    assert_eq!(world.connects().len(), 1);
}

#[test]
fn loaders_sharing_a_memo_read_the_same_replies_and_shared_memory_once() {
    let memo = Arc::new(ReplyMemo::new(Decoder::new(Limits::reply())));
    let names: Vec<Term> = (0..20)
        .map(|i| Term::string(&format!("m{i}.beam")))
        .collect();
    let listing = Term::tuple([
        Term::atom("list_dir"),
        Term::tuple([Term::atom("ok"), Term::list(names)]),
    ]);
    let shared = Bytes::from(frame(&listing));
    let mut replies = Vec::new();
    // Without the memo, then with it: twice the same memory, then a copy.
    for (with_memo, copy) in [(false, false), (true, false), (true, false), (true, true)] {
        let (mut world, conn) = connected();
        if with_memo {
            let config = world.loader.config().clone();
            world.loader = std::mem::replace(&mut world.loader, Loader::new(config, world.now))
                .with_memo(Arc::clone(&memo));
        }
        assert_eq!(world.loader.memo_shared(), with_memo);
        world.request(Request::ListDir("/srv".into()));
        let bytes = match copy {
            true => Bytes::copy_from_slice(&shared),
            false => shared.clone(),
        };
        world.loader.handle_data(world.now, conn, bytes);
        world.pump();
        world.request(Request::Get("/bad".into()));
        world.data(conn, &[0, 0, 0, 2, 131, 200]);
        replies.push(world.replies());
    }
    // The same memory twice is one entry; a copy is another.
    assert_eq!(memo.len(), 2);
    let Event::Reply(Ok(Response::Ok(value))) = &replies[0][0].1 else {
        panic!("{:?}", replies[0]);
    };
    assert!(matches!(value.term(), Term::List(items) if items.len() == 20));
    for other in &replies[1..] {
        assert_eq!(other[0].1, replies[0][0].1);
        assert!(matches!(
            other[1].1,
            Event::Reply(Err(ReplyError::Undecodable(_)))
        ));
    }
}

#[test]
fn a_memo_for_other_limits_is_not_used() {
    let mut limits = Limits::reply();
    limits.max_elements = 5;
    let memo = Arc::new(ReplyMemo::new(Decoder::new(limits)));
    let loader = Loader::new(LoaderConfig::new(vec![A], VERSION), at(secs(0))).with_memo(memo);
    assert!(!loader.memo_shared());
}

#[test]
fn an_unexpected_reply_puts_back_the_state_from_before_the_request() {
    let weird = frame(&Term::atom("weird"));

    // On the connection the request started on, nothing changes.
    let (mut world, conn) = connected();
    world.request(Request::GetCwd);
    world.data(conn, &weird);
    assert_eq!(
        world.replies()[0].1,
        Event::Reply(Err(ReplyError::Unexpected(Term::atom("weird"))))
    );
    assert!(!world.has_event(&Event::Abandoned { conn }));
    assert_eq!(world.loader.poll_timeout(), Some(at(secs(61))));
    world.request(Request::GetCwd);
    assert_eq!(world.sends()[1].1, conn);

    // After a reconnect, the new connection is abandoned and the dead one is back: the next
    // request goes to it and stalls until the reply timeout.
    let (mut world, first) = connected();
    world.request(Request::GetCwd);
    world.closed(first);
    world.run_until(secs(2));
    let second = world.last_conn();
    world.data(second, &weird);
    assert!(world.has_event(&Event::Abandoned { conn: second }));
    world.data(second, &get_ok(b"ignored"));
    assert_eq!(world.replies().len(), 1);
    world.run_until(secs(3));
    world.request(Request::GetCwd);
    assert_eq!(
        world.sends().last().unwrap(),
        &(secs(3), first, world.sends()[0].2.clone())
    );
    world.run_until(secs(64));
    assert_eq!(world.closes(), [(secs(63), first)]);
    assert_eq!(world.connects().len(), 3);
    assert!(!world.closes().iter().any(|&(_, c)| c == second));

    // From no connection at all, the new one is abandoned and there is none again.
    let (mut world, first) = connected();
    world.run_until(secs(70));
    assert_eq!(world.closes(), [(ms(60_500), first)]);
    world.request(Request::GetCwd);
    world.run_until(secs(71));
    let second = world.last_conn();
    world.data(second, &weird);
    assert!(world.has_event(&Event::Abandoned { conn: second }));
    assert_eq!(world.loader.poll_timeout(), None);
}

#[test]
fn a_reply_frame_over_the_configured_limit_fails_the_request() {
    let mut config = LoaderConfig::new(vec![A], VERSION);
    config.max_reply = 16;
    let (mut world, conn) = connected_with(config);
    world.request(Request::Get("/big".into()));
    world.data(conn, &[0, 0, 1, 0]);
    assert_eq!(
        world.replies()[0].1,
        Event::Reply(Err(ReplyError::FrameTooLarge { len: 256, max: 16 }))
    );
    assert_eq!(world.closes(), [(secs(1), conn)]);
    assert!(!world.loader.is_busy());
    assert_eq!(world.loader.poll_timeout(), None);
}

#[test]
fn other_timings_are_followed() {
    let mut config = LoaderConfig::new(vec![A], VERSION);
    config.timings = LoaderTimings {
        collect_window: ms(50),
        sends_per_round: 2,
        short_sleep: secs(1),
        short_sleeps: 1,
        long_sleep: secs(2),
        ..LoaderTimings::otp()
    };
    let mut world = World::with(config);
    world.run_until(ms(3400));
    // Rounds of two queries 50 ms apart: 0, then 1 s after the first round ends, then 2 s.
    assert_eq!(world.query_times(), [0, 50, 1100, 1150, 3200, 3250].map(ms));
}

#[test]
fn an_early_timeout_call_does_nothing() {
    let mut world = World::new(&[A]);
    world.loader.handle_timeout(at(ms(499)));
    world.pump();
    assert_eq!(world.query_times(), [Duration::ZERO]);
    assert_eq!(world.loader.poll_timeout(), Some(at(ms(500))));
}

#[test]
fn a_flood_of_distinct_answers_is_bounded() {
    let mut world = World::new(&[Ipv4Addr::BROADCAST]);
    for port in 0..(MAX_ANSWERS as u16 + 10) {
        world.datagram(udp_from(A), &answer(3, port));
    }
    world.run_until(ms(100));
    world.run_until(secs(2));
    let discovered = world.events.iter().find_map(|(_, e)| match e {
        Event::Discovered { answered, .. } => Some(answered.len()),
        _ => None,
    });
    assert_eq!(discovered, Some(MAX_ANSWERS));
}

// ---------------------------------------------------------------------------------------------
// The restart hang: a server restart inside a `get_modules` call (PROTOCOL.md, "The restart
// hang"), in the order a real OTP 25 boot met it.

const KERNEL: &str = "/otp/lib/kernel-8.5.3/ebin/";
const STDLIB: &str = "/otp/lib/stdlib-4.2/ebin/";

fn enoent() -> Vec<u8> {
    frame(&Term::tuple([
        Term::atom("get"),
        Term::tuple([Term::atom("error"), Term::atom("enoent")]),
    ]))
}

fn request_frame(request: &Request) -> Bytes {
    Bytes::from(encode_term_frame(&request.to_term(), Profile::Otp25).unwrap())
}

fn get(dir: &str, module: &str) -> Request {
    Request::Get(format!("{dir}{module}.beam"))
}

/// The two path tries of a module that lives in stdlib, on whatever connection the loader
/// sends them; returns that connection.
fn fetch_stdlib_module(world: &mut World, module: &str) -> ConnId {
    world.request(get(KERNEL, module));
    let conn = world.sends().last().unwrap().1;
    world.data(conn, &enoent());
    world.request(get(STDLIB, module));
    assert_eq!(
        world.sends().last().unwrap().1,
        conn,
        "one module, one connection"
    );
    world.data(conn, &get_ok(module.as_bytes()));
    conn
}

/// Connected to A:40000; a `get_modules` call fetches error_handler, then sends erl_eval's
/// first path try, and the server dies under it (the request gets an RST). It comes back on
/// A:40001 a second later. The loader rediscovers (three queries unanswered, a 10 s sleep),
/// connects, resends, gets `enoent`, then erl_eval from stdlib. Returns the world at that
/// moment (12.5 s after the RST, t = 14 s), the dead connection and the new one.
fn restart_inside_get_modules(mode: DeadConnection) -> (World, ConnId, ConnId) {
    let mut config = LoaderConfig::new(vec![A], VERSION);
    config.dead_connection = mode;
    let (mut world, first) = connected_with(config);
    world.loader.begin_modules().unwrap();
    world.request(get(KERNEL, "error_handler"));
    world.data(first, &get_ok(b"error_handler"));
    world.request(get(KERNEL, "erl_eval"));
    world.power_off(A);
    world.closed(first);
    world.run_until(secs(2));
    world.serve(A, 40001);
    world.run_until(ms(13_500));
    let second = world.last_conn();
    assert_ne!(second, first);
    world.data(second, &enoent());
    world.request(get(STDLIB, "erl_eval"));
    world.data(second, &get_ok(b"erl_eval"));
    world.run_until(secs(14));
    assert_eq!(world.replies().len(), 3);
    (world, first, second)
}

#[test]
fn otp_mode_sends_the_next_module_on_the_dead_connection_and_waits_60s() {
    let (mut world, first, second) = restart_inside_get_modules(DeadConnection::Kept);
    let discoveries = world.count(&Action::OpenDiscovery);
    world.request(get(KERNEL, "erl_lint"));
    // The next module goes back to the connection the call began with, which died.
    assert_eq!(world.sends().last().unwrap().1, first);
    assert!(world.has_event(&Event::Abandoned { conn: second }));
    assert!(world.has_event(&Event::Stranded { conn: first }));
    assert!(world.loader.is_stranded());
    assert_eq!(world.loader.poll_timeout(), Some(at(secs(74))));
    let actions = world.actions.len();
    world.run_until(ms(73_999));
    assert_eq!(world.actions.len(), actions, "nothing happens for 60 s");
    // Then the reply timeout: a close of the dead connection, a new discovery, a third
    // connection, the module fetched; the second connection is never closed (OTP leaks it).
    world.run_until(ms(74_500));
    assert!(world.has_event(&Event::Resending {
        conn: first,
        reason: ResendReason::ReplyTimeout
    }));
    assert_eq!(world.count(&Action::OpenDiscovery), discoveries + 1);
    let third = world.last_conn();
    assert_ne!(third, second);
    let resent = world.sends().last().unwrap().clone();
    assert_eq!((resent.0, resent.1), (ms(74_500), third));
    assert_eq!(resent.2, request_frame(&get(KERNEL, "erl_lint")));
    assert!(!world.loader.is_stranded());
    world.data(third, &enoent());
    world.request(get(STDLIB, "erl_lint"));
    world.data(third, &get_ok(b"erl_lint"));
    // And the module after that is stranded again.
    world.request(get(KERNEL, "erl_parse"));
    assert_eq!(world.sends().last().unwrap().1, first);
    assert!(world.has_event(&Event::Abandoned { conn: third }));
    assert!(world.loader.is_stranded());
    assert!(!world
        .closes()
        .iter()
        .any(|(_, conn)| *conn == second || *conn == third));
}

#[test]
fn otp_mode_goes_back_to_the_dead_connection_after_the_call_too() {
    let (mut world, first, _) = restart_inside_get_modules(DeadConnection::Kept);
    world.loader.end_modules(world.now).unwrap();
    world.request(Request::ReadFileInfo("/otp/lib".into()));
    assert_eq!(world.sends().last().unwrap().1, first);
    assert!(world.loader.is_stranded());
    // A call that begins on the dead connection strands its first module at once.
    world.run_until(secs(75));
    let third = world.last_conn();
    world.data(third, &get_ok(b"info"));
    world.loader.end_modules(world.now).unwrap();
    assert_eq!(world.sends().last().unwrap().1, third);
    world.loader.begin_modules().unwrap();
    let fourth = fetch_stdlib_module(&mut world, "lists");
    assert_eq!(
        fourth, third,
        "no reconnect in this call: nothing to go back from"
    );
}

#[test]
fn erlboot_mode_sends_the_next_module_on_the_new_connection() {
    let (mut world, first, second) = restart_inside_get_modules(DeadConnection::Forgotten);
    assert_eq!(fetch_stdlib_module(&mut world, "erl_lint"), second);
    assert_eq!(world.sends().last().unwrap().0, secs(14));
    world.loader.end_modules(world.now).unwrap();
    world.request(get(KERNEL, "later"));
    assert_eq!(world.sends().last().unwrap().1, second);
    assert!(!world.loader.is_stranded());
    assert!(!world
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::Stranded { .. } | Event::Abandoned { .. })));
    // error_handler and erl_eval's first try went to the first connection, nothing after.
    let on_first = world.sends().iter().filter(|(_, c, _)| *c == first).count();
    assert_eq!(on_first, 2);
}

#[test]
fn module_calls_are_refused_while_busy_or_starting() {
    let mut world = World::new(&[A]);
    assert_eq!(world.loader.begin_modules(), Err(LoaderError::Starting));
    world.serve(A, 40000);
    world.request(Request::GetCwd);
    assert_eq!(world.loader.begin_modules(), Err(LoaderError::Busy));
    assert_eq!(world.loader.end_modules(world.now), Err(LoaderError::Busy));
}

// ---------------------------------------------------------------------------------------------
// Late events: what partitions and restarts deliver to a loader that has moved on.

/// The answers of the first [`Event::Discovered`] at or after `from`.
fn answered_after(world: &World, from: Duration) -> Vec<Discovered> {
    world
        .events
        .iter()
        .find_map(|(t, e)| match e {
            Event::Discovered { answered, .. } if *t >= from => Some(answered.clone()),
            _ => None,
        })
        .expect("a round with answers")
}

#[test]
fn answers_that_wait_during_a_sleep_are_kept_once_each_newest_first_and_bounded() {
    let mut world = World::new(&[Ipv4Addr::BROADCAST]);
    world.run_until(secs(5));
    world.datagram(udp_from(A), &answer(0, 1000));
    world.datagram(udp_from(B), &answer(0, 2000));
    world.datagram(udp_from(A), &answer(0, 1000));
    world.datagram(udp_from(A), b"garbage");
    world.run_until(secs(20));
    assert_eq!(
        answered_after(&world, secs(11)),
        [server(0, B, 2000), server(0, A, 1000)]
    );

    let mut world = World::new(&[Ipv4Addr::BROADCAST]);
    world.run_until(secs(5));
    for port in 0..(MAX_ANSWERS as u16 + 10) {
        world.datagram(udp_from(A), &answer(3, port));
    }
    world.run_until(secs(20));
    let answered = answered_after(&world, secs(11));
    assert_eq!(answered.len(), MAX_ANSWERS);
    assert_eq!(answered[0], server(3, A, MAX_ANSWERS as u16 - 1));
}

#[test]
fn answers_that_wait_during_a_connect_are_kept_once_each() {
    let mut world = World::new(&[Ipv4Addr::BROADCAST]);
    world.datagram(udp_from(A), &answer(0, 1000));
    world.run_until(secs(2));
    // A's connect hangs; B answers twice meanwhile, and C's flood overflows the mailbox.
    world.datagram(udp_from(B), &answer(0, 2000));
    world.datagram(udp_from(B), &answer(0, 2000));
    for port in 0..MAX_ANSWERS as u16 {
        world.datagram(udp_from(Ipv4Addr::new(10, 0, 0, 3)), &answer(1, port));
    }
    world.run_until(secs(16));
    let answered = answered_after(&world, secs(15));
    assert_eq!(answered.len(), MAX_ANSWERS);
    assert_eq!(
        answered
            .iter()
            .filter(|s| **s == server(0, B, 2000))
            .count(),
        1
    );
    assert_eq!(answered.last(), Some(&server(0, B, 2000)));
}

#[test]
fn a_close_of_an_old_connection_leaves_a_ready_loader_alone() {
    let (mut world, first) = connected();
    world.request(Request::Get("/a".into()));
    world.run_until(secs(62));
    let second = world.last_conn();
    world.data(second, &get_ok(b"a"));
    world.closed(first);
    assert!(!world.has_event(&Event::Lost { conn: first }));
    assert_eq!(world.loader.poll_timeout(), Some(at(secs(122))));
    world.request(Request::Get("/b".into()));
    assert_eq!(world.sends().last().unwrap().1, second);
    assert_eq!(world.count(&Action::OpenDiscovery), 2);
}

#[test]
fn a_connect_that_ends_in_a_close_fails_and_a_close_of_another_connection_does_not() {
    let mut world = World::new(&[Ipv4Addr::BROADCAST]);
    world.datagram(udp_from(A), &answer(0, 1000));
    world.datagram(udp_from(B), &answer(0, 2000));
    world.run_until(secs(1));
    // B (newest) is tried first; its connect hangs.
    let trying = world.last_conn();
    assert_eq!(world.connects()[0].2, SocketAddrV4::new(B, 2000));
    // A close of a connection that is not the one being tried changes nothing.
    world.closed(ConnId(trying.0 + 100));
    assert_eq!(world.connects().len(), 1);
    assert_eq!(world.loader.poll_timeout(), Some(at(ms(15_500))));
    // The one being tried closes: a failed connect, and A is tried at once.
    world.closed(trying);
    assert!(world.has_event(&Event::ConnectFailed {
        conn: trying,
        server: server(0, B, 2000),
        timed_out: false
    }));
    let connects = world.connects();
    assert_eq!(connects.len(), 2);
    assert_eq!(
        (connects[1].0, connects[1].2),
        (ms(1000), SocketAddrV4::new(A, 1000))
    );
}

#[test]
fn otp_mode_keeps_an_idle_connection_the_server_closed_until_the_idle_timeout() {
    let mut config = LoaderConfig::new(vec![A], VERSION);
    config.dead_connection = DeadConnection::Kept;
    let (mut world, first) = connected_with(config.clone());
    world.closed(first);
    assert!(world.has_event(&Event::Lost { conn: first }));
    assert_eq!(world.loader.poll_timeout(), Some(at(ms(60_500))));
    // A request before the idle timeout goes to the dead connection and waits 60 s.
    world.run_until(secs(5));
    world.request(Request::GetCwd);
    assert_eq!(world.sends().last().unwrap().1, first);
    assert!(world.has_event(&Event::Stranded { conn: first }));
    assert!(world.loader.is_stranded());
    world.run_until(ms(64_999));
    assert_eq!(world.connects().len(), 1);
    world.run_until(ms(65_500));
    assert_eq!(world.closes(), [(secs(65), first)]);
    let second = world.last_conn();
    assert_eq!(world.sends().last().unwrap().0, ms(65_500));
    assert_eq!(world.sends().last().unwrap().1, second);
    assert!(!world.loader.is_stranded());

    // After the idle timeout the loader has closed it, and a request rediscovers at once.
    let (mut world, first) = connected_with(config);
    world.closed(first);
    world.run_until(secs(70));
    assert!(world.has_event(&Event::IdleClosed { conn: first }));
    world.request(Request::GetCwd);
    world.run_until(ms(70_500));
    assert_eq!(
        world.sends().last().unwrap(),
        &(
            ms(70_500),
            world.last_conn(),
            request_frame(&Request::GetCwd)
        )
    );
    assert!(!world.has_event(&Event::Stranded { conn: first }));
}

#[test]
fn erlboots_own_loader_passes_a_refusing_server_over_for_one_round_only() {
    let config = LoaderConfig {
        ignored: crate::client::Ignored::OneRound,
        ..LoaderConfig::new(vec![A], "13.1.5")
    };
    let mut world = World::with(config);
    world.answer_from(A, 0, 1000);
    world.listen(SocketAddrV4::new(A, 1000), Listener::Refuse);
    world.datagram(udp_from(A), &answer(0, 1000));
    world.run_until(ms(1200));
    assert_eq!(world.connects().len(), 1);
    // The server comes back on the same address and port: OTP's loader would pass it over for
    // good (see the test above); this one tries it again after one round.
    world.power_off(A);
    world.serve(A, 1000);
    world.run_until(secs(4));
    let connects = world.connects();
    assert_eq!(connects.len(), 2, "{connects:?}");
    assert!(world.has_event(&Event::Connected {
        conn: connects[1].1,
        server: server(0, A, 1000)
    }));
}
