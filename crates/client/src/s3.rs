//! The S3 operations the tools need, path-style.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{HeaderName, Method, StatusCode};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::{Body, ClientError, Settings, Signer, full, http_client, read_all, s3_error};

/// What SigV4 leaves unencoded in a path: unreserved characters and `/`.
const PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');
/// ... and in a query value: unreserved characters only.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// `/bucket/key`, encoded as SigV4 canonicalizes it.
pub fn s3_key_path(bucket: &str, key: &str) -> String {
    format!(
        "/{}/{}",
        utf8_percent_encode(bucket, PATH),
        utf8_percent_encode(key, PATH)
    )
}

fn query(pairs: &[(&str, &str)]) -> String {
    let mut q: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", utf8_percent_encode(k, QUERY), utf8_percent_encode(v, QUERY)))
        .collect();
    q.sort();
    if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    }
}

/// An object's metadata as HEAD or GET answers it.
#[derive(Debug, Clone, Default)]
pub struct ObjectHead {
    pub content_length: u64,
    pub etag: String,
    /// User metadata, names without `x-amz-meta-`, lower case.
    pub metadata: BTreeMap<String, String>,
    pub content_type: Option<String>,
    /// The answer's status (200, or 206 for a range).
    pub status: u16,
    pub content_range: Option<String>,
}

impl ObjectHead {
    fn of(parts: &http::response::Parts) -> ObjectHead {
        let h = &parts.headers;
        let s = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let metadata = h
            .iter()
            .filter_map(|(k, v)| {
                let name = k.as_str().strip_prefix("x-amz-meta-")?;
                Some((name.to_owned(), v.to_str().ok()?.to_owned()))
            })
            .collect();
        ObjectHead {
            content_length: s("content-length").and_then(|v| v.parse().ok()).unwrap_or(0),
            etag: s("etag").unwrap_or_default(),
            metadata,
            content_type: s("content-type"),
            status: parts.status.as_u16(),
            content_range: s("content-range"),
        }
    }
}

/// A listed object.
#[derive(Debug, Clone)]
pub struct Listed {
    pub key: String,
    pub size: u64,
}

/// An S3 endpoint, signed as one principal.
#[derive(Clone)]
pub struct S3 {
    signer: Signer,
}

impl S3 {
    pub fn new(s: &Settings) -> Result<S3, ClientError> {
        Ok(S3 {
            signer: Signer {
                http: http_client(s.ca_bundle.as_deref())?,
                base: s.s3_endpoint.clone(),
                region: s.region.clone(),
                service: "s3",
                creds: s.credentials.clone(),
            },
        })
    }

    async fn call(
        &self,
        method: Method,
        path: String,
        headers: Vec<(HeaderName, String)>,
        body: Body,
        payload: Option<&[u8]>,
    ) -> Result<http::Response<hyper::body::Incoming>, ClientError> {
        let resp = self.signer.send(method, &path, headers, body, payload).await?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let (_, body) = read_all(resp).await?;
        Err(s3_error(status, &body))
    }

