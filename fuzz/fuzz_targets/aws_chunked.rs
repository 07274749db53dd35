//! `aws_chunked`: see `src/aws_chunked.rs` (docs/fuzzing.md) for the input and its property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strongroom_fuzz::aws_chunked::run(data));
