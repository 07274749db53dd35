//! `sse_envelope`: see `src/sse_envelope.rs` (docs/fuzzing.md) for the input and its property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strongroom_fuzz::sse_envelope::run(data));
