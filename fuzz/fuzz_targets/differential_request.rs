//! `differential_request`: see `src/differential_request.rs` (docs/fuzzing.md) for the input and its property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strongroom_fuzz::differential_request::run(data));
