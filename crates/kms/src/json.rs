//! Reading and writing the JSON of the KMS API: typed fields out of a
//! request object (with AWS's validation messages), key metadata in AWS's
//! shape.

use serde_json::{Value, json};

use crate::service::unb64;
use crate::{Context, KmsError};

pub(crate) fn b64(b: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(b)
}

pub(crate) fn validation(m: impl Into<String>) -> KmsError {
    KmsError::Validation(m.into())
}

pub(crate) fn s<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}

pub(crate) fn req_s<'a>(v: &'a Value, name: &str) -> Result<&'a str, KmsError> {
    s(v, name).ok_or_else(|| {
        validation(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            lower_first(name)
        ))
    })
}

pub(crate) fn lower_first(n: &str) -> String {
    let mut c = n.chars();
    c.next()
        .map(|f| f.to_lowercase().chain(c).collect())
        .unwrap_or_default()
}

pub(crate) fn context(v: &Value, name: &str) -> Result<Context, KmsError> {
    let mut ctx = Context::new();
    match v.get(name) {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, val) in m {
                let Value::String(val) = val else {
                    return Err(validation("EncryptionContext values must be strings"));
                };
                ctx.insert(k.clone(), val.clone());
            }
        }
        Some(_) => return Err(validation("EncryptionContext must be a map of strings")),
    }
    Ok(ctx)
}

pub(crate) fn blob(v: &Value, name: &str) -> Result<Vec<u8>, KmsError> {
    let raw = req_s(v, name)?;
    unb64(raw).ok_or_else(|| KmsError::InvalidCiphertext(String::new()))
}

pub(crate) fn tags(v: &Value) -> Result<Vec<(String, String)>, KmsError> {
    let mut out = Vec::new();
    if let Some(Value::Array(a)) = v.get("Tags") {
        for t in a {
            let (Some(k), Some(val)) = (s(t, "TagKey"), s(t, "TagValue")) else {
                return Err(KmsError::Tagging("Each tag needs TagKey and TagValue".into()));
            };
            if k.is_empty() || k.len() > 128 || val.len() > 256 || k.starts_with("aws:") {
                return Err(KmsError::Tagging(format!("Invalid tag key {k}")));
            }
            out.push((k.to_owned(), val.to_owned()));
        }
    }
    Ok(out)
}

pub(crate) fn metadata(k: &crate::keys::KeyRecord) -> Value {
    let mut m = json!({
        "AWSAccountId": k.account,
        "KeyId": k.key_id,
        "Arn": k.arn,
        "CreationDate": k.created,
        "Enabled": k.state == "Enabled",
        "Description": k.description,
        "KeyUsage": "ENCRYPT_DECRYPT",
        "KeyState": k.state,
        "Origin": "AWS_KMS",
        "KeyManager": k.manager,
        "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT",
        "KeySpec": "SYMMETRIC_DEFAULT",
        "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"],
        "MultiRegion": false,
    });
    if let (Some(d), Some(o)) = (k.deletion_date, m.as_object_mut()) {
        o.insert("DeletionDate".into(), json!(d));
    }
    m
}

pub(crate) fn check_alias_name(name: &str) -> Result<(), KmsError> {
    let ok = name.starts_with("alias/")
        && name.len() > 6
        && name.len() <= 256
        && name[6..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_-".contains(c));
    if !ok {
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{name}' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^alias/[a-zA-Z0-9/_-]+$"
        )));
    }
    if name.starts_with("alias/aws/") {
        return Err(KmsError::AccessDenied(
            "Alias names that begin with alias/aws/ are reserved for AWS managed keys.".into(),
        ));
    }
    Ok(())
}

pub(crate) fn number_of_bytes(v: &Value) -> Result<usize, KmsError> {
    match (v.get("NumberOfBytes").and_then(Value::as_u64), s(v, "KeySpec")) {
        (Some(_), Some(_)) => Err(validation("Please specify either number of bytes or key spec.")),
        (Some(n), None) if (1..=1024).contains(&n) => Ok(usize::try_from(n).unwrap_or(32)),
        (Some(_), None) => Err(validation("NumberOfBytes must be between 1 and 1024")),
        (None, Some("AES_256")) => Ok(32),
        (None, Some("AES_128")) => Ok(16),
        (None, Some(_)) => Err(validation("KeySpec must be AES_256 or AES_128")),
        (None, None) => Err(validation("Please specify either number of bytes or key spec.")),
    }
}
