//! `strongroom audit`: reads the KMS audit log of a data directory and
//! prints the records that match, one JSON object a line.

use std::io::BufRead;

use anyhow::Context;
use serde_json::Value;

#[derive(clap::Args, Debug)]
pub struct AuditArgs {
    /// Data directory.
    #[arg(long, env = "STRONGROOM_DATA_DIR", default_value = "strongroom-data")]
    pub data_dir: std::path::PathBuf,
    /// Only this operation (eventName), e.g. GenerateDataKey.
    #[arg(long)]
    pub event: Option<String>,
    /// Only records about this key (id or ARN, matched as a substring).
    #[arg(long)]
    pub key: Option<String>,
    /// Only this caller account.
    #[arg(long)]
    pub account: Option<String>,
    /// Only failed requests.
    #[arg(long)]
    pub errors: bool,
    /// Only records at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Print the number of matching records instead of the records.
    #[arg(long)]
    pub count: bool,
}

fn matches(a: &AuditArgs, v: &Value) -> bool {
    let s = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned();
    if a.event.as_ref().is_some_and(|e| *e != s("/eventName")) {
        return false;
    }
    if a.key
        .as_ref()
        .is_some_and(|k| !s("/requestParameters/keyId").contains(k.as_str()))
    {
        return false;
    }
    if a.account
        .as_ref()
        .is_some_and(|acct| *acct != s("/userIdentity/accountId"))
    {
        return false;
    }
    if a.errors && v.get("errorCode").is_none() {
        return false;
    }
    if let Some(since) = &a.since {
        let fmt = &time::format_description::well_known::Rfc3339;
        let (Ok(t), Ok(at)) = (
            time::OffsetDateTime::parse(since, fmt),
            time::OffsetDateTime::parse(&s("/eventTime"), fmt),
        ) else {
            return false;
        };
        if at < t {
            return false;
        }
    }
    true
}

pub fn run(a: &AuditArgs) -> anyhow::Result<()> {
    let path = strongroom_kms::log_path(&a.data_dir);
    let f = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let mut n = 0u64;
    for line in std::io::BufReader::new(f).lines() {
        let line = line?;
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if matches(a, &v) {
            n += 1;
            if !a.count {
                println!("{line}");
            }
        }
    }
    if a.count {
        println!("{n}");
    }
    Ok(())
}
