//! `strongroom`: the command line. `serve` runs the server; `presign` makes
//! a pre-signed URL like `aws s3 presign`; `logs` reads server access logs;
//! `cse` encrypts and decrypts on the client.

mod admin_iam;
mod admin_record;
mod audit;
mod bench;
mod bench_authz;
mod bench_http;
mod bench_limits;
mod bench_load;
mod bench_load_report;
mod config;
mod cse;
mod keys;
mod log_sink;
mod logs;
mod presign;
mod serve;

use clap::{Parser, Subcommand};

/// mimalloc rather than glibc's malloc: allocation was ~12 % of server CPU on
/// small requests, and workers allocate what the commit thread frees (glibc
/// pays an arena lock for such frees). Measured in the commit that chose it.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "strongroom",
    version,
    about = "An S3-compatible object store whose security model works for real"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(Box<config::ServeArgs>),
    /// Print a pre-signed URL for an object.
    Presign(presign::PresignArgs),
    /// Read the server access logs delivered for a bucket.
    Logs(Box<logs::LogsArgs>),
    /// Query the KMS audit log.
    Audit(audit::AuditArgs),
    /// Measure performance against a baseline of the same build.
    Bench(bench::BenchArgs),
    /// Client-side encryption around any S3 endpoint, interoperable with
    /// AWS's S3 Encryption Clients: put, get, cp, ls.
    Cse(cse::CseArgs),
    /// Administrative tasks on a data directory.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Append a fresh master key to the keyring: new objects use it, older
    /// objects keep using the key they were written with. Restart the
    /// server afterwards.
    RotateMasterKey {
        /// Data directory (its master.keys is rotated).
        #[arg(long, env = "STRONGROOM_DATA_DIR", default_value = "strongroom-data")]
        data_dir: std::path::PathBuf,
        /// The keyring file, when the server runs with --master-key-file.
        #[arg(long)]
        master_key_file: Option<std::path::PathBuf>,
    },
    /// Create (or replace) the virtual MFA device of an account's root
    /// (run with the server stopped): prints its serial, secret, otpauth
    /// URI and a QR code to scan with an authenticator app.
    MfaEnable {
        /// Data directory.
        #[arg(long, env = "STRONGROOM_DATA_DIR", default_value = "strongroom-data")]
        data_dir: std::path::PathBuf,
        /// The keyring file, when the server runs with --master-key-file.
        #[arg(long)]
        master_key_file: Option<std::path::PathBuf>,
        /// The 12-digit account id.
        #[arg(long)]
        account: String,
        /// Do not print the QR code.
        #[arg(long)]
        no_qr: bool,
    },
    /// Identity tasks (run with the server stopped): create-account,
    /// create-user, put-user-policy.
    Iam {
        /// Data directory.
        #[arg(long, env = "STRONGROOM_DATA_DIR", default_value = "strongroom-data")]
        data_dir: std::path::PathBuf,
        /// The keyring file, when the server runs with --master-key-file.
        #[arg(long)]
        master_key_file: Option<std::path::PathBuf>,
        #[command(subcommand)]
        command: admin_iam::IamCommand,
    },
    /// Read or write one stored record verbatim, unvalidated (run with the
    /// server stopped): for restoring records by hand, and for proving
    /// that damaged records fail closed.
    Record {
        /// Data directory.
        #[arg(long, env = "STRONGROOM_DATA_DIR", default_value = "strongroom-data")]
        data_dir: std::path::PathBuf,
        #[command(subcommand)]
        command: admin_record::RecordCommand,
    },
    /// Re-wrap every object's data key under the active master key (run
    /// with the server stopped); afterwards older keys can leave the
    /// keyring.
    RewrapMasterKey {
        /// Data directory.
        #[arg(long, env = "STRONGROOM_DATA_DIR", default_value = "strongroom-data")]
        data_dir: std::path::PathBuf,
        /// The keyring file, when the server runs with --master-key-file.
        #[arg(long)]
        master_key_file: Option<std::path::PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Presign(args) => presign::run(&args),
        Command::Logs(args) => logs::run(&args),
        Command::Audit(args) => audit::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Cse(args) => cse::run(args),
        Command::Admin(AdminCommand::RotateMasterKey {
            data_dir,
            master_key_file,
        }) => {
            let path = master_key_file.unwrap_or_else(|| keys::default_path(&data_dir));
            let id = keys::rotate(&path)?;
            println!(
                "New active master key {id} appended to {}; restart the server to use it.",
                path.display()
            );
            Ok(())
        }
        Command::Admin(AdminCommand::MfaEnable {
            data_dir,
            master_key_file,
            account,
            no_qr,
        }) => mfa_enable(&data_dir, master_key_file.as_deref(), &account, no_qr),
        Command::Admin(AdminCommand::Iam {
            data_dir,
            master_key_file,
            command,
        }) => admin_iam::run(&data_dir, master_key_file.as_deref(), command),
        Command::Admin(AdminCommand::Record { data_dir, command }) => admin_record::run(&data_dir, command),
        Command::Admin(AdminCommand::RewrapMasterKey {
            data_dir,
            master_key_file,
        }) => {
            let master = keys::load(&data_dir, master_key_file.as_deref())?;
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let done = rt.block_on(async {
                let store = strongroom_store::Store::open(&data_dir)
                    .map_err(|e| anyhow::anyhow!("opening {} (is the server running?): {e}", data_dir.display()))?;
                strongroom_s3::sse::rewrap_all(&store, &master)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))
            })?;
            println!(
                "Re-wrapped the data keys of {} objects and {} uploads under master key {}.",
                done.objects,
                done.uploads,
                master.active().0
            );
            Ok(())
        }
    }
}

fn mfa_enable(
    data_dir: &std::path::Path,
    keyring: Option<&std::path::Path>,
    account: &str,
    no_qr: bool,
) -> anyhow::Result<()> {
    let master = std::sync::Arc::new(keys::load(data_dir, keyring)?);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let (serial, secret) = rt.block_on(async {
        let store = strongroom_store::Store::open(data_dir)
            .map_err(|e| anyhow::anyhow!("opening {} (is the server running?): {e}", data_dir.display()))?;
        let ids = strongroom_iam::Identities::load(store, master).await?;
        ids.enable_root_mfa(account).await.map_err(|e| anyhow::anyhow!("{e}"))
    })?;
    let b32 = zeroize::Zeroizing::new(data_encoding::BASE32_NOPAD.encode(&secret));
    let uri = zeroize::Zeroizing::new(format!(
        "otpauth://totp/Strongroom:{account}?secret={}&issuer=Strongroom&algorithm=SHA1&digits=6&period=30",
        b32.as_str()
    ));
    println!("MFA device of account {account}'s root (shown once):");
    println!("  serial: {serial}");
    println!("  secret: {}", b32.as_str());
    println!("  uri:    {}", uri.as_str());
    if !no_qr {
        let code = qrcode::QrCode::new(uri.as_bytes())?;
        let art = code
            .render::<qrcode::render::unicode::Dense1x2>()
            .quiet_zone(true)
            .build();
        println!("{art}");
    }
    println!("Use it as: x-amz-mfa: {serial} <6-digit code>  (e.g. aws s3api ... --mfa \"{serial} 123456\")");
    Ok(())
}
