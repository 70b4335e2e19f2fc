//! Differential tests against the real thing: erlboot's encoder and decoder against
//! `term_to_binary/1` and `binary_to_term/1` of a running OTP.
//!
//! - OTP 25 (the system `erl`) is the oracle for `Profile::Otp25`;
//! - OTP 27 (a Debian chroot, see `.ci/install-otp`) is the oracle for `Profile::Otp26`.

#[path = "support/otp.rs"]
mod otp;
#[path = "support/terms.rs"]
mod terms;

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

/// Our encoding of every generated term goes through the oracle's `binary_to_term/1` and
/// `term_to_binary/1`: it must be accepted, and come back byte-identical.
fn ours_equal_theirs(otp: Otp, profile: Profile) {
    let terms = generated_terms();
    let ours: Vec<Vec<u8>> = terms
        .iter()
        .map(|t| etf::encode(t, profile).unwrap())
        .collect();
    let (host, inside, script) = otp.oracle();
    std::fs::write(host.join("in"), otp::write_records(&ours)).unwrap();
    let (i, o) = (inside.join("in"), inside.join("out"));
    otp.escript(
        &script,
        &["roundtrip", i.to_str().unwrap(), o.to_str().unwrap()],
    );
    let answers = std::fs::read(host.join("out")).unwrap();
    let mut rest = &answers[..];
    let mut mismatches = Vec::new();
    for (term, ours) in terms.iter().zip(&ours) {
        let status = rest[0];
        let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
        let theirs = &rest[5..5 + len];
        rest = &rest[5 + len..];
        if status != 0 {
            mismatches.push(format!(
                "refused {}: {}",
                short(term),
                String::from_utf8_lossy(theirs)
            ));
        } else if theirs != ours.as_slice() {
            let at = ours
                .iter()
                .zip(theirs)
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            mismatches.push(format!(
                "{}\n  first difference at byte {at}: ours {:?}, theirs {:?}",
                short(term),
                &ours[at..ours.len().min(at + 16)],
                &theirs[at..theirs.len().min(at + 16)]
            ));
        }
    }
    assert!(rest.is_empty(), "one answer per record");
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
    std::fs::remove_dir_all(host).unwrap();
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
