//! `rewind`: a self-hosted, Atlas-compatible cloud backup service.

mod backups;
mod bench;
mod bootstrap;
mod config;
mod durable;
mod hosting;
mod job;
mod oplog_capture;
mod restore;
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
    Serve(Box<config::ServeArgs>),
    /// Measure throughput and latency against a ceiling measured in the same run.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Authenticated GET and durable POST of restore jobs beside a fixed-JSON responder.
    Api(bench::api::ApiBenchArgs),
    /// Restore-job reads with a million jobs stored, and snapshot claims per second.
    Jobs(bench::jobs::JobsBenchArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let settings = config::Settings::resolve(*args)?;
            config::init_logging(&settings.log_format)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(serve::run(settings))
        }
        Command::Bench(BenchCommand::Api(args)) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(bench::api::run(args))
        }
        Command::Bench(BenchCommand::Jobs(args)) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(bench::jobs::run(args))
        }
    }
}
