//! Hostile input gets a typed error, and the memory a decode takes stays within its limits,
//! whatever the input claims. A counting allocator measures the peak bytes allocated by the
//! calling thread while each decode runs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::BytesMut;
use erlboot::etf::{self, DecodeError, Decoder, Limits, Profile, Term};
use erlboot::proto::frame::{FrameDecoder, FrameError};
use erlboot::proto::Request;

struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn track(grow: usize, shrink: usize) {
    // `try_with`: the allocator also runs while thread-locals are being torn down.
    let _ = LIVE.try_with(|live| {
        let now = live.get().saturating_sub(shrink) + grow;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        track(layout.size(), 0);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        track(0, layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        track(new_size, layout.size());
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the peak bytes it had allocated at any one time.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    (out, PEAK.with(Cell::get) - base)
}

const UNLIMITED: Limits = Limits {
    max_depth: 128,
    max_elements: usize::MAX,
    max_total_bytes: usize::MAX,
};

fn decode_with(limits: Limits, input: &[u8]) -> (Result<Term, DecodeError>, usize) {
    peak_during(|| Decoder::new(limits).decode(input))
}

#[test]
fn a_list_header_claiming_four_billion_elements() {
    let input = [131, 108, 0xFF, 0xFF, 0xFF, 0xFF, 106];
    let (result, peak) = decode_with(Limits::default(), &input);
    assert!(
        matches!(
            result,
            Err(DecodeError::TooManyElements {
                count: 4294967295,
                ..
            })
        ),
        "{result:?}"
    );
    assert_eq!(peak, 0);
    // Even with no element limit, the claim is checked against the bytes present.
    let (result, peak) = decode_with(UNLIMITED, &input);
    assert!(
        matches!(result, Err(DecodeError::Truncated { .. })),
        "{result:?}"
    );
    assert_eq!(peak, 0);
}

#[test]
fn a_cut_binary_says_how_many_bytes_are_missing() {
    // A 10-byte binary with 3 of its bytes: 7 more were needed past the input's 9 bytes.
    let input = [131, 109, 0, 0, 0, 10, 1, 2, 3];
    let expected = Err(DecodeError::Truncated {
        offset: 9,
        needed: 7,
    });
    assert_eq!(etf::decode(&input), expected);
    let shared = bytes::Bytes::copy_from_slice(&input);
    assert_eq!(
        etf::Decoder::default()
            .decode_prefix_shared(&shared)
            .map(|(term, _)| term),
        expected
    );
}

#[test]
fn length_fields_never_allocate_ahead_of_the_bytes() {
    let cases: [&[u8]; 7] = [
        &[131, 109, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3], // 4 GiB binary
        &[131, 111, 0xFF, 0xFF, 0xFF, 0xFF, 0, 1, 2], // 4 GiB bignum
        &[131, 107, 0xFF, 0xFF, b'a'],                // 65535-byte string
        &[131, 116, 0x7F, 0xFF, 0xFF, 0xFF, 106, 106], // 2^31 map pairs
        &[131, 105, 0xFF, 0xFF, 0xFF, 0xFF, 106],     // 4-billion tuple
        &[131, 77, 0xFF, 0xFF, 0xFF, 0xFF, 3, 1],     // 4 GiB bitstring
        &[131, 100, 0xFF, 0xFF, b'a'],                // 65535-byte atom
    ];
    for input in cases {
        let (result, peak) = decode_with(UNLIMITED, input);
        assert!(
            matches!(result, Err(DecodeError::Truncated { .. })),
            "{input:?}: {result:?}"
        );
        assert_eq!(peak, 0, "{input:?}");
    }
}

#[test]
fn a_hundred_thousand_nested_tuples() {
    let mut input = vec![131];
    for _ in 0..100_000 {
        input.extend_from_slice(&[104, 1]);
    }
    input.push(106);
    let (result, peak) = decode_with(Limits::default(), &input);
    assert!(
        matches!(result, Err(DecodeError::TooDeep { limit: 128, .. })),
        "{result:?}"
    );
    assert!(peak < 64 << 10, "peak {peak} bytes");
    let (result, _) = decode_with(Limits::request(), &input);
    assert!(
        matches!(result, Err(DecodeError::TooDeep { limit: 32, .. })),
        "{result:?}"
    );
}

#[test]
fn the_total_budget_bounds_memory_for_inputs_that_are_all_there() {
    // A list of a million `[]`: 1 MB of input that would take some 40 MB decoded.
    let n = 1_000_000u32;
    let mut input = vec![131, 108];
    input.extend_from_slice(&n.to_be_bytes());
    input.resize(input.len() + n as usize + 1, 106);
    let tight = Limits {
        max_total_bytes: 1 << 20,
        ..UNLIMITED
    };
    let (result, peak) = decode_with(tight, &input);
    assert!(
        matches!(result, Err(DecodeError::TooLarge { .. })),
        "{result:?}"
    );
    assert_eq!(peak, 0, "refused before reserving anything");

    let roomy = Limits {
        max_total_bytes: 128 << 20,
        ..UNLIMITED
    };
    let (result, peak) = decode_with(roomy, &input);
    assert_eq!(
        result.unwrap(),
        Term::List(vec![Term::List(vec![]); n as usize])
    );
    assert!(peak <= roomy.max_total_bytes, "peak {peak} over the limit");
    let held = n as usize * std::mem::size_of::<Term>();
    assert!(
        peak >= held,
        "the counter sees the {held} bytes the list holds (peak {peak})"
    );

    // Requests from clients get tight limits by default.
    let (result, _) = decode_with(Limits::request(), &input);
    assert!(result.is_err());
}

#[test]
fn a_four_gib_frame_length_is_refused_without_buffering() {
    let decoder = FrameDecoder::new(64 << 20);
    let (result, peak) = peak_during(|| {
        let mut buf = BytesMut::with_capacity(16);
        buf.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 131]);
        decoder.decode(&mut buf)
    });
    assert_eq!(
        result,
        Err(FrameError::TooLarge {
            len: u32::MAX,
            max: 64 << 20
        })
    );
    assert!(peak <= 64, "peak {peak} bytes");
}

#[test]
fn refused_tags_are_typed() {
    for (input, tag) in [
        (&[131, 68, 0][..], 68),            // distribution header
        (&[131, 82, 0][..], 82),            // atom cache reference
        (&[131, 112, 0, 0, 0, 0][..], 112), // closure
    ] {
        assert!(
            matches!(etf::decode(input), Err(DecodeError::Unsupported { tag: t, .. }) if t == tag),
            "{input:?}"
        );
    }
    assert!(matches!(
        etf::decode(&[131, 200]),
        Err(DecodeError::UnknownTag {
            tag: 200,
            offset: 1
        })
    ));
    assert_eq!(etf::decode(&[]), Err(DecodeError::Empty));
    assert_eq!(etf::decode(&[130, 106]), Err(DecodeError::BadVersion(130)));
    assert_eq!(
        etf::decode(&[131, 106, 0]),
        Err(DecodeError::TrailingBytes {
            offset: 2,
            count: 1
        })
    );
}

#[test]
fn content_otp_refuses_is_refused() {
    let invalid = |input: &[u8]| matches!(etf::decode(input), Err(DecodeError::Invalid { .. }));
    assert!(invalid(&[131, 119, 2, 0xC3, 0x28]), "bad UTF-8 in an atom");
    let mut long_atom = vec![131, 100, 1, 0];
    long_atom.extend([b'a'; 256]);
    assert!(invalid(&long_atom), "an atom of 256 characters");
    let mut nan = vec![131, 70];
    nan.extend(f64::NAN.to_bits().to_be_bytes());
    assert!(invalid(&nan), "NaN");
    assert!(invalid(&[131, 77, 0, 0, 0, 1, 9, 0]), "9 bits in a byte");
    assert!(
        invalid(&[131, 90, 0, 6, 100, 0, 1, b'a', 0, 0, 0, 0]),
        "a 6-word reference"
    );
    // Each of these was checked to be refused by OTP 25's binary_to_term/1.
    let float = |text: &[u8]| {
        let mut bytes = vec![131, 99];
        bytes.extend_from_slice(text);
        bytes.resize(2 + 31, 0);
        bytes
    };
    for text in [
        &b"1"[..],
        b"1e5",
        b".5",
        b"5.",
        b" 1.5",
        b"1.5 ",
        b"\t1.5",
        b"1.5e",
        b"--1.5",
    ] {
        assert!(
            invalid(&float(text)),
            "FLOAT_EXT {:?}",
            String::from_utf8_lossy(text)
        );
    }
    let mut unterminated = vec![131, 99];
    unterminated.extend([b'1'; 31]);
    assert!(invalid(&unterminated), "FLOAT_EXT without a NUL");
    assert!(
        invalid(&[131, 103, 100, 0, 1, b'n', 0, 0, 0, 1, 0, 0, 0, 2, 4]),
        "PID_EXT creation 4"
    );
    assert!(
        invalid(&[131, 102, 100, 0, 1, b'n', 0, 0, 0, 1, 4]),
        "PORT_EXT creation 4"
    );
    let duplicate = [
        131, 116, 0, 0, 0, 2, 100, 0, 1, 97, 97, 1, 100, 0, 1, 97, 97, 2,
    ];
    assert!(invalid(&duplicate), "a map with a duplicate key");
    // The same key in two encodings is still the same key.
    let duplicate = [131, 116, 0, 0, 0, 2, 97, 5, 106, 110, 1, 0, 5, 106];
    assert!(invalid(&duplicate), "5 and SMALL_BIG 5 as keys");
}

#[test]
fn long_chains_of_list_tails_are_one_list() {
    // `[1 | [1 | [1 | ...]]]` written as 100,000 one-element LIST_EXTs, each the tail of the
    // one before: OTP reads that as a flat list, and so must a decoder with a depth limit.
    let n = 100_000;
    let mut input = vec![131];
    for _ in 0..n {
        input.extend_from_slice(&[108, 0, 0, 0, 1, 97, 1]);
    }
    input.extend_from_slice(&[107, 0, 2, 7, 8]);
    let mut expected = vec![Term::Int(1); n];
    expected.extend([Term::Int(7), Term::Int(8)]);
    assert_eq!(etf::decode(&input).unwrap(), Term::List(expected));
    // Each link is charged against the budget like any element.
    let (result, _) = decode_with(
        Limits {
            max_total_bytes: 1 << 20,
            ..UNLIMITED
        },
        &input,
    );
    assert!(
        matches!(result, Err(DecodeError::TooLarge { .. })),
        "{result:?}"
    );
}

#[test]
fn non_canonical_encodings_decode_to_canonical_terms() {
    // SMALL_BIG for a small value, LIST_EXT of bytes, a list tail that is a list.
    assert_eq!(etf::decode(&[131, 110, 2, 0, 5, 0]).unwrap(), Term::Int(5));
    assert_eq!(etf::decode(&[131, 110, 1, 1, 0]).unwrap(), Term::Int(0));
    let string = etf::decode(&[131, 108, 0, 0, 0, 1, 97, 104, 107, 0, 1, 105]).unwrap();
    assert_eq!(string, Term::string("hi"));
    assert_eq!(
        etf::encode(&string, Profile::Otp25).unwrap(),
        [131, 107, 0, 2, 104, 105]
    );
    // A bitstring of 8 bits in its last byte is a binary; unused bits are cleared.
    assert_eq!(
        etf::decode(&[131, 77, 0, 0, 0, 1, 8, 7]).unwrap(),
        Term::binary(vec![7])
    );
    assert_eq!(
        etf::decode(&[131, 77, 0, 0, 0, 1, 3, 0xFF]).unwrap(),
        Term::BitBinary {
            bytes: vec![0xE0].into(),
            last_bits: 3
        }
    );
}

#[test]
fn a_request_frame_with_hostile_content_is_typed() {
    let decoder = Decoder::new(Limits::request());
    let mut deep = vec![131, 104, 2, 100, 0, 3, b'g', b'e', b't'];
    deep.extend(std::iter::repeat_n([108, 0, 0, 0, 1], 1000).flatten());
    assert!(matches!(
        Request::decode(&deep, &decoder),
        Err(DecodeError::TooDeep { .. })
    ));
}

/// `term_to_binary(T, [compressed])`: 131, 80, the inflated size, a zlib stream.
fn compressed(inner: &[u8], claimed: u32) -> Vec<u8> {
    let mut out = vec![131, 80];
    out.extend_from_slice(&claimed.to_be_bytes());
    out.extend_from_slice(&miniz_oxide::deflate::compress_to_vec_zlib(inner, 6));
    out
}

#[test]
fn compressed_terms_decode_as_otp_reads_them_and_lie_to_no_allocation() {
    // {get,"/x"} without its version byte, as OTP compresses it.
    let inner = [104, 2, 100, 0, 3, 103, 101, 116, 107, 0, 2, 47, 120];
    let term = etf::decode(&compressed(&inner, inner.len() as u32)).unwrap();
    assert_eq!(term.to_string(), r#"{get,"/x"}"#);
    // A size that is not the inflated size, or a stream that is not zlib: invalid.
    for input in [
        compressed(&inner, inner.len() as u32 + 1),
        compressed(&inner, inner.len() as u32 - 1),
        vec![131, 80, 0, 0, 0, 13, 1, 2, 3],
        compressed(&[inner.as_slice(), &[106]].concat(), inner.len() as u32 + 1),
    ] {
        assert!(
            matches!(etf::decode(&input), Err(DecodeError::Invalid { .. })),
            "{input:?}"
        );
    }
    // A claimed size over the limit is refused before anything is inflated: a bomb of
    // 512 MiB of zeros claims 4 GiB.
    let decoder = etf::Decoder::new(etf::Limits::request());
    let bomb = compressed(&[0u8; 1 << 16], u32::MAX);
    let (result, peak) = peak_during(|| decoder.decode(&bomb));
    assert!(
        matches!(result, Err(DecodeError::TooLarge { .. })),
        "{result:?}"
    );
    assert!(peak <= 64, "peak {peak} bytes");
    assert!(matches!(
        etf::decode(&[131, 80, 0, 0]),
        Err(DecodeError::Truncated { .. })
    ));
}
