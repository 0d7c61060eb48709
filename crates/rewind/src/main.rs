//! `rewind`: a self-hosted, Atlas-compatible cloud backup service.

mod bootstrap;
mod config;
mod durable;
mod serve;
mod worker;

use clap::{Parser, Subcommand};

/// Self-hosted, Atlas-compatible cloud backup service.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Atlas Admin API (and run the background workers).
    Serve(config::ServeArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let settings = config::Settings::resolve(args)?;
            config::init_logging(&settings.log_format)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(serve::run(settings))
        }
    }
}
