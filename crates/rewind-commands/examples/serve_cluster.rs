//! Serves one cluster (engine in a temporary directory + wire server + these commands), for
//! driving the command layer with real drivers.
//!
//! `cargo run -p rewind-commands --example serve_cluster` prints `port=<n>`, then serves until
//! Ctrl-C; point a driver at `mongodb://127.0.0.1:<n>/?directConnection=true`.

use std::io::Write;
use std::sync::Arc;

use rewind_commands::Commands;
use rewind_engine::{Engine, EngineOptions};
use rewind_wire::{ServerConfig, start};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("rewind-serve-cluster-{}", std::process::id()));
    let engine = Arc::new(Engine::open(&dir, EngineOptions::default())?);
    let server = start(
        ServerConfig::new("rs0"),
        Some(Arc::new(Commands::new(engine))),
    )
    .await?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "port={}", server.port())?;
    stdout.flush()?;
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
