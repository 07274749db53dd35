//! The AWS KMS JSON 1.1 API (`X-Amz-Target: TrentService.<Operation>`).
//! Requests and answers use AWS's field names, so `aws kms ...` and the
//! SDKs' KMS clients work unmodified.

use serde_json::{Map, Value, json};

use crate::json::{b64, blob, check_alias_name, context, metadata, number_of_bytes, req_s, s, tags, validation};
use crate::keys::AliasRecord;
use crate::service::{DEFAULT_S3_ALIAS, Kms, now, unb64};
use crate::{Caller, Context, KmsError};

/// What an operation touched, for the audit record.
struct Done {
    out: Value,
    key_arn: Option<String>,
    ctx: Option<Context>,
}

fn done(out: Value, key_arn: Option<String>) -> Done {
    Done {
        out,
        key_arn,
        ctx: None,
    }
}

/// Handles one API call; returns the HTTP status and JSON body.
pub async fn handle(kms: &Kms, caller: &Caller, target: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let op = target.strip_prefix("TrentService.").unwrap_or("");
    let Some(op) = OPERATIONS.iter().copied().find(|o| *o == op) else {
        return error_body(
            &KmsError::Unsupported(format!("Operation {target} is not supported")),
            "UnknownOperationException",
        );
    };
    let input: Value = if body.is_empty() {
        Value::Object(Map::new())
    } else {
        match serde_json::from_slice(body) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return error_body(
                    &validation("The request body is not a JSON object"),
                    "SerializationException",
                );
            }
        }
    };
    let res = run(kms, caller, op, &input).await;
    // the key an operation was about, for the audit record of a failure
    let hint = s(&input, "KeyId")
        .or(s(&input, "TargetKeyId"))
        .or(s(&input, "DestinationKeyId"))
        .map(str::to_owned)
        .or_else(|| {
            s(&input, "CiphertextBlob")
                .and_then(unb64)
                .and_then(|b| kms.blob_key(&b).ok())
                .map(|(k, _)| k.arn)
        });
    let (audit_res, arn, ctx) = match &res {
        Ok(d) => (Ok(()), d.key_arn.clone().or(hint), d.ctx.clone()),
        Err(e) => (
            Err(e.clone()),
            hint,
            context(&input, "EncryptionContext").ok().filter(|c| !c.is_empty()),
        ),
    };
    if let Err(e) = kms
        .account_for(caller, op, arn.as_deref(), ctx.as_ref(), &audit_res)
        .await
    {
        return error_body(&e, e.code());
    }
    match res {
        Ok(d) => (200, serde_json::to_vec(&d.out).unwrap_or_default()),
        Err(e) => error_body(&e, e.code()),
    }
}

fn error_body(e: &KmsError, code: &str) -> (u16, Vec<u8>) {
    let msg = match e {
        KmsError::Internal(m) => {
            tracing::error!(error = %m, "KMS internal error");
            "An internal error occurred.".to_owned()
        }
        other => other.to_string(),
    };
    (
        e.status(),
        serde_json::to_vec(&json!({"__type": code, "message": msg})).unwrap_or_default(),
    )
}

/// Every operation the API serves (`TrentService.<name>`).
pub const OPERATIONS: &[&str] = &[
    "CreateKey",
    "DescribeKey",
    "ListKeys",
    "CreateAlias",
    "ListAliases",
    "DeleteAlias",
    "UpdateAlias",
    "EnableKey",
    "DisableKey",
    "ScheduleKeyDeletion",
    "CancelKeyDeletion",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "Encrypt",
    "Decrypt",
    "ReEncrypt",
    "GenerateRandom",
    "EnableKeyRotation",
    "DisableKeyRotation",
    "GetKeyRotationStatus",
    "RotateKeyOnDemand",
    "ListKeyRotations",
    "GetKeyPolicy",
    "PutKeyPolicy",
    "ListKeyPolicies",
    "TagResource",
    "UntagResource",
    "ListResourceTags",
];

