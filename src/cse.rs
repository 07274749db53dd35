//! `strongroom cse`: client-side encryption around any S3 endpoint,
//! interoperable with AWS's Amazon S3 Encryption Clients. Speaks like the
//! AWS CLI: endpoint, region, credentials and profiles from the usual
//! flags, environment variables and `~/.aws` files.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use strongroom_client::{Kms, S3, Settings, SettingsArgs};
use strongroom_cse::{CommitmentPolicy, Cse, Description, Format, Keyring, Range, describe, s3_url};
use zeroize::Zeroizing;

#[derive(Args)]
pub struct CseArgs {
    #[command(subcommand)]
    command: CseCommand,
}

#[derive(Subcommand)]
enum CseCommand {
    /// Encrypt a local file and upload it: put LOCAL s3://BUCKET/KEY
    Put {
        local: PathBuf,
        url: String,
        #[command(flatten)]
        keys: KeyArgs,
        #[command(flatten)]
        up: UploadArgs,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Download and decrypt an object: get s3://BUCKET/KEY LOCAL (or - for
    /// stdout, written only once the whole object has authenticated)
    Get {
        url: String,
        local: String,
        #[command(flatten)]
        keys: KeyArgs,
        /// Plaintext bytes to read, `bytes=FIRST-LAST` or `bytes=FIRST-`.
        /// Ranges cannot be authenticated (AES-CTR over the covering
        /// blocks): needs --allow-unauthenticated-range.
        #[arg(long)]
        range: Option<String>,
        /// Allow --range (AWS's "legacy unauthenticated modes").
        #[arg(long)]
        allow_unauthenticated_range: bool,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Copy, encrypting or decrypting: local to S3, S3 to local, or S3 to S3
    /// (decrypted and encrypted again under a fresh data key)
    Cp {
        from: String,
        to: String,
        #[command(flatten)]
        keys: KeyArgs,
        #[command(flatten)]
        up: UploadArgs,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// List objects under s3://BUCKET/PREFIX and how each is encrypted
    Ls {
        url: String,
        #[command(flatten)]
        conn: ConnArgs,
    },
}

#[derive(Args, Clone)]
struct ConnArgs {
    /// The S3 endpoint (else AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the
    /// profile's endpoint_url, AWS).
    #[arg(long)]
    endpoint_url: Option<String>,
    /// The KMS endpoint (else AWS_ENDPOINT_URL_KMS, AWS_ENDPOINT_URL, the
    /// profile's endpoint_url, AWS); never taken from --endpoint-url, so
    /// an S3 server cannot choose the data keys. http:// only on loopback.
    #[arg(long)]
    kms_endpoint_url: Option<String>,
    /// A profile of ~/.aws/config and ~/.aws/credentials.
    #[arg(long)]
    profile: Option<String>,
    #[arg(long)]
    region: Option<String>,
    /// Extra CA certificates (PEM) to trust (else AWS_CA_BUNDLE).
    #[arg(long)]
    ca_bundle: Option<PathBuf>,
}

#[derive(Args, Clone)]
struct KeyArgs {
    /// KMS key id, ARN or alias that wraps data keys (`kms+context`).
    #[arg(long, conflicts_with = "aes_key_file")]
    kms_key_id: Option<String>,
    /// A raw AES key that wraps data keys (`AES/GCM`): a file of exactly
    /// 16 or 32 binary bytes, or of their base64.
    #[arg(long)]
    aes_key_file: Option<PathBuf>,
    /// An RSA key pair in PEM (`RSA-OAEP-SHA1`): the private key (PKCS#8 or
    /// PKCS#1) encrypts and decrypts; a public key only encrypts.
    #[arg(long, conflicts_with_all = ["kms_key_id", "aes_key_file"])]
    rsa_key_file: Option<PathBuf>,
    /// Decrypt with whichever KMS key an object names (no --kms-key-id).
    /// Anyone who may write the bucket and use some KMS key you may use
    /// could then plant objects that authenticate: off by default.
    #[arg(long, conflicts_with_all = ["kms_key_id", "aes_key_file", "rsa_key_file"])]
    kms_discovery: bool,
    /// Encryption context bound to the data key (KMS): `k=v,k2=v2` or a
    /// JSON object. Reading needs the same context.
    #[arg(long)]
    encryption_context: Option<String>,
    /// What may be written and read.
    #[arg(long, value_enum, default_value = "require-encrypt-require-decrypt")]
    commitment_policy: Policy,
}

#[derive(Args, Clone)]
struct UploadArgs {
    /// Keep the envelope in KEY.instruction rather than object metadata.
    #[arg(long)]
    instruction_file: bool,
    /// Files at least this large are uploaded in parts (bytes).
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    multipart_threshold: u64,
    /// Plaintext bytes per part (at least 5 MiB).
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    part_size: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum Policy {
    /// Write V2 (no key commitment, readable by older clients); read both.
    #[value(name = "forbid-encrypt-allow-decrypt")]
    ForbidEncrypt,
    /// Write V3 (key commitment); read both.
    #[value(name = "require-encrypt-allow-decrypt")]
    RequireEncrypt,
    /// Write and read V3 only.
    #[value(name = "require-encrypt-require-decrypt")]
    RequireBoth,
}

impl From<Policy> for CommitmentPolicy {
    fn from(p: Policy) -> CommitmentPolicy {
        match p {
            Policy::ForbidEncrypt => CommitmentPolicy::ForbidEncryptAllowDecrypt,
            Policy::RequireEncrypt => CommitmentPolicy::RequireEncryptAllowDecrypt,
            Policy::RequireBoth => CommitmentPolicy::RequireEncryptRequireDecrypt,
        }
    }
}

fn settings(c: &ConnArgs) -> anyhow::Result<Settings> {
    Ok(Settings::resolve(&SettingsArgs {
        endpoint_url: c.endpoint_url.clone(),
        kms_endpoint_url: c.kms_endpoint_url.clone(),
        profile: c.profile.clone(),
        region: c.region.clone(),
        ca_bundle: c.ca_bundle.clone(),
    })?)
}

fn read_aes_key(p: &Path) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let raw = Zeroizing::new(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?);
    let ok = |n: usize| n == 16 || n == 32;
    if let Some(key) = std::str::from_utf8(&raw).ok().and_then(|t| base64_decode(t.trim()))
        && ok(key.len())
    {
        return Ok(key);
    }
    // binary, not text that failed to decode (a hex or mistyped key would
    // otherwise become a different key than other clients use)
    if ok(raw.len()) && !raw.iter().all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace()) {
        return Ok(raw);
    }
    bail!(
        "{}: an AES key must be 16 or 32 binary bytes, or their base64",
        p.display()
    )
}

fn base64_decode(s: &str) -> Option<Zeroizing<Vec<u8>>> {
    use data_encoding::BASE64;
    BASE64.decode(s.as_bytes()).ok().map(Zeroizing::new)
}

fn context(k: &KeyArgs) -> anyhow::Result<BTreeMap<String, String>> {
    let Some(s) = k.encryption_context.as_deref() else {
        return Ok(BTreeMap::new());
    };
    if s.trim_start().starts_with('{') {
        return serde_json::from_str(s).context("--encryption-context: expected a JSON object of strings");
    }
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| anyhow::anyhow!("--encryption-context: expected k=v pairs, got {p:?}"))
        })
        .collect()
}

