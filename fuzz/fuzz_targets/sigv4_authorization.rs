//! `sigv4_authorization`: see `src/sigv4_authorization.rs` (docs/fuzzing.md) for the input and its property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strongroom_fuzz::sigv4_authorization::run(data));
