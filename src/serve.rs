//! `strongroom serve`: wires the store, identities, the S3 implementation
//! and the listeners together, prints how to connect, and runs until
//! SIGTERM/SIGINT, then drains.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use ring::rand::{SecureRandom, SystemRandom};
use strongroom_iam::{Identities, NewAccount};
use strongroom_s3::{S3Settings, Strongroom};
use strongroom_server::{FrontDoor, Listeners, Metrics};
use strongroom_store::Store;

use crate::config::{Bootstrap, ServeArgs, Settings};

/// True for events that may carry secrets below `info`: s3s logs request
/// headers (Authorization, session tokens, SSE-C keys) and the signature it
/// expected on a mismatch at debug level; hyper and h2 log frames at trace.
fn may_leak_secrets(m: &tracing::Metadata<'_>) -> bool {
    let t = m.target();
    *m.level() > tracing::Level::INFO && (t.starts_with("s3s") || t.starts_with("hyper") || t.starts_with("h2"))
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let env = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,s3s=warn,hyper=warn"));
    // whatever RUST_LOG says, those events never reach the log
    let secrets = tracing_subscriber::filter::filter_fn(|m| !may_leak_secrets(m));
    // written last, when `run` returns: after the runtime has stopped
    let (writer, _flusher) = crate::log_sink::batched_stderr();
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(secrets)
        .with_filter(env);
    tracing_subscriber::registry().with(fmt).init();
    let settings = Settings::resolve(args)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(serve(settings))
}

fn random_string(alphabet: &[u8], n: usize) -> anyhow::Result<String> {
    let rng = SystemRandom::new();
    let mut out = String::with_capacity(n);
    let limit = 256 - (256 % alphabet.len());
    while out.len() < n {
        let mut b = [0u8; 1];
        rng.fill(&mut b).map_err(|_| anyhow::anyhow!("random source failed"))?;
        let v = usize::from(b[0]);
        if v < limit
            && let Some(c) = alphabet.get(v % alphabet.len())
        {
            out.push(char::from(*c));
        }
    }
    Ok(out)
}

const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const SECRET_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The file holding generated root credentials (mode 0600), read by
/// `strongroom presign` when no credentials are in the environment.
pub fn root_credentials_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("root-credentials")
}

/// Ensures the root account exists; returns (access key, printed-once note).
async fn ensure_root(store: &Store, ids: &Identities, data_dir: &Path) -> anyhow::Result<(String, Option<String>)> {
    let env_ak = std::env::var("STRONGROOM_ROOT_ACCESS_KEY").ok();
    let env_sk = std::env::var("STRONGROOM_ROOT_SECRET_KEY").ok();
    let existing = store.system("root-account")?.and_then(|v| String::from_utf8(v).ok());
    let id = match &existing {
        Some(id) => id.clone(),
        None => random_string(b"0123456789", 12)?,
    };
    match (env_ak, env_sk) {
        (Some(ak), Some(sk)) => {
            ids.upsert(NewAccount {
                id: id.clone(),
                name: "root".into(),
                email: "root@localhost".into(),
                canonical_id: None,
                access_key: ak.clone(),
                secret_key: sk,
            })
            .await?;
            mark_root(store, &id).await?;
            Ok((ak, None))
        }
        (None, None) => {
            if let Some(a) = ids.account(&id) {
                return Ok((a.access_key, None));
            }
            let ak = format!("SR{}", random_string(UPPER_DIGITS, 18)?);
            let sk = random_string(SECRET_CHARS, 40)?;
            ids.ensure(NewAccount {
                id: id.clone(),
                name: "root".into(),
                email: "root@localhost".into(),
                canonical_id: None,
                access_key: ak.clone(),
                secret_key: sk.clone(),
            })
            .await?;
            mark_root(store, &id).await?;
            let path = root_credentials_path(data_dir);
            write_private(
                &path,
                format!("access_key = \"{ak}\"\nsecret_key = \"{sk}\"\n").as_bytes(),
            )?;
            let note = format!(
                "Root credentials were generated (shown once; also in {}):\n  AWS_ACCESS_KEY_ID={ak}\n  AWS_SECRET_ACCESS_KEY={sk}",
                path.display()
            );
            Ok((ak, Some(note)))
        }
        _ => bail!("set both STRONGROOM_ROOT_ACCESS_KEY and STRONGROOM_ROOT_SECRET_KEY, or neither"),
    }
}

