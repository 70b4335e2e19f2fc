//! Codec benchmarks on real frames from captures/otp25-boot.pcap: one `{get,{ok,Binary}}` reply
//! (lists.beam), one `{get,Path}` request, and the whole boot's transcript.

use erlboot_support::capture;

use std::path::Path;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use erlboot::etf::{Decoder, Limits, Profile};
use erlboot::proto::{frame, Reply, Request};

fn boot() -> capture::TcpStream {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/otp25-boot.pcap");
    capture::read(&path).streams.remove(0)
}

fn codec(c: &mut Criterion) {
    let stream = boot();
    let requests = Decoder::new(Limits::request());
    let replies = Decoder::new(Limits::reply());
    let pairs: Vec<(&[u8], &[u8])> = stream
        .to_server_frames
        .iter()
        .zip(&stream.to_client_frames)
        .map(|(q, r)| (q.payload.as_slice(), r.payload.as_slice()))
        .collect();
    let (request_bytes, reply_bytes) = *pairs
        .iter()
        .find(|(q, r)| {
            let q = Request::decode(q, &requests).unwrap();
            matches!(&q, Request::Get(p) if p.ends_with("/lists.beam"))
                && matches!(Reply::decode(r, &replies).unwrap(), Reply::Get(Ok(_)))
        })
        .expect("the boot loads lists.beam");
    let request = Request::decode(request_bytes, &requests).unwrap();
    let reply = Reply::decode(reply_bytes, &replies).unwrap();

    let mut group = c.benchmark_group("get_reply");
    group.throughput(Throughput::Bytes(reply_bytes.len() as u64));
    group.bench_function("decode", |b| {
        b.iter(|| Reply::decode(black_box(reply_bytes), &replies).unwrap())
    });
    group.bench_function("encode_frame", |b| {
        b.iter(|| frame::encode_term_frame(&black_box(&reply).to_term(), Profile::Otp25).unwrap())
    });
    group.finish();

    let mut group = c.benchmark_group("get_request");
    group.throughput(Throughput::Bytes(request_bytes.len() as u64));
    group.bench_function("decode", |b| {
        b.iter(|| Request::decode(black_box(request_bytes), &requests).unwrap())
    });
    group.bench_function("encode_frame", |b| {
        b.iter(|| frame::encode_term_frame(&black_box(&request).to_term(), Profile::Otp25).unwrap())
    });
    group.finish();

    // What one boot costs the codec on each side: every request decoded and every reply
    // encoded (server), every request encoded and every reply decoded (client).
    let typed: Vec<(Request, Reply)> = pairs
        .iter()
        .map(|(q, r)| {
            (
                Request::decode(q, &requests).unwrap(),
                Reply::decode(r, &replies).unwrap(),
            )
        })
        .collect();
    let total: usize = pairs.iter().map(|(q, r)| q.len() + r.len()).sum();
    let mut group = c.benchmark_group("boot_transcript");
    group.throughput(Throughput::Bytes(total as u64));
    group.bench_function("server_side", |b| {
        b.iter(|| {
            for ((q, _), (_, reply)) in pairs.iter().zip(&typed) {
                black_box(Request::decode(q, &requests).unwrap());
                black_box(frame::encode_term_frame(&reply.to_term(), Profile::Otp25).unwrap());
            }
        })
    });
    group.bench_function("client_side", |b| {
        b.iter(|| {
            for ((_, r), (request, _)) in pairs.iter().zip(&typed) {
                black_box(frame::encode_term_frame(&request.to_term(), Profile::Otp25).unwrap());
                black_box(Reply::decode(r, &replies).unwrap());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