/// An alias is an IAM resource of its own: the caller's identity policies
/// must allow the action on the alias's ARN (roots: always).
fn authorize_alias(caller: &Caller, alias_arn: &str, action: &str) -> Result<(), KmsError> {
    let keys = crate::policy::kms_keys(&caller.account_id, caller.via_service.as_deref(), &Context::new(), None);
    if caller.identity_decision(action, alias_arn, &keys) != crate::Decision::Allow {
        return Err(KmsError::AccessDenied(format!(
            "User: {} is not authorized to perform: {action} on resource: {alias_arn}",
            caller.arn
        )));
    }
    Ok(())
}

/// Actions on no key: the caller's identity policies alone decide
/// (resource `*`), with the request's KMS condition keys.
fn authorize_keyless(caller: &Caller, action: &str, bypass_lockout: Option<bool>) -> Result<(), KmsError> {
    let keys = crate::policy::kms_keys(
        &caller.account_id,
        caller.via_service.as_deref(),
        &Context::new(),
        bypass_lockout,
    );
    if caller.identity_decision(action, "*", &keys) != crate::Decision::Allow {
        return Err(KmsError::AccessDenied(format!(
            "User: {} is not authorized to perform: {action} because no identity-based policy allows the {action} action",
            caller.arn
        )));
    }
    Ok(())
}

