//! `cse_envelope`: see `src/cse_envelope.rs` (docs/fuzzing.md) for the input and its property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strongroom_fuzz::cse_envelope::run(data));
