//! A client of an external AWS-KMS-compatible endpoint (AWS KMS itself, or
//! any service speaking its JSON 1.1 API): S3 encryption asks it for data
//! keys instead of the built-in KMS. Requests are SigV4-signed with the
//! operator's credentials; every use is still counted and audited locally.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use strongroom_crypt::Key;
use zeroize::Zeroizing;

use crate::{Caller, Context, DataKey, KeyService, KmsError, Ledger};

/// Where and as whom to call the external KMS.
pub struct RemoteSettings {
    /// e.g. `https://kms.eu-west-1.amazonaws.com` or `http://127.0.0.1:5000`.
    pub endpoint: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: Zeroizing<String>,
    /// Key used when a request names none (AWS's default is `alias/aws/s3`).
    pub default_key: String,
}

pub struct RemoteKms {
    s: RemoteSettings,
    uri: http::Uri,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    ledger: Ledger,
}

fn b64(b: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(b)
}

fn map_error(code: &str, msg: String) -> KmsError {
    // `__type` may carry a namespace prefix: "com.amazonaws.kms#NotFoundException"
    match code.rsplit('#').next().unwrap_or(code) {
        "NotFoundException" => KmsError::NotFound(msg),
        "DisabledException" => KmsError::Disabled(msg),
        "KMSInvalidStateException" => KmsError::InvalidState(msg),
        "InvalidCiphertextException" => KmsError::InvalidCiphertext(msg),
        "IncorrectKeyException" => KmsError::IncorrectKey(msg),
        "AccessDeniedException" => KmsError::AccessDenied(msg),
        "ThrottlingException" | "LimitExceededException" => KmsError::Throttled(msg),
        "ValidationException" => KmsError::Validation(msg),
        "InvalidArnException" => KmsError::InvalidArn(msg),
        other => KmsError::Internal(format!("external KMS answered {other}: {msg}")),
    }
}

/// Refuses (at start-up, as a `Validation` error whose text reaches the
/// operator) an endpoint that would carry data keys in the clear off this
/// machine: GenerateDataKey and Decrypt answer with plaintext keys, so
/// plain `http://` is only for a KMS on a loopback address (a test
/// double, or a local proxy that adds TLS).
fn check_endpoint(uri: &http::Uri) -> Result<(), KmsError> {
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") => {
            let host = uri.host().unwrap_or_default();
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host.eq_ignore_ascii_case("localhost")
                || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(())
            } else {
                Err(KmsError::Validation(format!(
                    "KMS endpoint {uri}: plain http:// would carry data keys in the clear; use https:// \
                     (http:// is accepted only for a loopback address)"
                )))
            }
        }
        _ => Err(KmsError::Validation(format!("KMS endpoint {uri}: needs https://"))),
    }
}

impl RemoteKms {
    pub fn new(s: RemoteSettings, ledger: Ledger) -> Result<RemoteKms, KmsError> {
        let uri: http::Uri = s
            .endpoint
            .parse()
            .map_err(|e| KmsError::Validation(format!("KMS endpoint {}: {e}", s.endpoint)))?;
        check_endpoint(&uri)?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| KmsError::Internal(format!("loading root certificates: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(https);
        Ok(RemoteKms { s, uri, client, ledger })
    }

    async fn call(&self, op: &str, body: Value) -> Result<Value, KmsError> {
        let body = serde_json::to_vec(&body).map_err(|e| KmsError::Internal(e.to_string()))?;
        let now = time::OffsetDateTime::now_utc();
        let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
        let amz_date = now.format(&fmt).map_err(|e| KmsError::Internal(e.to_string()))?;
        let host = self
            .uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .ok_or_else(|| KmsError::Internal("KMS endpoint has no host".into()))?;
        let target = format!("TrentService.{op}");
        let payload_hash = hex_simd::encode_to_string(
            ring::digest::digest(&ring::digest::SHA256, &body).as_ref(),
            hex_simd::AsciiCase::Lower,
        );
        let headers = vec![
            ("content-type".to_owned(), "application/x-amz-json-1.1".to_owned()),
            ("host".to_owned(), host.clone()),
            ("x-amz-date".to_owned(), amz_date.clone()),
            ("x-amz-target".to_owned(), target.clone()),
        ];
        let input = strongroom_iam::sigv4::SigningInput {
            method: "POST",
            path: "/",
            query: Vec::new(),
            headers: headers.clone(),
            payload_hash: &payload_hash,
            amz_date: &amz_date,
            region: &self.s.region,
            service: "kms",
        };
        let sig = strongroom_iam::sigv4::signature(&input, &self.s.secret_key);
        let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={}/{}/{}/kms/aws4_request, SignedHeaders={}, Signature={sig}",
            self.s.access_key,
            &amz_date[..8],
            self.s.region,
            signed.join(";")
        );
        let req = http::Request::post(self.uri.clone())
            .header("content-type", "application/x-amz-json-1.1")
            .header("host", host)
            .header("x-amz-date", amz_date)
            .header("x-amz-target", target)
            .header("authorization", auth)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| KmsError::Internal(e.to_string()))?;
        let resp = tokio::time::timeout(std::time::Duration::from_secs(30), self.client.request(req))
            .await
            .map_err(|_| KmsError::Internal("external KMS timed out".into()))?
            .map_err(|e| KmsError::Internal(format!("external KMS unreachable: {e}")))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| KmsError::Internal(e.to_string()))?
            .to_bytes();
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            let code = v.get("__type").and_then(Value::as_str).unwrap_or("InternalError");
            let msg = v
                .get("message")
                .or(v.get("Message"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            return Err(map_error(code, msg));
        }
        Ok(v)
    }

