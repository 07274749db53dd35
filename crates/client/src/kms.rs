//! The KMS operations the tools need (JSON 1.1, `TrentService.*`).

use std::collections::BTreeMap;

use bytes::Bytes;
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::{ClientError, SMALL_ANSWER_MAX, Settings, Signer, full, http_client};

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

/// A KMS answer that carries a plaintext key: every copy is zeroized.
#[derive(Deserialize)]
struct KeyAnswer {
    #[serde(rename = "Plaintext")]
    plaintext: Zeroizing<String>,
    #[serde(rename = "CiphertextBlob", default)]
    ciphertext: Option<String>,
    #[serde(rename = "KeyId", default)]
    key_id: Option<String>,
}

fn unb64(s: &str, name: &str) -> Result<Zeroizing<Vec<u8>>, ClientError> {
    base64_simd::STANDARD
        .decode_to_vec(s)
        .map(Zeroizing::new)
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

    /// Calls `op`; the answer body (which may hold a plaintext key) is
    /// returned zeroizing.
    async fn call(&self, op: &str, body: Value) -> Result<Zeroizing<Vec<u8>>, ClientError> {
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
        let mut bytes = Zeroizing::new(Vec::new());
        let mut body = http_body_util::Limited::new(resp.into_body(), SMALL_ANSWER_MAX);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ClientError::Transport(format!("reading the KMS answer: {e}")))?;
            if let Some(d) = frame.data_ref() {
                bytes.extend_from_slice(d);
            }
        }
        if !status.is_success() {
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
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
        Ok(bytes)
    }

    async fn key_answer(&self, op: &str, body: Value) -> Result<KeyAnswer, ClientError> {
        let bytes = self.call(op, body).await?;
        serde_json::from_slice(&bytes).map_err(|_| ClientError::Transport(format!("KMS {op}: malformed answer")))
    }

    /// GenerateDataKey (AES_256) under `key_id`, bound to `context`.
    pub async fn generate_data_key(
        &self,
        key_id: &str,
        context: &BTreeMap<String, String>,
    ) -> Result<DataKey, ClientError> {
        let a = self
            .key_answer(
                "GenerateDataKey",
                json!({"KeyId": key_id, "KeySpec": "AES_256", "EncryptionContext": context}),
            )
            .await?;
        let ciphertext = a
            .ciphertext
            .as_deref()
            .ok_or_else(|| ClientError::Transport("KMS answer lacks CiphertextBlob".into()))?;
        Ok(DataKey {
            plaintext: unb64(&a.plaintext, "Plaintext")?,
            ciphertext: unb64(ciphertext, "CiphertextBlob")?.to_vec(),
            key_id: a.key_id.unwrap_or_else(|| key_id.to_owned()),
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
        let a = self.key_answer("Decrypt", req).await?;
        unb64(&a.plaintext, "Plaintext")
    }
}
