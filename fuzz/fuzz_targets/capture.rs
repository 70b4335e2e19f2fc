#![no_main]
//! Fuzz target: see `erlboot_conformance::fuzz_checks::capture` for the properties checked
//! (arbitrary bytes as a capture file, and arbitrary segment sequences for the reassembler).

libfuzzer_sys::fuzz_target!(|data: &[u8]| erlboot_conformance::fuzz_checks::capture(data));