async fn run(kms: &Kms, caller: &Caller, op: &'static str, v: &Value) -> Result<Done, KmsError> {
    kms.throttle(caller, op)?;
    let acct = caller.account_id.as_str();
    let action = format!("kms:{op}");
    let empty = Context::new();
    match op {
        "ListKeys" | "ListAliases" | "GenerateRandom" => authorize_keyless(caller, &action, None)?,
        "CreateKey" => authorize_keyless(
            caller,
            &action,
            Some(
                v.get("BypassPolicyLockoutSafetyCheck")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            ),
        )?,
        _ => {}
    }
    match op {
        "CreateKey" => {
            if let Some(u) = s(v, "KeyUsage").filter(|u| *u != "ENCRYPT_DECRYPT") {
                return Err(KmsError::Unsupported(format!(
                    "KeyUsage {u} is not supported; only ENCRYPT_DECRYPT"
                )));
            }
            if let Some(spec) = s(v, "KeySpec")
                .or(s(v, "CustomerMasterKeySpec"))
                .filter(|s| *s != "SYMMETRIC_DEFAULT")
            {
                return Err(KmsError::Unsupported(format!(
                    "KeySpec {spec} is not supported; only SYMMETRIC_DEFAULT"
                )));
            }
            if let Some(o) = s(v, "Origin").filter(|o| *o != "AWS_KMS") {
                return Err(KmsError::Unsupported(format!("Origin {o} is not supported")));
            }
            // AWS's lockout safety check, as on PutKeyPolicy: a policy given
            // at creation must let its creator manage the key afterwards
            if let Some(doc) = s(v, "Policy") {
                let parsed = crate::policy::parse(doc)?;
                let bypass = v
                    .get("BypassPolicyLockoutSafetyCheck")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let r = crate::policy::Request {
                    action: "kms:PutKeyPolicy",
                    principal_arn: &caller.arn,
                    account: acct,
                    via_service: None,
                    context: &empty,
                    source_ip: &caller.source_ip,
                    // the key's id is not known yet: only a Resource of "*"
                    // (what key policies use) can name it
                    key_arn: "*",
                    identity: crate::Decision::Allow,
                    bypass_lockout: Some(bypass),
                };
                if !bypass && !crate::policy::allows(&parsed, &r) {
                    return Err(KmsError::MalformedPolicy(
                        "The new key policy will not allow you to update the key policy in the future.".into(),
                    ));
                }
            }
            let _one = kms.lock().lock().await;
            let k = kms
                .create_key(
                    acct,
                    s(v, "Description").unwrap_or_default().to_owned(),
                    s(v, "Policy").map(str::to_owned),
                    tags(v)?,
                    false,
                )
                .await?;
            Ok(done(json!({"KeyMetadata": metadata(&k)}), Some(k.arn)))
        }
        "DescribeKey" => {
            let id = req_s(v, "KeyId")?;
            let k = if id == DEFAULT_S3_ALIAS {
                kms.default_s3_key(acct).await?
            } else {
                kms.find(acct, id)?
            };
            kms.authorize(caller, &k, &action, &empty)?;
            Ok(done(json!({"KeyMetadata": metadata(&k)}), Some(k.arn)))
        }
        "ListKeys" => {
            let keys: Vec<Value> = kms
                .keys_of(acct)?
                .iter()
                .map(|k| json!({"KeyId": k.key_id, "KeyArn": k.arn}))
                .collect();
            Ok(done(json!({"Keys": keys, "Truncated": false}), None))
        }
        "ListAliases" => {
            let filter = match s(v, "KeyId") {
                Some(id) => Some(kms.find(acct, id)?.key_id),
                None => None,
            };
            let aliases: Vec<Value> = kms
                .aliases_of(acct)?
                .iter()
                .filter(|a| filter.as_ref().is_none_or(|f| *f == a.target))
                .map(|a| {
                    json!({
                        "AliasName": a.name,
                        "AliasArn": kms.alias_arn(acct, &a.name),
                        "TargetKeyId": a.target,
                        "CreationDate": a.created,
                        "LastUpdatedDate": a.updated,
                    })
                })
                .collect();
            Ok(done(json!({"Aliases": aliases, "Truncated": false}), None))
        }
        "CreateAlias" | "UpdateAlias" => {
            let name = req_s(v, "AliasName")?;
            check_alias_name(name)?;
            let target = req_s(v, "TargetKeyId")?;
            if target.contains("alias/") {
                return Err(validation("TargetKeyId must be a key id or key ARN, not an alias"));
            }
            let k = kms.find(acct, target)?;
            if k.account != acct {
                return Err(KmsError::AccessDenied(
                    "An alias must point to a key of its own account.".into(),
                ));
            }
            // AWS: the alias itself (identity policies), the key it will
            // name, and for UpdateAlias the key it names now (key policies)
            authorize_alias(caller, &kms.alias_arn(acct, name), &action)?;
            kms.authorize(caller, &k, &action, &empty)?;
            let _one = kms.lock().lock().await;
            let existing = kms.aliases_of(acct)?.into_iter().find(|a| a.name == name);
            if let Some(a) = existing.as_ref().filter(|_| op == "UpdateAlias") {
                let current = kms.find(acct, &a.target)?;
                kms.authorize(caller, &current, &action, &empty)?;
            }
            let t = now();
            let rec = match (op, existing) {
                ("CreateAlias", Some(_)) => {
                    return Err(KmsError::AlreadyExists(format!(
                        "An alias with the name {} already exists",
                        kms.alias_arn(acct, name)
                    )));
                }
                ("UpdateAlias", None) => {
                    return Err(KmsError::NotFound(format!(
                        "Alias {} is not found.",
                        kms.alias_arn(acct, name)
                    )));
                }
                (_, Some(a)) => AliasRecord {
                    target: k.key_id.clone(),
                    updated: t,
                    ..a
                },
                (_, None) => AliasRecord {
                    name: name.to_owned(),
                    account: acct.to_owned(),
                    target: k.key_id.clone(),
                    created: t,
                    updated: t,
                },
            };
            kms.save_alias(rec).await?;
            Ok(done(json!({}), Some(k.arn)))
        }
        "DeleteAlias" => {
            let name = req_s(v, "AliasName")?;
            check_alias_name(name)?;
            let k = kms.find(acct, name)?;
            authorize_alias(caller, &kms.alias_arn(acct, name), &action)?;
            kms.authorize(caller, &k, &action, &empty)?;
            let _one = kms.lock().lock().await;
            kms.drop_alias(acct, name).await?;
            Ok(done(json!({}), Some(k.arn)))
        }
        "EnableKey" | "DisableKey" | "CancelKeyDeletion" | "ScheduleKeyDeletion" => {
            let _one = kms.lock().lock().await;
            let mut k = kms.find(acct, req_s(v, "KeyId")?)?;
            kms.authorize(caller, &k, &action, &empty)?;
            if k.manager == "AWS" {
                return Err(KmsError::AccessDenied(format!(
                    "{} is an AWS managed key; its state cannot be changed.",
                    k.arn
                )));
            }
            let mut out = json!({});
            match op {
                "EnableKey" | "DisableKey" => {
                    if k.state == "PendingDeletion" {
                        return Err(KmsError::InvalidState(format!("{} is pending deletion.", k.arn)));
                    }
                    k.state = if op == "EnableKey" { "Enabled" } else { "Disabled" }.into();
                }
                "ScheduleKeyDeletion" => {
                    let days = v.get("PendingWindowInDays").and_then(Value::as_i64).unwrap_or(30);
                    if !(7..=30).contains(&days) {
                        return Err(validation(format!(
                            "1 validation error detected: Value '{days}' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value less than or equal to 30 and greater than or equal to 7"
                        )));
                    }
                    if k.state == "PendingDeletion" {
                        return Err(KmsError::InvalidState(format!("{} is pending deletion.", k.arn)));
                    }
                    let when = now() + days * 86400;
                    k.state = "PendingDeletion".into();
                    k.deletion_date = Some(when);
                    out = json!({"KeyId": k.arn, "DeletionDate": when, "KeyState": "PendingDeletion", "PendingWindowInDays": days});
                }
                _ => {
                    if k.state != "PendingDeletion" {
                        return Err(KmsError::InvalidState(format!("{} is not pending deletion.", k.arn)));
                    }
                    k.state = "Disabled".into();
                    k.deletion_date = None;
                    out = json!({"KeyId": k.arn});
                }
            }
            let arn = k.arn.clone();
            kms.save_key(k).await?;
            Ok(done(out, Some(arn)))
        }
        "GenerateDataKey" | "GenerateDataKeyWithoutPlaintext" => {
            let k = kms.find(acct, req_s(v, "KeyId")?)?;
            let ctx = context(v, "EncryptionContext")?;
            kms.authorize(caller, &k, &action, &ctx)?;
            Kms::usable(&k)?;
            let n = number_of_bytes(v)?;
            let mut plain = zeroize::Zeroizing::new(vec![0u8; n]);
            strongroom_crypt::fill_random(&mut plain).map_err(|e| KmsError::Internal(e.to_string()))?;
            let blob = kms.seal(&k, &plain, &ctx)?;
            let mut out = json!({"CiphertextBlob": b64(&blob), "KeyId": k.arn});
            if op == "GenerateDataKey"
                && let Some(o) = out.as_object_mut()
            {
                o.insert("Plaintext".into(), Value::String(b64(&plain)));
            }
            Ok(Done {
                out,
                key_arn: Some(k.arn),
                ctx: Some(ctx),
            })
        }
        "Encrypt" => {
            let k = kms.find(acct, req_s(v, "KeyId")?)?;
            let ctx = context(v, "EncryptionContext")?;
            let plain = zeroize::Zeroizing::new(
                unb64(req_s(v, "Plaintext")?).ok_or_else(|| validation("Plaintext is not base64"))?,
            );
            if plain.is_empty() || plain.len() > 4096 {
                return Err(validation(
                    "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096",
                ));
            }
            kms.authorize(caller, &k, &action, &ctx)?;
            Kms::usable(&k)?;
            let blob = kms.seal(&k, &plain, &ctx)?;
            Ok(Done {
                out: json!({"CiphertextBlob": b64(&blob), "KeyId": k.arn, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}),
                key_arn: Some(k.arn),
                ctx: Some(ctx),
            })
        }
        "Decrypt" => {
            let blob = blob(v, "CiphertextBlob")?;
            let ctx = context(v, "EncryptionContext")?;
            let (k, version) = kms.blob_key(&blob)?;
            if let Some(want) = s(v, "KeyId")
                && kms.find(acct, want).map(|w| w.key_id) != Ok(k.key_id.clone())
            {
                return Err(KmsError::IncorrectKey(
                    "The key ID in the request does not identify a CMK that can perform this operation.".into(),
                ));
            }
            kms.authorize(caller, &k, &action, &ctx)?;
            Kms::usable(&k)?;
            let plain = kms.unseal(&k, version, &blob, &ctx)?;
            Ok(Done {
                out: json!({"KeyId": k.arn, "Plaintext": b64(&plain), "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}),
                key_arn: Some(k.arn),
                ctx: Some(ctx),
            })
        }
        "ReEncrypt" => {
            let blob = blob(v, "CiphertextBlob")?;
            let src_ctx = context(v, "SourceEncryptionContext")?;
            let dst_ctx = context(v, "DestinationEncryptionContext")?;
            let (src, version) = kms.blob_key(&blob)?;
            if let Some(want) = s(v, "SourceKeyId")
                && kms.find(acct, want).map(|w| w.key_id) != Ok(src.key_id.clone())
            {
                return Err(KmsError::IncorrectKey(
                    "The key ID in the request does not identify a CMK that can perform this operation.".into(),
                ));
            }
            let dst = kms.find(acct, req_s(v, "DestinationKeyId")?)?;
            kms.authorize(caller, &src, "kms:ReEncryptFrom", &src_ctx)?;
            kms.authorize(caller, &dst, "kms:ReEncryptTo", &dst_ctx)?;
            Kms::usable(&src)?;
            Kms::usable(&dst)?;
            let plain = kms.unseal(&src, version, &blob, &src_ctx)?;
            let out_blob = kms.seal(&dst, &plain, &dst_ctx)?;
            Ok(done(
                json!({
                    "CiphertextBlob": b64(&out_blob),
                    "SourceKeyId": src.arn,
                    "KeyId": dst.arn,
                    "SourceEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
                    "DestinationEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
                }),
                Some(dst.arn),
            ))
        }
        "GenerateRandom" => {
            let n = v.get("NumberOfBytes").and_then(Value::as_u64).unwrap_or(0);
            if !(1..=1024).contains(&n) {
                return Err(validation("NumberOfBytes must be between 1 and 1024"));
            }
            let mut b = vec![0u8; usize::try_from(n).unwrap_or(0)];
            strongroom_crypt::fill_random(&mut b).map_err(|e| KmsError::Internal(e.to_string()))?;
            Ok(done(json!({"Plaintext": b64(&b)}), None))
        }
        "EnableKeyRotation" | "DisableKeyRotation" | "RotateKeyOnDemand" => {
            let _one = kms.lock().lock().await;
            let mut k = kms.find(acct, req_s(v, "KeyId")?)?;
            kms.authorize(caller, &k, &action, &empty)?;
            if k.manager == "AWS" {
                return Err(KmsError::AccessDenied(format!(
                    "{} is an AWS managed key; its rotation cannot be changed.",
                    k.arn
                )));
            }
            match k.state.as_str() {
                "Enabled" => {}
                "Disabled" => return Err(KmsError::Disabled(format!("{} is disabled.", k.arn))),
                _ => return Err(KmsError::InvalidState(format!("{} is pending deletion.", k.arn))),
            }
            let arn = k.arn.clone();
            match op {
                "RotateKeyOnDemand" => {
                    kms.rotate(k, true).await?;
                    return Ok(done(json!({"KeyId": arn}), Some(arn)));
                }
                "EnableKeyRotation" => {
                    let days = v.get("RotationPeriodInDays").and_then(Value::as_i64).unwrap_or(365);
                    if !(90..=2560).contains(&days) {
                        return Err(validation("RotationPeriodInDays must be between 90 and 2560"));
                    }
                    k.rotation_enabled = true;
                    k.rotation_period_days = u32::try_from(days).unwrap_or(365);
                    k.next_rotation = Some(now() + days * 86400);
                }
                _ => {
                    k.rotation_enabled = false;
                    k.next_rotation = None;
                }
            }
            kms.save_key(k).await?;
            Ok(done(json!({}), Some(arn)))
        }
        "GetKeyRotationStatus" => {
            let k = kms.find(acct, req_s(v, "KeyId")?)?;
            kms.authorize(caller, &k, &action, &empty)?;
            let mut out = json!({"KeyRotationEnabled": k.rotation_enabled, "KeyId": k.key_id});
            if let Some(o) = out.as_object_mut()
                && k.rotation_enabled
            {
                o.insert("RotationPeriodInDays".into(), json!(k.rotation_period_days));
                o.insert("NextRotationDate".into(), json!(k.next_rotation));
            }
            Ok(done(out, Some(k.arn)))
        }
        "ListKeyRotations" => {
            let k = kms.find(acct, req_s(v, "KeyId")?)?;
            kms.authorize(caller, &k, &action, &empty)?;
            let r: Vec<Value> = k
                .rotations
                .iter()
                .map(|t| json!({"KeyId": k.key_id, "RotationDate": t, "RotationType": "ON_DEMAND"}))
                .collect();
            Ok(done(json!({"Rotations": r, "Truncated": false}), Some(k.arn)))
        }
        "GetKeyPolicy" | "PutKeyPolicy" | "ListKeyPolicies" => {
            let k = kms.find(acct, req_s(v, "KeyId")?)?;
            let bypass = v
                .get("BypassPolicyLockoutSafetyCheck")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let bypass_key = (op == "PutKeyPolicy").then_some(bypass);
            kms.authorize_bypass(caller, &k, &action, &empty, bypass_key)?;
            if op == "ListKeyPolicies" {
                return Ok(done(
                    json!({"PolicyNames": ["default"], "Truncated": false}),
                    Some(k.arn),
                ));
            }
            if s(v, "PolicyName").is_some_and(|n| n != "default") {
                return Err(KmsError::NotFound("The only valid PolicyName is default.".into()));
            }
            if op == "GetKeyPolicy" {
                return Ok(done(json!({"Policy": k.policy, "PolicyName": "default"}), Some(k.arn)));
            }
            if k.manager == "AWS" {
                return Err(KmsError::AccessDenied(format!(
                    "{} is an AWS managed key; its policy cannot be changed.",
                    k.arn
                )));
            }
            let doc = req_s(v, "Policy")?;
            let parsed = crate::policy::parse(doc)?;
            // AWS's lockout safety check: the caller must still be able to
            // manage the key under the new policy
            let r = crate::policy::Request {
                action: "kms:PutKeyPolicy",
                principal_arn: &caller.arn,
                account: acct,
                via_service: None,
                context: &empty,
                source_ip: &caller.source_ip,
                key_arn: &k.arn,
                identity: crate::Decision::Allow,
                bypass_lockout: Some(bypass),
            };
            if !bypass && !crate::policy::allows(&parsed, &r) {
                return Err(KmsError::MalformedPolicy(
                    "The new key policy will not allow you to update the key policy in the future.".into(),
                ));
            }
            let _one = kms.lock().lock().await;
            let mut k = kms.find(acct, &k.key_id)?;
            k.policy = doc.to_owned();
            let arn = k.arn.clone();
            kms.save_key(k).await?;
            Ok(done(json!({}), Some(arn)))
        }
        "TagResource" | "UntagResource" | "ListResourceTags" => {
            let k = kms.find(acct, req_s(v, "KeyId")?)?;
            kms.authorize(caller, &k, &action, &empty)?;
            if op == "ListResourceTags" {
                let t: Vec<Value> = k
                    .tags
                    .iter()
                    .map(|(k, v)| json!({"TagKey": k, "TagValue": v}))
                    .collect();
                return Ok(done(json!({"Tags": t, "Truncated": false}), Some(k.arn)));
            }
            let _one = kms.lock().lock().await;
            let mut k = kms.find(acct, &k.key_id)?;
            if op == "TagResource" {
                for (tk, tv) in tags(v)? {
                    k.tags.retain(|(x, _)| *x != tk);
                    k.tags.push((tk, tv));
                }
                if k.tags.len() > 50 {
                    return Err(KmsError::Tagging("A key can have at most 50 tags".into()));
                }
            } else {
                let keys: Vec<&str> = match v.get("TagKeys") {
                    Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
                    _ => return Err(validation("TagKeys is required")),
                };
                k.tags.retain(|(x, _)| !keys.contains(&x.as_str()));
            }
            let arn = k.arn.clone();
            kms.save_key(k).await?;
            Ok(done(json!({}), Some(arn)))
        }
        _ => Err(KmsError::Unsupported(format!("{op} is not supported"))),
    }
}