    /// PUT of a streamed body of `len` bytes with user metadata.
    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Body,
        len: u64,
        metadata: &BTreeMap<String, String>,
    ) -> Result<String, ClientError> {
        let mut headers = meta_headers(metadata)?;
        headers.push((http::header::CONTENT_LENGTH, len.to_string()));
        let resp = self
            .call(Method::PUT, s3_key_path(bucket, key), headers, body, None)
            .await?;
        Ok(ObjectHead::of(&resp.into_parts().0).etag)
    }

    /// PUT of small bytes (signed payload).
    pub async fn put_bytes(
        &self,
        bucket: &str,
        key: &str,
        bytes: Bytes,
        metadata: &BTreeMap<String, String>,
    ) -> Result<String, ClientError> {
        let mut headers = meta_headers(metadata)?;
        headers.push((http::header::CONTENT_LENGTH, bytes.len().to_string()));
        let payload = bytes.clone();
        let resp = self
            .call(
                Method::PUT,
                s3_key_path(bucket, key),
                headers,
                full(bytes),
                Some(&payload),
            )
            .await?;
        Ok(ObjectHead::of(&resp.into_parts().0).etag)
    }

    pub async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectHead, ClientError> {
        let resp = self
            .signer
            .send(
                Method::HEAD,
                &s3_key_path(bucket, key),
                vec![],
                full(Bytes::new()),
                Some(b""),
            )
            .await?;
        let status = resp.status();
        if !status.is_success() {
            let code = match status {
                StatusCode::NOT_FOUND => "NoSuchKey",
                StatusCode::FORBIDDEN => "AccessDenied",
                _ => "Error",
            };
            return Err(ClientError::Service {
                service: "S3",
                status: status.as_u16(),
                code: code.into(),
                message: String::new(),
            });
        }
        Ok(ObjectHead::of(&resp.into_parts().0))
    }

    /// GET, optionally of a byte range; the body streams.
    pub async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        range: Option<&str>,
    ) -> Result<(ObjectHead, hyper::body::Incoming), ClientError> {
        let headers = range
            .map(|r| vec![(http::header::RANGE, r.to_owned())])
            .unwrap_or_default();
        let resp = self
            .call(
                Method::GET,
                s3_key_path(bucket, key),
                headers,
                full(Bytes::new()),
                Some(b""),
            )
            .await?;
        let (parts, body) = resp.into_parts();
        Ok((ObjectHead::of(&parts), body))
    }

    /// GET of a small object, whole.
    pub async fn get_bytes(&self, bucket: &str, key: &str) -> Result<(ObjectHead, Bytes), ClientError> {
        let resp = self
            .call(
                Method::GET,
                s3_key_path(bucket, key),
                vec![],
                full(Bytes::new()),
                Some(b""),
            )
            .await?;
        let (parts, body) = read_all(resp).await?;
        Ok((ObjectHead::of(&parts), body))
    }

    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), ClientError> {
        self.call(
            Method::DELETE,
            s3_key_path(bucket, key),
            vec![],
            full(Bytes::new()),
            Some(b""),
        )
        .await?;
        Ok(())
    }

    pub async fn create_multipart(
        &self,
        bucket: &str,
        key: &str,
        metadata: &BTreeMap<String, String>,
    ) -> Result<String, ClientError> {
        let path = format!("{}?uploads=", s3_key_path(bucket, key));
        let resp = self
            .call(
                Method::POST,
                path,
                meta_headers(metadata)?,
                full(Bytes::new()),
                Some(b""),
            )
            .await?;
        let (_, body) = read_all(resp).await?;
        xml_field(&body, "UploadId").ok_or_else(|| ClientError::Transport("CreateMultipartUpload: no UploadId".into()))
    }

    pub async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: u32,
        body: Body,
        len: u64,
    ) -> Result<String, ClientError> {
        let n = number.to_string();
        let path = format!(
            "{}{}",
            s3_key_path(bucket, key),
            query(&[("partNumber", &n), ("uploadId", upload_id)])
        );
        let resp = self
            .call(
                Method::PUT,
                path,
                vec![(http::header::CONTENT_LENGTH, len.to_string())],
                body,
                None,
            )
            .await?;
        Ok(ObjectHead::of(&resp.into_parts().0).etag)
    }

    pub async fn complete_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        etags: &[String],
    ) -> Result<String, ClientError> {
        let mut doc = String::from("<CompleteMultipartUpload>");
        for (i, e) in etags.iter().enumerate() {
            doc.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
                i + 1,
                quick_xml::escape::escape(e.as_str())
            ));
        }
        doc.push_str("</CompleteMultipartUpload>");
        let path = format!("{}{}", s3_key_path(bucket, key), query(&[("uploadId", upload_id)]));
        let bytes = Bytes::from(doc);
        let payload = bytes.clone();
        let resp = self
            .call(Method::POST, path, vec![], full(bytes), Some(&payload))
            .await?;
        let (_, body) = read_all(resp).await?;
        // a 200 may still carry an error document
        if xml_field(&body, "Code").is_some() && xml_field(&body, "ETag").is_none() {
            return Err(s3_error(500, &body));
        }
        Ok(xml_field(&body, "ETag").unwrap_or_default())
    }

    pub async fn abort_multipart(&self, bucket: &str, key: &str, upload_id: &str) -> Result<(), ClientError> {
        let path = format!("{}{}", s3_key_path(bucket, key), query(&[("uploadId", upload_id)]));
        self.call(Method::DELETE, path, vec![], full(Bytes::new()), Some(b""))
            .await?;
        Ok(())
    }

    /// Every key under `prefix` (ListObjectsV2, all pages).
    pub async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<Listed>, ClientError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q = vec![("list-type", "2"), ("prefix", prefix)];
            if let Some(t) = token.as_deref() {
                q.push(("continuation-token", t));
            }
            let path = format!("/{}{}", utf8_percent_encode(bucket, PATH), query(&q));
            let resp = self
                .call(Method::GET, path, vec![], full(Bytes::new()), Some(b""))
                .await?;
            let (_, body) = read_all(resp).await?;
            let mut reader = quick_xml::Reader::from_reader(&body[..]);
            let mut path: Vec<String> = Vec::new();
            let mut key = None;
            let mut next = None;
            let mut buf = Vec::new();
            loop {
                use quick_xml::events::Event;
                match reader.read_event_into(&mut buf) {
                    Ok(Event::Start(e)) => path.push(String::from_utf8_lossy(e.name().as_ref()).into_owned()),
                    Ok(Event::End(_)) => {
                        path.pop();
                    }
                    Ok(Event::Text(t)) => {
                        let v = t
                            .decode()
                            .ok()
                            .and_then(|d| quick_xml::escape::unescape(&d).ok().map(|c| c.into_owned()))
                            .unwrap_or_default();
                        match path.iter().map(String::as_str).collect::<Vec<_>>()[..] {
                            [_, "Contents", "Key"] => key = Some(v),
                            [_, "Contents", "Size"] => {
                                if let Some(k) = key.take() {
                                    out.push(Listed {
                                        key: k,
                                        size: v.parse().unwrap_or(0),
                                    });
                                }
                            }
                            [_, "NextContinuationToken"] => next = Some(v),
                            _ => {}
                        }
                    }
                    Ok(Event::Eof) => break,
                    Err(e) => return Err(ClientError::Transport(format!("ListObjectsV2 answer: {e}"))),
                    _ => {}
                }
                buf.clear();
            }
            match next {
                Some(n) => token = Some(n),
                None => return Ok(out),
            }
        }
    }
}

fn meta_headers(m: &BTreeMap<String, String>) -> Result<Vec<(HeaderName, String)>, ClientError> {
    m.iter()
        .map(|(k, v)| {
            let name = HeaderName::try_from(format!("x-amz-meta-{k}"))
                .map_err(|_| ClientError::Config(format!("metadata name {k:?} is not a header name")))?;
            Ok((name, v.clone()))
        })
        .collect()
}

fn xml_field(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let (_, rest) = text.split_once(&format!("<{name}>"))?;
    let (v, _) = rest.split_once(&format!("</{name}>"))?;
    Some(quick_xml::escape::unescape(v).map_or_else(|_| v.to_owned(), |c| c.into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_encoded_as_sigv4_canonicalizes_them() {
        assert_eq!(s3_key_path("b", "a b/c+d~e%"), "/b/a%20b/c%2Bd~e%25");
        assert_eq!(
            query(&[("uploadId", "x/y="), ("partNumber", "2")]),
            "?partNumber=2&uploadId=x%2Fy%3D"
        );
    }
}
