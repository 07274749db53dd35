//! S3 authorization: one reading of a request, one decision.
//!
//! The front door reads a raw request's authentication once
//! ([`envelope::examine`]) and refuses anything that two readers could
//! read differently; s3s verifies the signature and parses the operation;
//! the decision ([`hook::S3Authorization`]) is taken on s3s's typed input
//! ([`ask`]), through one exhaustive operation → action table ([`table`]),
//! with the caller's identity policies, the bucket policy and Block Public
//! Access ([`config`]) evaluated by `iam`'s policy engine. What was decided
//! travels to the handler as an [`Authorized`] proof that only this crate
//! creates. Every missing or unreadable fact denies.
//!
//! Dependencies point one way: this crate speaks s3s and calls `iam` for
//! principals and policy evaluation; `iam` knows nothing of S3 requests.
#![forbid(unsafe_code)]

pub mod ask;
pub mod config;
mod context;
mod decide;
pub mod envelope;
mod hook;
mod secrets;
pub mod sigv2;
pub mod table;

pub use config::{PAB_CONFIG, POLICY_CONFIG, PublicAccessBlock};
pub use decide::{Authorized, Grant};
pub use envelope::{AuthFacts, MAX_PRESIGN_SECS, Mechanism, Refusal, Rules};
pub use hook::S3Authorization;
#[cfg(feature = "observe")]
pub use hook::{Observer, S3sReading};
pub use secrets::SecretLookup;
