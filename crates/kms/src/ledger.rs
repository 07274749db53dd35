//! What every key service keeps of its use: request counts (Prometheus)
//! and the durable audit log, shared by the built-in KMS and the client of
//! an external one.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{Value, json};

use crate::audit::Audit;
use crate::{Caller, Context, KmsError};

pub struct Ledger {
    audit: Audit,
    region: String,
    counts: Mutex<BTreeMap<(String, &'static str), u64>>,
}

impl Ledger {
    pub fn new(audit: Audit, region: String) -> Ledger {
        Ledger {
            audit,
            region,
            counts: Mutex::new(BTreeMap::new()),
        }
    }

    /// Prometheus lines: KMS requests by operation and outcome.
    pub fn render_metrics(&self) -> String {
        let mut out = String::from(
            "# HELP strongroom_kms_requests_total KMS requests (API and S3 on a caller's behalf) by operation and outcome.\n# TYPE strongroom_kms_requests_total counter\n",
        );
        if let Ok(m) = self.counts.lock() {
            for ((op, outcome), n) in m.iter() {
                out.push_str(&format!(
                    "strongroom_kms_requests_total{{operation=\"{op}\",outcome=\"{outcome}\"}} {n}\n"
                ));
            }
        }
        out
    }

    /// Requests counted so far for an operation (tests, metrics).
    pub fn count(&self, op: &str) -> u64 {
        self.counts
            .lock()
            .map(|m| m.iter().filter(|((o, _), _)| o == op).map(|(_, n)| *n).sum())
            .unwrap_or(0)
    }

    /// Counts and audits one operation; fails when the record cannot be
    /// made durable (an unaudited key use does not happen).
    pub async fn record(
        &self,
        caller: &Caller,
        op: &'static str,
        key_arn: Option<&str>,
        ctx: Option<&Context>,
        result: &Result<(), KmsError>,
    ) -> Result<(), KmsError> {
        let outcome = if result.is_ok() { "ok" } else { "error" };
        if let Ok(mut m) = self.counts.lock() {
            *m.entry((op.to_owned(), outcome)).or_insert(0) += 1;
        }
        let t = time::OffsetDateTime::now_utc();
        let mut rec = json!({
            "eventVersion": "1.08",
            "eventTime": t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "eventSource": "kms.amazonaws.com",
            "eventName": op,
            "awsRegion": self.region,
            "sourceIPAddress": caller.via_service.clone().unwrap_or_else(|| caller.source_ip.clone()),
            "userIdentity": {
                "type": "Root",
                "accountId": caller.account_id,
                "arn": caller.arn,
                "accessKeyId": caller.access_key,
                "invokedBy": caller.via_service,
            },
            "requestParameters": {
                "keyId": key_arn,
                "encryptionContext": ctx,
            },
            "resources": key_arn.map(|a| vec![json!({"ARN": a, "type": "AWS::KMS::Key"})]),
            "eventType": "AwsApiCall",
            "readOnly": !matches!(op, "CreateKey" | "CreateAlias" | "DeleteAlias" | "UpdateAlias" | "EnableKey" | "DisableKey" | "ScheduleKeyDeletion" | "CancelKeyDeletion" | "EnableKeyRotation" | "DisableKeyRotation" | "RotateKeyOnDemand" | "PutKeyPolicy" | "TagResource" | "UntagResource"),
            "recipientAccountId": caller.account_id,
        });
        if let (Some(obj), Some(src)) = (rec.as_object_mut(), caller.via_service.as_ref()) {
            obj.insert("sourceIPAddress".into(), Value::String(src.clone()));
            obj.insert("callerSourceIp".into(), Value::String(caller.source_ip.clone()));
        }
        if let (Err(e), Some(obj)) = (result, rec.as_object_mut()) {
            obj.insert("errorCode".into(), Value::String(e.code().into()));
            obj.insert("errorMessage".into(), Value::String(e.to_string()));
        }
        if self.audit.record(rec).await {
            Ok(())
        } else {
            Err(KmsError::Internal("the KMS audit log cannot be written".into()))
        }
    }
}
