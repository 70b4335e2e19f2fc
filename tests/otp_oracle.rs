//! Differential tests against the real thing: erlboot's encoder and decoder against
//! `term_to_binary/1` and `binary_to_term/1` of a running OTP.
//!
//! - OTP 25 (the system `erl`) is the oracle for `Profile::Otp25`;
//! - OTP 27 (a Debian chroot, see `.ci/install-otp`) is the oracle for `Profile::Otp26`.

use erlboot_support::otp;
use erlboot_support::terms;

use erlboot::etf::{self, Profile, Term};
use otp::Otp;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;

const GENERATED: usize = 4000;

/// Terms from the strategies, the same on every run.
fn generated_terms() -> Vec<Term> {
    let mut runner = TestRunner::deterministic();
    let strategy = terms::term();
    (0..GENERATED)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

/// A term's text, cut short for failure messages.
fn short(term: &Term) -> String {
    let text = term.to_string();
    match text.char_indices().nth(300) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text,
    }
}

/// Sends each encoded term through the oracle's `binary_to_term/1` and `term_to_binary/1`:
/// its bytes back, or why it refused them.
fn through_oracle(otp: &Otp, inputs: &[Vec<u8>]) -> Vec<Result<Vec<u8>, String>> {
    let (host, inside, script) = otp.oracle();
    std::fs::write(host.join("in"), otp::write_records(inputs)).unwrap();
    let (i, o) = (inside.join("in"), inside.join("out"));
    otp.escript(
        &script,
        &["roundtrip", i.to_str().unwrap(), o.to_str().unwrap()],
    );
    let answers = std::fs::read(host.join("out")).unwrap();
    std::fs::remove_dir_all(host).unwrap();
    let mut rest = &answers[..];
    let mut out = Vec::with_capacity(inputs.len());
    while !rest.is_empty() {
        let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
        let body = rest[5..5 + len].to_vec();
        out.push(match rest[0] {
            0 => Ok(body),
            _ => Err(String::from_utf8_lossy(&body).into_owned()),
        });
        rest = &rest[5 + len..];
    }
    assert_eq!(out.len(), inputs.len(), "one answer per record");
    out
}