async fn mark_root(store: &Store, id: &str) -> anyhow::Result<()> {
    let id = id.to_owned();
    store
        .commit(move |txn| -> Result<(), strongroom_store::StoreError> {
            txn.put_system("root-account", id.as_bytes())
        })
        .await?;
    Ok(())
}

/// Writes a file that is mode 0600 from its creation (never readable by
/// others, not even for an instant).
fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    strongroom_store::restrict_mode(path)?;
    f.write_all(data)?;
    f.sync_all()?;
    Ok(())
}

fn make_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    Ok(())
}

async fn serve(mut s: Settings) -> anyhow::Result<()> {
    make_private_dir(&s.data_dir)?;
    let store = Store::open(&s.data_dir).with_context(|| format!("opening {}", s.data_dir.display()))?;
    match strongroom_s3::lock::check_locked(&store) {
        Ok(damaged) if damaged.is_empty() => {}
        Ok(damaged) => {
            for d in &damaged {
                tracing::error!(version = %d, "locked data damaged");
            }
            println!(
                "WARNING: {} locked object versions are damaged (see the log)",
                damaged.len()
            );
        }
        Err(e) => tracing::error!(error = %e, "the locked-data check failed"),
    }
    let master = Arc::new(crate::keys::load(&s.data_dir, s.master_key_file.as_deref())?);
    tracing::info!(keys = master.len(), active = master.active().0, "master keyring loaded");
    let ids = Identities::load(store.clone(), master.clone()).await?;
    let (root_key, note) = ensure_root(&store, &ids, &s.data_dir).await?;
    if let Some(p) = &s.bootstrap {
        for mut a in Bootstrap::load(p)?.account {
            let users = std::mem::take(&mut a.user);
            let account = a.id.clone();
            let created = ids
                .ensure(NewAccount {
                    email: a.email.unwrap_or_else(|| format!("{}@localhost", a.name)),
                    id: a.id,
                    name: a.name,
                    canonical_id: a.canonical_id,
                    access_key: a.access_key,
                    secret_key: a.secret_key,
                })
                .await?;
            tracing::debug!(created, "bootstrap account");
            for u in users {
                bootstrap_user(&ids, &account, u).await?;
            }
        }
    }

    let audit = strongroom_kms::Audit::open(&s.data_dir).context("opening the KMS audit log")?;
    let kms = strongroom_kms::Kms::open(
        store.clone(),
        master.clone(),
        audit.clone(),
        strongroom_kms::KmsSettings {
            region: s.region.clone(),
            rate_limit: s.kms_rate_limit,
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("opening the KMS: {e}"))?;
    {
        // automatic key rotation, checked hourly
        let kms = kms.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
            loop {
                tick.tick().await;
                if let Err(e) = kms.rotate_due().await {
                    tracing::error!(error = %e, "automatic key rotation failed");
                }
            }
        });
    }
    let key_service: Arc<dyn strongroom_kms::KeyService> = match &s.kms_endpoint {
        None => kms.clone(),
        Some(endpoint) => {
            let (Ok(ak), Ok(sk)) = (
                std::env::var("STRONGROOM_KMS_ACCESS_KEY"),
                std::env::var("STRONGROOM_KMS_SECRET_KEY"),
            ) else {
                bail!("--kms-endpoint needs STRONGROOM_KMS_ACCESS_KEY and STRONGROOM_KMS_SECRET_KEY");
            };
            // one writer for the audit log, shared with the (idle) built-in KMS
            let remote = strongroom_kms::RemoteKms::new(
                strongroom_kms::RemoteSettings {
                    endpoint: endpoint.clone(),
                    region: s.kms_region.clone().unwrap_or_else(|| s.region.clone()),
                    access_key: ak,
                    secret_key: zeroize::Zeroizing::new(sk),
                    default_key: s.kms_default_key.clone(),
                },
                strongroom_kms::Ledger::new(audit.clone(), s.region.clone()),
            )
            .map_err(|e| anyhow::anyhow!("external KMS: {e}"))?;
            tracing::info!(endpoint = %endpoint, "SSE-KMS uses an external KMS");
            Arc::new(remote)
        }
    };
    let crypt = strongroom_s3::sse::Encryption::new(master.clone(), key_service.clone(), s.bucket_key_ttl);
    let s3 = Strongroom::new(
        store.clone(),
        ids.clone(),
        S3Settings {
            region: s.region.clone(),
        },
        crypt,
    );
    // server access logs: records spooled in DATA/access-log, delivered in
    // the background
    let journal = Arc::new(
        strongroom_s3::logging::journal::Journal::open(&s.data_dir.join("access-log"))
            .context("opening the access-log spool")?,
    );
    let s3 = s3.with_access_log(journal.clone());
    let delivery = s3.clone();
    let service = strongroom_server::s3_service(s3, &ids, &store, &s.region, s.domain.as_deref());
    let metrics = Arc::new(Metrics::new(std::mem::take(&mut s.bucket_metrics)));
    let vhost = s.domain.as_deref().map(strongroom_server::BaseDomain::new);
    let front = Arc::new(
        FrontDoor::new(service, ids.clone(), vhost, metrics)
            .with_rules(strongroom_access::Rules {
                region: s.region.clone(),
                allow_sigv2: s.sigv2,
            })
            .with_kms(kms.clone(), s.kms_endpoint.is_none())
            .with_key_service(key_service.clone())
            .with_trusted_proxies(s.trusted_proxies.clone())
            .with_website_domain(s.website_domain.as_deref().map(strongroom_server::BaseDomain::new))
            .with_access_log(journal),
    );

    let mut listeners = Listeners {
        http: None,
        https: None,
        admin: None,
        website: None,
        website_https: None,
        limits: s.limits.clone(),
    };
    let mut lines = Vec::new();
    if let Some(a) = s.http {
        let l = strongroom_server::bind(a)
            .await
            .with_context(|| format!("binding {a}"))?;
        lines.push(format!("  S3 (HTTP):   http://{}", l.local_addr()?));
        listeners.http = Some(l);
    }
    let mut ca = None;
    let tls = || {
        strongroom_server::tls::setup(
            s.tls_cert.as_deref(),
            s.tls_key.as_deref(),
            &s.data_dir,
            &strongroom_server::tls::names_for(s.domain.as_deref(), s.website_domain.as_deref()),
            s.tls_min,
            s.prefer_http2,
        )
    };
    if let Some(a) = s.https {
        let t = tls()?;
        let l = strongroom_server::bind(a)
            .await
            .with_context(|| format!("binding {a}"))?;
        lines.push(format!("  S3 (HTTPS):  https://{}", l.local_addr()?));
        lines.push(format!(
            "  certificate: {}{}",
            t.cert_path.display(),
            if t.generated { " (generated)" } else { "" }
        ));
        ca = Some(t.cert_path.clone());
        listeners.https = Some((l, t.acceptor));
    }
    if let Some(a) = s.website {
        let l = strongroom_server::bind(a)
            .await
            .with_context(|| format!("binding {a}"))?;
        lines.push(format!(
            "  website:     http://{} (anonymous GET/HEAD of website buckets)",
            l.local_addr()?
        ));
        listeners.website = Some(l);
    }
    if let Some(a) = s.website_https {
        let t = tls()?;
        let l = strongroom_server::bind(a)
            .await
            .with_context(|| format!("binding {a}"))?;
        lines.push(format!("  website:     https://{}", l.local_addr()?));
        listeners.website_https = Some((l, t.acceptor));
    }
    if let Some(a) = s.admin {
        let l = strongroom_server::bind(a)
            .await
            .with_context(|| format!("binding {a}"))?;
        lines.push(format!("  admin:       http://{} (/health, /metrics)", l.local_addr()?));
        listeners.admin = Some(l);
    }
    println!(
        "Strongroom is serving (data in {}, region {})",
        s.data_dir.display(),
        s.region
    );
    for l in &lines {
        println!("{l}");
    }
    if let Some(n) = note {
        println!("{n}");
    } else {
        println!(
            "  root access key: {root_key} (secret as configured or in {})",
            root_credentials_path(&s.data_dir).display()
        );
    }
    if let Some(a) = s.http {
        println!("Try:  aws --endpoint-url http://{a} s3 ls");
    }
    if let (Some(a), Some(ca)) = (s.https, ca) {
        println!(
            "      aws --endpoint-url https://{a} --ca-bundle {} s3 ls",
            ca.display()
        );
    }

    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("shutting down");
        let _ = tx.send(true);
    });
    // server access logs: spooled records become log objects in the
    // background (records older than one interval, or sooner when a
    // segment or the rows of writes fill up), and all of them at a clean
    // shutdown
    let interval = s.log_delivery_interval;
    let worker = delivery.clone();
    let deliveries = tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = worker.log_backlog() => {}
            }
            if let Err(e) = worker.deliver_logs().await {
                tracing::error!(error = %e, "access-log delivery failed");
            }
        }
    });
    // lifecycle rules: a pass every 1/24 day (between 1 s and an hour)
    let day = s.lifecycle_day;
    let day_ms = i64::try_from(day.as_millis()).unwrap_or(i64::MAX);
    let every = (day / 24).clamp(std::time::Duration::from_secs(1), std::time::Duration::from_secs(3600));
    let rules = delivery.clone();
    let lifecycle = tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            match rules.apply_lifecycle(day_ms).await {
                Ok(n) if n != strongroom_s3::lifecycle::apply::Applied::default() => {
                    tracing::info!(
                        expired = n.expired,
                        removed = n.removed,
                        aborted = n.aborted,
                        kept_locked = n.kept_locked,
                        "lifecycle pass"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "lifecycle pass failed"),
            }
        }
    });
    strongroom_server::serve(listeners, front, rx).await?;
    lifecycle.abort();
    deliveries.abort();
    match delivery.deliver_logs().await {
        Ok(n) => tracing::info!(records = n, "access logs flushed"),
        Err(e) => tracing::error!(error = %e, "access-log flush failed"),
    }
    tracing::info!("stopped");
    Ok(())
}

/// Creates a bootstrap file's IAM user if missing, with its key and
/// inline policies (policies are replaced at every start).
async fn bootstrap_user(ids: &Identities, account: &str, u: crate::config::BootstrapUser) -> anyhow::Result<()> {
    let fail = |e: strongroom_iam::IamError| anyhow::anyhow!("bootstrap user {}: {} {}", u.name, e.code, e.message);
    match ids.create_user(account, &u.name, None).await {
        Ok(_) => {}
        Err(e) if e.code == "EntityAlreadyExists" => {}
        Err(e) => return Err(fail(e)),
    }
    if let (Some(k), Some(s)) = (&u.access_key, &u.secret_key) {
        let owned = ids.key_owner(account, k).as_deref() == Some(u.name.as_str());
        if !owned {
            ids.import_access_key(account, &u.name, k, s).await.map_err(fail)?;
        }
    }
    for (name, doc) in &u.policies {
        ids.set_inline_policy(account, "user", &u.name, name, Some(doc))
            .await
            .map_err(fail)?;
    }
    Ok(())
}
