//! Session benchmarks: a whole captured OTP 25 boot (captures/otp25-boot.pcap) answered by the
//! sans-IO session, from the disk source (jailed, cached: the real server's path) and from an
//! in-memory tree holding the same replies (the cost of the protocol alone).

use erlboot_support::capture;

use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use erlboot::disk::{DiskConfig, DiskSource, Jail, NameEncoding};
use erlboot::server::{FileSource, MemorySource, Session, SessionConfig};
use erlboot::time::Instant;

fn boot_frames() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/otp25-boot.pcap");
    capture::read(&path).streams.remove(0).to_server
}

/// Answers every request of the boot; returns the reply bytes.
fn answer<S: FileSource + ?Sized>(source: &Arc<S>, input: &[u8]) -> usize {
    let mut session = Session::new(SessionConfig::default(), Instant::ZERO);
    session.handle_data(Instant::ZERO, input);
    std::iter::from_fn(|| session.poll_transmit_from(&**source))
        .map(|t| t.len())
        .sum()
}

fn boot(c: &mut Criterion) {
    let input = boot_frames();
    let cwd = std::env::temp_dir();
    let disk = Arc::new(DiskSource::new(DiskConfig {
        jail: Jail::new([Path::new("/usr/lib/erlang").to_owned(), cwd.clone()]).unwrap(),
        cwd: cwd.clone(),
        encoding: NameEncoding::Utf8,
        cache_bytes: 256 << 20,
        watch: false,
    }));
    let sent = answer(&disk, &input);
    // The same tree in memory: every file the boot fetched, at the same path.
    let mut tree = MemorySource::new(cwd.to_str().unwrap());
    let mut session = Session::new(SessionConfig::default(), Instant::ZERO);
    session.handle_data(Instant::ZERO, &input);
    while session.poll_transmit_from(&*disk).is_some() {}
    while let Some(served) = session.poll_served() {
        if let (Some(name), None) = (&served.name, &served.error) {
            if let Ok(contents) = disk.get(name) {
                tree = tree.with_file(name, contents);
            }
        }
    }
    let memory = Arc::new(tree);

    let mut group = c.benchmark_group("boot");
    group.throughput(Throughput::Bytes(sent as u64));
    group.bench_function("disk_source", |b| b.iter(|| answer(&disk, &input)));
    group.bench_function("memory_source", |b| b.iter(|| answer(&memory, &input)));
    group.finish();
}

criterion_group!(benches, boot);
criterion_main!(benches);
