#![no_main]
//! Fuzz target: see `erlboot::fuzz_checks::loader` for the properties checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| erlboot::fuzz_checks::loader(data));
