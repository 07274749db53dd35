//! The fuzz targets' code, one module a target, in one library: the
//! server, s3s and the crates are compiled (and their generics
//! instantiated) once, and each binary in `fuzz_targets/` only links it.
//! Every target checks a property, not only that nothing panics
//! (docs/fuzzing.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod aws_chunked;
pub mod cse_envelope;
pub mod differential_request;
pub mod front;
pub mod iam_query;
pub mod kms_json;
pub mod policy_parse;
pub mod post_policy;
pub mod ranges;
pub mod sigv2;
pub mod sigv4_authorization;
pub mod sse_envelope;
pub mod xml_bodies;