fn keyring(k: &KeyArgs, s: &Settings) -> anyhow::Result<Keyring> {
    if let Some(p) = &k.aes_key_file {
        return Ok(Keyring::Aes {
            key: read_aes_key(p)?,
            description: BTreeMap::new(),
        });
    }
    if let Some(p) = &k.rsa_key_file {
        let pem = Zeroizing::new(std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?);
        return strongroom_cse::rsa_keyring_from_pem(&pem).with_context(|| p.display().to_string());
    }
    if k.kms_key_id.is_none() && !k.kms_discovery {
        bail!(
            "name the wrapping key: --kms-key-id ID, --aes-key-file FILE or --rsa-key-file PEM (or --kms-discovery to decrypt with any KMS key)"
        );
    }
    Ok(Keyring::Kms {
        kms: Box::new(Kms::new(s)?),
        key_id: k.kms_key_id.clone(),
    })
}

fn client(k: &KeyArgs, up: Option<&UploadArgs>, c: &ConnArgs) -> anyhow::Result<Cse> {
    let s = settings(c)?;
    Ok(Cse {
        s3: S3::new(&s)?,
        keyring: keyring(k, &s)?,
        policy: k.commitment_policy.into(),
        instruction_file: up.is_some_and(|u| u.instruction_file),
        multipart_threshold: up.map_or(u64::MAX, |u| u.multipart_threshold),
        part_size: up.map_or(8 << 20, |u| u.part_size),
    })
}

fn parse_range(r: &str) -> anyhow::Result<Range> {
    let spec = r.strip_prefix("bytes=").context("--range: expected bytes=FIRST-LAST")?;
    let (a, b) = spec.split_once('-').context("--range: expected bytes=FIRST-LAST")?;
    let first: u64 = a
        .parse()
        .context("--range: FIRST is not a number (suffix ranges are not supported)")?;
    let last = if b.is_empty() {
        None
    } else {
        Some(b.parse::<u64>().context("--range: LAST is not a number")?)
    };
    if last.is_some_and(|l| l < first) {
        bail!("--range: LAST is before FIRST");
    }
    Ok(Range { first, last })
}

