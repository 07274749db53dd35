//! `policy_parse`: see `src/policy_parse.rs` (docs/fuzzing.md) for the input and its property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strongroom_fuzz::policy_parse::run(data));
