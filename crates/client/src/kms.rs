//! The KMS operations the tools need (JSON 1.1, `TrentService.*`).

use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::{ClientError, Settings, Signer, full, http_client, read_all};

/// A KMS endpoint, signed as one principal.
#[derive(Clone)]
pub struct Kms {
    signer: Signer,
}

/// A data key: plaintext (zeroized) and as wrapped by KMS.
pub struct DataKey {
    pub plaintext: Zeroizing<Vec<u8>>,
    pub ciphertext: Vec<u8>,
    pub key_id: String,
}

fn b64(b: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(b)
}

fn unb64(v: &Value, name: &str) -> Result<Vec<u8>, ClientError> {
    let s = v
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| ClientError::Transport(format!("KMS answer lacks {name}")))?;
    base64_simd::STANDARD
        .decode_to_vec(s)
        .map_err(|_| ClientError::Transport(format!("KMS answered malformed base64 in {name}")))
}

impl Kms {
    pub fn new(s: &Settings) -> Result<Kms, ClientError> {
        Ok(Kms {
            signer: Signer {
                http: http_client(s.ca_bundle.as_deref())?,
                base: s.kms_endpoint.clone(),
                region: s.region.clone(),
                service: "kms",
                creds: s.credentials.clone(),
            },
        })
    }

    async fn call(&self, op: &str, body: Value) -> Result<Value, ClientError> {
        let body = Bytes::from(serde_json::to_vec(&body).map_err(|e| ClientError::Transport(e.to_string()))?);
        let payload = body.clone();
        let headers = vec![
            (http::header::CONTENT_TYPE, "application/x-amz-json-1.1".to_owned()),
            (
                http::HeaderName::from_static("x-amz-target"),
                format!("TrentService.{op}"),
            ),
        ];
        let resp = self
            .signer
            .send(http::Method::POST, "/", headers, full(body), Some(&payload))
            .await?;
        let status = resp.status();
        let (_, bytes) = read_all(resp).await?;
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            let code = v.get("__type").and_then(Value::as_str).unwrap_or("InternalError");
            let code = code.rsplit('#').next().unwrap_or(code).to_owned();
            let message = v
                .get("message")
                .or(v.get("Message"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            return Err(ClientError::Service {
                service: "KMS",
                status: status.as_u16(),
                code,
                message,
            });
        }
        Ok(v)
    }

    /// GenerateDataKey (AES_256) under `key_id`, bound to `context`.
    pub async fn generate_data_key(
        &self,
        key_id: &str,
        context: &BTreeMap<String, String>,
    ) -> Result<DataKey, ClientError> {
        let v = self
            .call(
                "GenerateDataKey",
                json!({"KeyId": key_id, "KeySpec": "AES_256", "EncryptionContext": context}),
            )
            .await?;
        Ok(DataKey {
            plaintext: Zeroizing::new(unb64(&v, "Plaintext")?),
            ciphertext: unb64(&v, "CiphertextBlob")?,
            key_id: v.get("KeyId").and_then(Value::as_str).unwrap_or(key_id).to_owned(),
        })
    }

    /// Decrypt of a wrapped key, bound to `context`; with `key_id`, KMS
    /// refuses a blob of another key (IncorrectKeyException).
    pub async fn decrypt(
        &self,
        blob: &[u8],
        key_id: Option<&str>,
        context: &BTreeMap<String, String>,
    ) -> Result<Zeroizing<Vec<u8>>, ClientError> {
        let mut req = json!({"CiphertextBlob": b64(blob), "EncryptionContext": context});
        if let Some(k) = key_id {
            req["KeyId"] = Value::String(k.to_owned());
        }
        let v = self.call("Decrypt", req).await?;
        Ok(Zeroizing::new(unb64(&v, "Plaintext")?))
    }
}