    fn key_of<'a>(&'a self, key_id: Option<&'a str>) -> &'a str {
        key_id.unwrap_or(&self.s.default_key)
    }
}

fn field<'a>(v: &'a Value, name: &str) -> Result<&'a str, KmsError> {
    v.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| KmsError::Internal(format!("external KMS answer lacks {name}")))
}

fn decode(s: &str) -> Result<Zeroizing<Vec<u8>>, KmsError> {
    base64_simd::STANDARD
        .decode_to_vec(s)
        .map(Zeroizing::new)
        .map_err(|_| KmsError::Internal("external KMS answered malformed base64".into()))
}

#[async_trait::async_trait]
impl KeyService for RemoteKms {
    async fn generate_data_key(
        &self,
        caller: &Caller,
        key_id: Option<&str>,
        context: &Context,
    ) -> Result<DataKey, KmsError> {
        let key = self.key_of(key_id);
        let res = async {
            let v = self
                .call(
                    "GenerateDataKey",
                    json!({"KeyId": key, "KeySpec": "AES_256", "EncryptionContext": context}),
                )
                .await?;
            let plain = decode(field(&v, "Plaintext")?)?;
            Ok(DataKey {
                key_arn: field(&v, "KeyId")?.to_owned(),
                plaintext: Key::from_slice(&plain).ok_or_else(|| {
                    KmsError::Internal("external KMS answered a data key that is not 256 bits".into())
                })?,
                ciphertext: decode(field(&v, "CiphertextBlob")?)?.to_vec(),
            })
        }
        .await;
        let arn = res.as_ref().map_or(key.to_owned(), |d| d.key_arn.clone());
        let unit = res.as_ref().map(|_| ()).map_err(Clone::clone);
        self.ledger
            .record(caller, "GenerateDataKey", Some(&arn), Some(context), &unit)
            .await?;
        res
    }

    async fn decrypt(&self, caller: &Caller, ciphertext: &[u8], context: &Context) -> Result<(String, Key), KmsError> {
        let res = async {
            let v = self
                .call(
                    "Decrypt",
                    json!({"CiphertextBlob": b64(ciphertext), "EncryptionContext": context}),
                )
                .await?;
            let plain = decode(field(&v, "Plaintext")?)?;
            let k = Key::from_slice(&plain)
                .ok_or_else(|| KmsError::Internal("external KMS answered a data key that is not 256 bits".into()))?;
            Ok((field(&v, "KeyId")?.to_owned(), k))
        }
        .await;
        let arn = res.as_ref().ok().map(|(a, _)| a.clone());
        let unit = res.as_ref().map(|_| ()).map_err(Clone::clone);
        self.ledger
            .record(caller, "Decrypt", arn.as_deref(), Some(context), &unit)
            .await?;
        res
    }

    async fn resolve(&self, _caller: &Caller, key_id: Option<&str>) -> Result<String, KmsError> {
        let v = self.call("DescribeKey", json!({"KeyId": self.key_of(key_id)})).await?;
        let m = v
            .get("KeyMetadata")
            .ok_or_else(|| KmsError::Internal("external KMS answer lacks KeyMetadata".into()))?;
        let arn = field(m, "Arn")?.to_owned();
        match m.get("KeyState").and_then(Value::as_str) {
            Some("Enabled") | None => Ok(arn),
            Some("Disabled") => Err(KmsError::Disabled(format!("{arn} is disabled."))),
            Some(_) => Err(KmsError::InvalidState(format!("{arn} is pending deletion."))),
        }
    }

    fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The external KMS is called with the operator's credentials, so it
    /// cannot judge the caller: the caller's identity policies are checked
    /// here, and the key's state is asked of the external KMS (DescribeKey).
    async fn authorize_use(
        &self,
        caller: &Caller,
        key_arn: &str,
        action: &str,
        context: &Context,
    ) -> Result<(), KmsError> {
        let keys = crate::policy::kms_keys(&caller.account_id, caller.via_service.as_deref(), context, None);
        if caller.identity_decision(action, key_arn, &keys) != crate::Decision::Allow {
            return Err(KmsError::AccessDenied(format!(
                "User: {} is not authorized to perform: {action} on resource: {key_arn}",
                caller.arn
            )));
        }
        self.resolve(caller, Some(key_arn)).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::check_endpoint;

    #[test]
    fn data_keys_never_cross_the_network_in_the_clear() {
        for ok in [
            "https://kms.eu-west-1.amazonaws.com",
            "https://10.0.0.5:8443",
            "http://127.0.0.1:5000",
            "http://127.8.9.10:5000",
            "http://[::1]:5000",
            "http://localhost:5000",
        ] {
            assert!(check_endpoint(&ok.parse().unwrap()).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.5:5000",
            "http://kms.example.com",
            "http://localhost.example.com:5000",
            "http://[::ffff:10.0.0.5]:5000",
            "http://0.0.0.0:5000",
            "ftp://127.0.0.1/",
            "127.0.0.1:5000",
        ] {
            assert!(check_endpoint(&bad.parse().unwrap()).is_err(), "{bad}");
        }
    }
}
