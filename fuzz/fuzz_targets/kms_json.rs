//! `kms_json`: see `src/kms_json.rs` (docs/fuzzing.md) for the input and its property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strongroom_fuzz::kms_json::run(data));
