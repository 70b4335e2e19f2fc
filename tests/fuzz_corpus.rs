//! The fuzz targets' seed corpora (fuzz/corpus/TARGET/seed-*) run as ordinary tests, through
//! the same checks the fuzz targets run.
//!
//! The seeds are real bytes: frames and datagrams of the recorded OTP boots, and terms made by
//! OTP's `term_to_binary/1`. Regenerate them with
//! `cargo test --test fuzz_corpus -- --ignored write_seed_corpora`.

use erlboot_support::capture;
use erlboot_support::otp;

use std::path::{Path, PathBuf};

use erlboot::fuzz_checks;

type Check = fn(&[u8]);

const TARGETS: [(&str, Check); 6] = [
    ("etf_decode", fuzz_checks::etf_decode),
    ("framing", fuzz_checks::framing),
    ("discovery", fuzz_checks::discovery),
    ("session", fuzz_checks::session),
    ("archive", fuzz_checks::archive),
    ("loader", fuzz_checks::loader),
];

/// A session script (see `fuzz_checks::session`) feeding `bytes` in chunks of `chunk` bytes
/// (at most 200), 1 ms apart.
fn session_script(bytes: &[u8], chunk: usize) -> Vec<u8> {
    bytes
        .chunks(chunk)
        .flat_map(|c| [&[(c.len() - 1) as u8][..], c].concat())
        .collect()
}

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

#[test]
fn seed_corpora_pass_the_checks() {
    for (target, check) in TARGETS {
        let mut seeds = 0;
        for entry in std::fs::read_dir(corpus_dir(target)).unwrap() {
            let path = entry.unwrap().path();
            // Only the committed seeds: a local fuzz run adds (and removes) files here.
            if !path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("seed-")
            {
                continue;
            }
            check(&std::fs::read(&path).unwrap());
            seeds += 1;
        }
        assert!(seeds >= 8, "{target}: only {seeds} seeds");
    }
}

#[test]
#[ignore = "writes the seed corpora; run by hand after recording new captures"]
fn write_seed_corpora() {
    let captures = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let mut etf = Vec::new();
    let mut framing = Vec::new();
    let mut discovery = Vec::new();
    let mut session = Vec::new();
    for name in ["otp25-requests.pcap", "otp27-requests.pcap"] {
        let capture = capture::read(&captures.join(name));
        let stream = &capture.streams[0];
        let requests = &stream.to_server_frames;
        // The boot's first requests, and the session's explicit calls at its end.
        for frame in requests
            .iter()
            .take(12)
            .chain(requests.iter().rev().take(14))
        {
            etf.push(frame.payload.clone());
        }
        for frame in stream
            .to_client_frames
            .iter()
            .filter(|f| f.payload.len() <= 2048)
            .take(40)
        {
            etf.push(frame.payload.clone());
        }
        framing.push([&[255u8][..], &stream.to_server[..4000]].concat());
        framing.push([&[3u8][..], &stream.to_server[..200]].concat());
        framing.push([&[64u8][..], &stream.to_client[..3000]].concat());
        discovery.extend(capture.datagrams.iter().map(|d| d.payload.clone()));
        session.push(session_script(&stream.to_server[..4000], 200));
        session.push(session_script(&stream.to_server[..600], 7));
        let end = stream.to_server.len();
        session.push(session_script(&stream.to_server[end - 3000..], 150));
    }
    // Bad frames between good ones, a partial frame left to time out, silence past the idle
    // timeout, and a 4 GiB length prefix.
    let get_cwd = [
        0, 0, 0, 11, 131, 100, 0, 7, b'g', b'e', b't', b'_', b'c', b'w', b'd',
    ];
    let garbage = [0, 0, 0, 3, 1, 2, 3, 0, 0, 0, 0];
    session.extend([
        [session_script(&garbage, 11), session_script(&get_cwd, 15)].concat(),
        [session_script(&get_cwd[..6], 6), vec![205, 205, 205]].concat(),
        [
            session_script(&get_cwd, 15),
            vec![255, 255, 255],
            session_script(&get_cwd, 15),
        ]
        .concat(),
        session_script(&[255, 255, 255, 255, 131], 5),
    ]);
    let otp = otp::Otp::system();
    let (host, inside, script) = otp.oracle();
    let out = inside.join("generated");
    otp.escript(&script, &["generate", out.to_str().unwrap(), "200", "7"]);
    let generated = otp::read_records(&std::fs::read(host.join("generated")).unwrap());
    etf.extend(generated.into_iter().filter(|t| t.len() <= 1024).take(120));
    // A 4 GiB length prefix, an empty frame, and a partial frame.
    framing.extend([
        vec![255, 0xFF, 0xFF, 0xFF, 0xFF],
        vec![1, 0, 0, 0, 0],
        vec![200, 0, 0, 0, 5, 131],
    ]);
    discovery.extend([
        b"EBOOTR".to_vec(),
        b"EBOOTQ".to_vec(),
        b"EBOOTR\x07\x01".to_vec(),
        vec![],
    ]);
    for (target, mut seeds) in [
        ("etf_decode", etf),
        ("framing", framing),
        ("discovery", discovery),
        ("session", session),
    ] {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        seeds.sort_unstable();
        seeds.dedup();
        for (i, seed) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:03}")), seed).unwrap();
        }
    }
}

