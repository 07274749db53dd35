//! `post_policy`: see `src/post_policy.rs` (docs/fuzzing.md) for the input and its property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strongroom_fuzz::post_policy::run(data));
