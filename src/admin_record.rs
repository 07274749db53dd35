//! `strongroom admin record`: read or write one stored record verbatim on
//! a stopped server's data directory: a system record (bucket policy
//! texts, IAM records, account Block Public Access) or one configuration
//! of a bucket record. Nothing is validated on the way in: this is for
//! restoring records by hand, and for the test suite to prove that a
//! damaged record fails closed (the server denies, never allows).

use std::io::{Read, Write};
use std::path::Path;

use anyhow::Context;

/// Which record.
#[derive(clap::Subcommand)]
pub enum RecordCommand {
    /// Print a record's bytes (nothing when it does not exist; exit 1).
    Get {
        #[command(flatten)]
        which: Which,
    },
    /// Replace a record with the bytes read from standard input.
    Put {
        #[command(flatten)]
        which: Which,
    },
}

/// A system record by name, or a bucket's configuration by name.
#[derive(clap::Args)]
#[group(required = true, multiple = true)]
pub struct Which {
    /// System record name (e.g. `bucket-policy/NAME`, `iam/ACCOUNT`, `pab/ACCOUNT`).
    #[arg(long, conflicts_with_all = ["bucket", "config"])]
    system: Option<String>,
    /// Bucket whose configuration is meant (with --config).
    #[arg(long, requires = "config")]
    bucket: Option<String>,
    /// Configuration name inside the bucket record (e.g. `public-access-block`).
    #[arg(long, requires = "bucket")]
    config: Option<String>,
}

pub fn run(data_dir: &Path, cmd: RecordCommand) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let store = strongroom_store::Store::open(data_dir)
            .map_err(|e| anyhow::anyhow!("opening {} (is the server running?): {e}", data_dir.display()))?;
        match cmd {
            RecordCommand::Get { which } => {
                let value = match (&which.system, &which.bucket, &which.config) {
                    (Some(name), _, _) => store.system(name)?,
                    (None, Some(b), Some(c)) => store
                        .bucket(b)?
                        .and_then(|r| r.configs.get(c).map(|v| v.clone().into_bytes())),
                    _ => anyhow::bail!("name a --system record, or a --bucket and its --config"),
                };
                let Some(v) = value else {
                    std::process::exit(1);
                };
                std::io::stdout().write_all(&v)?;
                Ok(())
            }
            RecordCommand::Put { which } => {
                let mut value = Vec::new();
                std::io::stdin().read_to_end(&mut value)?;
                match (which.system, which.bucket, which.config) {
                    (Some(name), _, _) => {
                        store
                            .commit(move |t| t.put_system(&name, &value))
                            .await
                            .context("writing the system record")?;
                    }
                    (None, Some(b), Some(c)) => {
                        let text = String::from_utf8(value).context("a bucket configuration is text")?;
                        store
                            .commit(move |t| {
                                let Some(mut rec) = t.bucket(&b)? else {
                                    return Err(anyhow::anyhow!("no bucket {b}"));
                                };
                                rec.configs.insert(c, text);
                                t.put_bucket(&rec)?;
                                Ok(())
                            })
                            .await?;
                    }
                    _ => anyhow::bail!("name a --system record, or a --bucket and its --config"),
                }
                Ok(())
            }
        }
    })
}