/// Loader scripts (see `fuzz_checks::loader`): a boot's happy path, silence, a server that
/// refuses TCP, a reply timeout, garbage datagrams, an unexpected reply after a reconnect,
/// a second request and partial frames, an idle close, a long mixed run, and a get_modules
/// call cut by a restart, under OTP's model and erlboot's.
fn loader_seeds() -> Vec<Vec<u8>> {
    const TICK: u8 = 0; // + n: n × 100 ms
    const DEADLINE: u8 = 1 << 5;
    const ANSWER: u8 = 2 << 5; // + server 0..3, + 4 for priority 1
    const RAW: u8 = (2 << 5) | 16; // then a length byte and the bytes
    const CONNECTED: u8 = 3 << 5; // + connection index
    const FAILED: u8 = 4 << 5;
    const CLOSED: u8 = 5 << 5;
    const DATA: u8 = 6 << 5; // + 8 × connection index + reply
    const REQUEST: u8 = 7 << 5; // + request
    let boot = [
        ANSWER,
        TICK + 5,
        CONNECTED,
        REQUEST,
        DATA,
        REQUEST + 1,
        DATA + 1,
    ];
    let mut seeds = vec![
        boot.to_vec(),
        vec![DEADLINE; 40],
        [
            &[ANSWER, TICK + 5, FAILED, ANSWER, TICK + 5][..],
            &[DEADLINE; 8],
            &[ANSWER + 1, TICK + 5, CONNECTED + 1],
        ]
        .concat(),
        [
            &boot[..],
            &[
                REQUEST + 2,
                DEADLINE,
                ANSWER,
                TICK + 5,
                CONNECTED + 1,
                DATA + 8 + 2,
            ],
        ]
        .concat(),
        [
            &[RAW, 5][..],
            b"hello",
            &[RAW, 9],
            b"EBOOTR\x00\x01\x02",
            &[RAW, 0, TICK + 4, RAW, 6],
            b"EBOOTR",
            &[DEADLINE, DEADLINE, CONNECTED],
        ]
        .concat(),
        [
            &boot[..],
            &[
                REQUEST + 3,
                CLOSED,
                ANSWER,
                TICK + 5,
                CONNECTED + 1,
                DATA + 8 + 4,
            ],
            &[
                DATA + 8,
                REQUEST,
                DEADLINE,
                DEADLINE,
                ANSWER,
                DEADLINE,
                CONNECTED + 2,
            ],
        ]
        .concat(),
        [
            &[
                ANSWER + 4,
                ANSWER + 5,
                DEADLINE,
                DEADLINE,
                DEADLINE,
                DEADLINE,
            ][..],
            &[
                CONNECTED,
                REQUEST,
                REQUEST + 1,
                DATA + 6,
                DATA + 7,
                DATA + 5,
                DATA + 3,
            ],
        ]
        .concat(),
        [
            &boot[..],
            &[
                DEADLINE,
                DEADLINE,
                REQUEST,
                ANSWER + 2,
                TICK + 5,
                CONNECTED + 1,
            ],
        ]
        .concat(),
    ];
    // A long run mixing everything, from a fixed linear congruential sequence.
    let mut x: u32 = 2_463_534_242;
    let mixed: Vec<u8> = (0..600)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect();
    seeds.push(mixed.clone());
    // A get_modules call cut by a restart: the server closes, the module is resent on a new
    // connection, and the next one goes where OTP 25's model still looks.
    const BEGIN_MODULES: u8 = REQUEST + 28;
    const END_MODULES: u8 = REQUEST + 29;
    let cut_call = [
        &boot[..],
        &[BEGIN_MODULES, REQUEST, CLOSED, DEADLINE, ANSWER, TICK + 5],
        &[CONNECTED + 1, DATA + 8, REQUEST, DEADLINE, DEADLINE, ANSWER],
        &[TICK + 5, CONNECTED + 2, DATA + 16, END_MODULES, REQUEST],
    ]
    .concat();
    // The first byte picks the model: 0 is OTP's, as every seed above was written for; 1
    // keeps dead connections, 2 ignores failed servers for one round only.
    let mut out: Vec<Vec<u8>> = seeds.into_iter().map(|s| [&[0][..], &s].concat()).collect();
    for model in [1, 3] {
        out.push([&[model][..], &cut_call].concat());
        out.push([&[model][..], &mixed].concat());
    }
    out.push([&[2][..], &cut_call].concat());
    out
}

#[test]
#[ignore = "writes the loader's seed corpus"]
fn write_loader_seed_corpus() {
    let dir = corpus_dir("loader");
    std::fs::create_dir_all(&dir).unwrap();
    for (i, seed) in loader_seeds().iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:03}")), seed).unwrap();
    }
}
