//! XML request bodies (PutBucketLifecycleConfiguration, PutBucketCors,
//! DeleteObjects, CompleteMultipartUpload, ...) are untrusted input parsed
//! by s3s before any handler runs, and some of them are stored in the form
//! s3s serializes and parsed again later (the lifecycle configuration the
//! background worker applies). Property: whatever parses serializes to a
//! document that parses back to the same value; a configuration never
//! changes meaning between the request that set it and the worker that
//! reads it.
//!
//! Input: first byte picks the body type, the rest is the document.

use s3s::dto::*;
use s3s::xml::{Deserialize, Deserializer, Serialize, Serializer};

fn round_trip<T>(xml: &[u8])
where
    T: for<'x> Deserialize<'x> + Serialize + PartialEq + std::fmt::Debug,
{
    let mut d = Deserializer::new(xml);
    let Ok(first) = T::deserialize(&mut d) else { return };
    if d.expect_eof().is_err() {
        return;
    }
    let mut out = Vec::new();
    first
        .serialize(&mut Serializer::new(&mut out))
        .expect("a parsed body serializes");
    let mut d = Deserializer::new(&out);
    let again = T::deserialize(&mut d).unwrap_or_else(|e| {
        panic!(
            "serialized body does not parse: {e:?}\n{}",
            String::from_utf8_lossy(&out)
        )
    });
    assert_eq!(
        first,
        again,
        "round trip changed the value\n{}",
        String::from_utf8_lossy(&out)
    );
}

/// One case.
pub fn run(data: &[u8]) {
    let Some((&pick, xml)) = data.split_first() else { return };
    match pick % 16 {
        0 => round_trip::<BucketLifecycleConfiguration>(xml),
        1 => round_trip::<CORSConfiguration>(xml),
        2 => round_trip::<WebsiteConfiguration>(xml),
        3 => round_trip::<Tagging>(xml),
        4 => round_trip::<Delete>(xml),
        5 => {
            // The ETags a client sends in a completion are only compared
            // with ours, never stored or written out again; s3s writes an
            // ETag that is not one quoted token (`"abc+`, control bytes) in
            // a form it does not read back (found here). Parsing is what is
            // fuzzed for this body.
            let mut d = Deserializer::new(xml);
            let _ = CompletedMultipartUpload::deserialize(&mut d);
        }
        6 => round_trip::<VersioningConfiguration>(xml),
        7 => round_trip::<ObjectLockConfiguration>(xml),
        8 => round_trip::<ServerSideEncryptionConfiguration>(xml),
        9 => round_trip::<BucketLoggingStatus>(xml),
        10 => round_trip::<PublicAccessBlockConfiguration>(xml),
        11 => round_trip::<ObjectLockRetention>(xml),
        12 => round_trip::<ObjectLockLegalHold>(xml),
        13 => round_trip::<OwnershipControls>(xml),
        14 => round_trip::<AccessControlPolicy>(xml),
        _ => round_trip::<CreateBucketConfiguration>(xml),
    }
}
