//! `strongroom`: the command line. `serve` runs the server; `presign` makes
//! a pre-signed URL like `aws s3 presign`.

mod audit;
mod bench;
mod bench_http;
mod config;
mod keys;
mod presign;
mod serve;

use clap::{Parser, Subcommand};

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
    /// Query the KMS audit log.
    Audit(audit::AuditArgs),
    /// Measure performance against a baseline of the same build.
    Bench(bench::BenchArgs),
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
        Command::Audit(args) => audit::run(&args),
        Command::Bench(args) => bench::run(&args),
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
