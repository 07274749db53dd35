//! `xml_bodies`: see `src/xml_bodies.rs` (docs/fuzzing.md) for the input and its property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strongroom_fuzz::xml_bodies::run(data));
