//! The s3s service the front door runs: Strongroom's S3 implementation
//! behind signature verification with the identities' secrets, the access
//! layer's decision on every operation, and the body limits. One builder,
//! used by `serve`, the in-process benchmark servers and the fuzz targets
//! that drive whole requests, so each runs the same request path.

use std::sync::Arc;

use s3s::service::S3ServiceBuilder;
use strongroom_access::{S3Authorization, SecretLookup};
use strongroom_iam::Identities;
use strongroom_s3::Strongroom;
use strongroom_store::Store;

/// Request bodies s3s buffers (XML documents): larger ones are refused
/// (by the front door first, with AWS's error).
const XML_MAX: usize = crate::DOCUMENT_MAX as usize;
/// POST-object uploads are buffered by s3s, so they are kept small.
const POST_MAX: u64 = 16 * 1024 * 1024;

/// The s3s service over the S3 implementation: signatures verified with
/// the identities' secrets, every operation decided by the access layer,
/// body limits, virtual hosts.
pub fn s3_service(
    s3: Strongroom,
    ids: &Identities,
    store: &Store,
    region: &str,
    domain: Option<&str>,
) -> s3s::service::S3Service {
    let access = S3Authorization::new(ids.clone(), store.clone(), region.to_owned());
    let route = strongroom_s3::sse::EncryptionRoute::new(s3.clone(), access.clone());
    let mut b = S3ServiceBuilder::new(s3);
    b.set_auth(SecretLookup(ids.clone()));
    b.set_access(access);
    b.set_route(route);
    let mut cfg = s3s::config::S3Config::default();
    cfg.xml_max_body_size = XML_MAX;
    cfg.post_object_max_file_size = POST_MAX;
    b.set_config(Arc::new(s3s::config::StaticConfigProvider::new(Arc::new(cfg))));
    if let Some(d) = domain {
        b.set_host(crate::BaseDomain::new(d));
    }
    b.build()
}