/// Decrypts into `local`, or through a private temporary file to stdout.
async fn get(
    cse: &Cse,
    bucket: &str,
    key: &str,
    local: &str,
    ctx: &BTreeMap<String, String>,
    range: Option<Range>,
) -> anyhow::Result<()> {
    let fetch = |dest: PathBuf| async move {
        match range {
            Some(r) => cse.get_range_unauthenticated(bucket, key, r, &dest, ctx).await,
            None => cse.get_file(bucket, key, &dest, ctx).await,
        }
    };
    if local != "-" {
        fetch(PathBuf::from(local)).await?;
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let dest = dir.path().join("object");
    fetch(dest.clone()).await?;
    let mut f = std::fs::File::open(&dest)?;
    let mut out = std::io::stdout().lock();
    std::io::copy(&mut f, &mut out)?;
    out.flush()?;
    Ok(())
}

pub fn run(a: CseArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        // Ctrl-C or SIGTERM drops the command: its temporary plaintext
        // files are removed as they drop (SIGKILL cannot be caught)
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = command(a) => r,
            _ = tokio::signal::ctrl_c() => bail!("interrupted"),
            _ = term.recv() => bail!("terminated"),
        }
    })
}

async fn command(a: CseArgs) -> anyhow::Result<()> {
    {
        match a.command {
            CseCommand::Put {
                local,
                url,
                keys,
                up,
                conn,
            } => {
                let (bucket, key) = s3_url(&url)?;
                if key.is_empty() {
                    bail!("{url}: name the object (s3://BUCKET/KEY)");
                }
                let cse = client(&keys, Some(&up), &conn)?;
                cse.put_file(&local, &bucket, &key, &context(&keys)?).await?;
                println!("upload: {} to {url}", local.display());
            }
            CseCommand::Get {
                url,
                local,
                keys,
                range,
                allow_unauthenticated_range,
                conn,
            } => {
                let (bucket, key) = s3_url(&url)?;
                let range = range.as_deref().map(parse_range).transpose()?;
                if range.is_some() && !allow_unauthenticated_range {
                    bail!(
                        "a ranged read cannot be authenticated (the GCM tag covers the whole object): \
                         add --allow-unauthenticated-range to read it anyway"
                    );
                }
                let cse = client(&keys, None, &conn)?;
                get(&cse, &bucket, &key, &local, &context(&keys)?, range).await?;
                if local != "-" {
                    println!("download: {url} to {local}");
                }
            }
            CseCommand::Cp {
                from,
                to,
                keys,
                up,
                conn,
            } => {
                let cse = client(&keys, Some(&up), &conn)?;
                let ctx = context(&keys)?;
                match (from.starts_with("s3://"), to.starts_with("s3://")) {
                    (false, true) => {
                        let (bucket, key) = s3_url(&to)?;
                        if key.is_empty() {
                            bail!("{to}: name the object (s3://BUCKET/KEY)");
                        }
                        cse.put_file(Path::new(&from), &bucket, &key, &ctx).await?;
                        println!("upload: {from} to {to}");
                    }
                    (true, false) => {
                        let (bucket, key) = s3_url(&from)?;
                        get(&cse, &bucket, &key, &to, &ctx, None).await?;
                        println!("download: {from} to {to}");
                    }
                    (true, true) => {
                        let (b1, k1) = s3_url(&from)?;
                        let (b2, k2) = s3_url(&to)?;
                        if k2.is_empty() {
                            bail!("{to}: name the object (s3://BUCKET/KEY)");
                        }
                        let dir = tempfile::tempdir()?;
                        let tmp = dir.path().join("object");
                        cse.get_file(&b1, &k1, &tmp, &ctx).await?;
                        cse.put_file(&tmp, &b2, &k2, &ctx).await?;
                        println!("copy: {from} to {to}");
                    }
                    (false, false) => bail!("one side of cp must be s3://BUCKET/KEY"),
                }
            }
            CseCommand::Ls { url, conn } => {
                let (bucket, prefix) = s3_url(&url)?;
                let s3 = S3::new(&settings(&conn)?)?;
                for o in s3.list(&bucket, &prefix).await? {
                    if o.key.ends_with(strongroom_cse::INSTRUCTION_SUFFIX) {
                        continue;
                    }
                    let what = match describe(&s3, &bucket, &o.key).await? {
                        Description::Plain => "-".to_owned(),
                        Description::Encrypted {
                            format,
                            wrap,
                            instruction_file,
                        } => format!(
                            "{} {wrap}{}",
                            match format {
                                Format::V3 => "V3 (AES-256-GCM, key commitment)",
                                Format::V2 => "V2 (AES/GCM/NoPadding)",
                            },
                            if instruction_file { ", instruction file" } else { "" }
                        ),
                        Description::Unreadable(why) => format!("unreadable envelope: {why}"),
                    };
                    // keys and messages come from the server: no terminal escapes
                    let key: String = o.key.chars().flat_map(char::escape_debug).collect();
                    let what: String = what.chars().flat_map(char::escape_debug).collect();
                    println!("{:>12}  {key}  {what}", o.size);
                }
            }
        }
        Ok(())
    }
}