/// Our encoding of every generated term goes through the oracle's `binary_to_term/1` and
/// `term_to_binary/1`: it must be accepted, and come back byte-identical.
fn ours_equal_theirs(otp: Otp, profile: Profile) {
    let terms = generated_terms();
    let ours: Vec<Vec<u8>> = terms
        .iter()
        .map(|t| etf::encode(t, profile).unwrap())
        .collect();
    let mut mismatches = Vec::new();
    for ((term, ours), theirs) in terms.iter().zip(&ours).zip(through_oracle(&otp, &ours)) {
        match theirs {
            Err(why) => mismatches.push(format!("refused {}: {why}", short(term))),
            Ok(theirs) if &theirs != ours => {
                let at = ours
                    .iter()
                    .zip(&theirs)
                    .position(|(a, b)| a != b)
                    .unwrap_or(0);
                mismatches.push(format!(
                    "{}\n  first difference at byte {at}: ours {:?}, theirs {:?}",
                    short(term),
                    &ours[at..ours.len().min(at + 16)],
                    &theirs[at..theirs.len().min(at + 16)]
                ));
            }
            Ok(_) => {}
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} terms differ:\n{}",
        mismatches.len(),
        terms.len(),
        mismatches
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Terms made by the oracle itself (pids, references, ports, funs, large maps, every integer
/// size, atoms and strings beyond Latin-1) decode, and re-encode to the oracle's bytes.
fn theirs_decode_and_reencode(otp: Otp, profile: Profile) {
    let (host, inside, script) = otp.oracle();
    let out = inside.join("generated");
    otp.escript(&script, &["generate", out.to_str().unwrap(), "3000", "42"]);
    let records = otp::read_records(&std::fs::read(host.join("generated")).unwrap());
    assert!(records.len() > 3000, "the oracle wrote its terms");
    for bytes in &records {
        let term = etf::decode(bytes)
            .unwrap_or_else(|e| panic!("{e} decoding {:?}", &bytes[..bytes.len().min(64)]));
        let again = etf::encode(&term, profile).unwrap();
        if &again != bytes {
            let at = again
                .iter()
                .zip(bytes)
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            panic!(
                "re-encoding {} differs at byte {at}: ours {:?}, theirs {:?}",
                short(&term),
                &again[at..again.len().min(at + 16)],
                &bytes[at..bytes.len().min(at + 16)]
            );
        }
    }
    std::fs::remove_dir_all(host).unwrap();
}

#[test]
fn otp25_accepts_and_reproduces_our_encoding() {
    let otp = Otp::system();
    assert_eq!(otp.versions().0, "25", "the system OTP is the Otp25 oracle");
    ours_equal_theirs(otp, Profile::Otp25);
}

#[test]
fn otp25_terms_decode_and_reencode() {
    theirs_decode_and_reencode(Otp::system(), Profile::Otp25);
}

#[test]
fn otp27_accepts_and_reproduces_our_encoding() {
    let otp = Otp::otp27();
    assert_eq!(otp.versions().0, "27");
    ours_equal_theirs(otp, Profile::Otp26);
}

#[test]
fn otp27_terms_decode_and_reencode() {
    theirs_decode_and_reencode(Otp::otp27(), Profile::Otp26);
}

/// Tags OTP reads but no longer writes by default: erlboot must read them as OTP does, which
/// shows in OTP re-encoding what it read to the bytes erlboot re-encodes.
#[test]
fn legacy_tags_decode_as_otp_reads_them() {
    let node = |name: &str| [&[100, 0, name.len() as u8][..], name.as_bytes()].concat();
    let mut float_text = b"1.50000000000000000000e+00".to_vec();
    float_text.resize(31, 0);
    let mut comma_float = b"1,5e+00".to_vec();
    comma_float.resize(31, 0);
    let inputs: Vec<Vec<u8>> = vec![
        [&[131, 99][..], &float_text].concat(), // FLOAT_EXT
        [&[131, 103][..], &node("a@b"), &[0, 0, 0, 7, 0, 0, 0, 1, 2]].concat(), // PID_EXT
        [&[131, 102][..], &node("a@b"), &[0, 0, 0, 9, 3]].concat(), // PORT_EXT
        [
            &[131, 120][..],
            &node("a@b"),
            &[0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 3],
        ]
        .concat(), // V4_PORT_EXT
        [
            &[131, 114, 0, 3][..],
            &node("a@b"),
            &[1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3],
        ]
        .concat(), // NEW_REFERENCE_EXT
        vec![131, 115, 3, b'a', b'b', b'c'],    // SMALL_ATOM_EXT
        vec![131, 118, 0, 2, 0xC3, 0xA9],       // ATOM_UTF8_EXT
        vec![131, 105, 0, 0, 0, 2, 97, 1, 97, 2], // LARGE_TUPLE_EXT, 2 elements
        vec![131, 111, 0, 0, 0, 2, 0, 1, 0],    // LARGE_BIG_EXT, value 1
        vec![131, 108, 0, 0, 0, 1, 97, 1, 107, 0, 2, 2, 3], // a list tail that is a string
        vec![131, 77, 0, 0, 0, 0, 0],           // an empty bitstring
        vec![131, 108, 0, 0, 0, 0, 97, 1],      // [|1] is 1
        vec![131, 108, 0, 0, 0, 1, 97, 1, 108, 0, 0, 0, 0, 97, 2], // [1|[|2]] is [1|2]
        [&[131, 99][..], &comma_float].concat(), // FLOAT_EXT "1,5e+00"
        [&[131, 113][..], &node("m"), &node("f"), &[98, 0, 0, 0, 2]].concat(), // arity as INTEGER_EXT
        [&[131, 90, 0, 0][..], &node("a@b"), &[0, 0, 0, 9]].concat(), // a reference of 0 words
        [&[131, 103][..], &node("a@b"), &[0, 0, 0, 7, 0, 0, 0, 1, 3]].concat(), // PID_EXT creation 3
    ];
    let otp = Otp::system();
    for (input, theirs) in inputs.iter().zip(through_oracle(&otp, &inputs)) {
        let theirs = theirs.unwrap_or_else(|why| panic!("OTP refused {input:?}: {why}"));
        let term = etf::decode(input).unwrap_or_else(|e| panic!("{e}: {input:?}"));
        assert_eq!(
            etf::encode(&term, Profile::Otp25).unwrap(),
            theirs,
            "{term} from {input:?}"
        );
    }
}
