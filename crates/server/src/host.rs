//! Virtual-hosted-style addressing: `<bucket>.<domain>[:port]` names the
//! bucket; the domain itself, an IP address or any other host means
//! path-style. (s3s's SingleDomain compares the Host header with its port
//! and treats unknown hosts as CNAME buckets; neither suits us.)

use s3s::S3Result;
use s3s::host::{S3Host, VirtualHost};

/// The base domain of virtual-hosted-style requests.
#[derive(Debug)]
pub struct BaseDomain {
    domain: String,
}

impl BaseDomain {
    pub fn new(domain: &str) -> BaseDomain {
        BaseDomain {
            domain: domain.trim_end_matches('.').to_ascii_lowercase(),
        }
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split(']').next().map_or(host, |h| h.trim_start_matches('['));
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

impl S3Host for BaseDomain {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        let name = strip_port(host).trim_end_matches('.');
        let bucket = name
            .len()
            .checked_sub(self.domain.len() + 1)
            .filter(|&cut| {
                name.get(cut + 1..)
                    .is_some_and(|d| d.eq_ignore_ascii_case(&self.domain))
            })
            .filter(|&cut| name.as_bytes().get(cut) == Some(&b'.'))
            .and_then(|cut| name.get(..cut));
        let vh = VirtualHost::new(self.domain.as_str());
        Ok(match bucket {
            Some(b) if !b.is_empty() => vh.with_bucket(b.to_ascii_lowercase()),
            _ => vh,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_come_only_from_subdomains_of_the_base() {
        let d = BaseDomain::new("s3.local");
        assert_eq!(
            d.parse_host_header("photos.s3.local:9000")
                .ok()
                .and_then(|v| v.bucket().map(str::to_owned)),
            Some("photos".into())
        );
        assert_eq!(
            d.parse_host_header("a.b.s3.local")
                .ok()
                .and_then(|v| v.bucket().map(str::to_owned)),
            Some("a.b".into())
        );
        for host in [
            "s3.local:9000",
            "s3.local",
            "other.example:9000",
            "xs3.local",
            "127.0.0.1:9000",
            "[::1]:9000",
        ] {
            assert!(
                d.parse_host_header(host).ok().is_some_and(|v| v.bucket().is_none()),
                "{host}"
            );
        }
    }
}
