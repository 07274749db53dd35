//! `strongroom`: the command line. `serve` runs the server; `presign` makes
//! a pre-signed URL like `aws s3 presign`.

mod config;
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
    Serve(config::ServeArgs),
    /// Print a pre-signed URL for an object.
    Presign(presign::PresignArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Presign(args) => presign::run(&args),
    }
}
