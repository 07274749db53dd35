//! `strongroom admin` identity tasks, on a stopped server's data directory:
//! create an account (root credentials), create an IAM user with an access
//! key and policies, put a user's inline policy. The same changes the IAM
//! API makes on a running server (`aws iam ...`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use strongroom_iam::{Identities, NewAccount};

/// Identity subcommands.
#[derive(clap::Subcommand)]
pub enum IamCommand {
    /// Create an account with fresh root credentials (printed once).
    CreateAccount {
        /// The 12-digit account id.
        #[arg(long)]
        id: String,
        /// Display name.
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: Option<String>,
    },
    /// Create an IAM user with an access key (printed once) and inline
    /// policies from files (`--policy NAME=FILE`, repeatable).
    CreateUser {
        #[arg(long)]
        account: String,
        #[arg(long)]
        name: String,
        #[arg(long = "policy", value_name = "NAME=FILE")]
        policies: Vec<String>,
    },
    /// Put (create or replace) an inline policy of a user.
    PutUserPolicy {
        #[arg(long)]
        account: String,
        #[arg(long)]
        user: String,
        #[arg(long)]
        name: String,
        /// JSON policy document.
        #[arg(long)]
        file: PathBuf,
    },
}

async fn open(data_dir: &Path, keyring: Option<&Path>) -> anyhow::Result<Identities> {
    let master = std::sync::Arc::new(crate::keys::load(data_dir, keyring)?);
    let store = strongroom_store::Store::open(data_dir)
        .map_err(|e| anyhow::anyhow!("opening {} (is the server running?): {e}", data_dir.display()))?;
    Ok(Identities::load(store, master).await?)
}

fn iam_err(e: strongroom_iam::IamError) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", e.code, e.message)
}

pub fn run(data_dir: &Path, keyring: Option<&Path>, cmd: IamCommand) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let ids = open(data_dir, keyring).await?;
        match cmd {
            IamCommand::CreateAccount { id, name, email } => {
                if ids.account(&id).is_some() {
                    anyhow::bail!("account {id} exists");
                }
                let (key, secret) = strongroom_iam::generate_credentials()?;
                ids.ensure(NewAccount {
                    email: email.unwrap_or_else(|| format!("{name}@localhost")),
                    id: id.clone(),
                    name,
                    canonical_id: None,
                    access_key: key.clone(),
                    secret_key: secret.to_string(),
                })
                .await?;
                println!("account {id} created; root credentials (shown once):");
                println!(
                    "  aws_access_key_id = {key}\n  aws_secret_access_key = {}",
                    secret.as_str()
                );
            }
            IamCommand::CreateUser {
                account,
                name,
                policies,
            } => {
                if ids.account(&account).is_none() {
                    anyhow::bail!("no account {account}");
                }
                let mut docs = Vec::new();
                for p in &policies {
                    let (pname, file) = p.split_once('=').context("--policy takes NAME=FILE")?;
                    let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
                    docs.push((pname.to_owned(), text));
                }
                let u = ids.create_user(&account, &name, None).await.map_err(iam_err)?;
                for (pname, text) in &docs {
                    ids.set_inline_policy(&account, "user", &name, pname, Some(text))
                        .await
                        .map_err(iam_err)?;
                }
                let k = ids.create_access_key(&account, &name).await.map_err(iam_err)?;
                println!(
                    "user arn:aws:iam::{account}:user/{} ({}) created; access key (shown once):",
                    u.name, u.id
                );
                println!(
                    "  aws_access_key_id = {}\n  aws_secret_access_key = {}",
                    k.access_key,
                    k.secret.as_str()
                );
            }
            IamCommand::PutUserPolicy {
                account,
                user,
                name,
                file,
            } => {
                let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
                ids.set_inline_policy(&account, "user", &user, &name, Some(&text))
                    .await
                    .map_err(iam_err)?;
                println!("policy {name} of user {user} set");
            }
        }
        Ok(())
    })
}
