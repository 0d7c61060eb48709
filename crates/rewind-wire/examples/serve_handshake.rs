//! Serves the handshake and admin commands, with no data handler, so that
//! real drivers can be pointed at it.
//!
//! `cargo run -p rewind-wire --example serve_handshake [SET_NAME] [PORT]`
//! prints the bound port on its first line, then serves until Ctrl-C (or SIGINT).
//! Lines on standard input drive the controls, for
//! driver-level tests: `unavailable <reason>`, `available`, `refuse`,
//! `accept`; each is acknowledged with a line `done`.

use std::io::{BufRead, Write};

use rewind_wire::{ServerConfig, start};
use tokio::sync::mpsc;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut config = ServerConfig::new(args.next().unwrap_or_else(|| "rs0".to_owned()));
    if let Some(port) = args.next() {
        config.port = port
            .parse()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    }
    let server = start(config, None).await?;
    println!("{}", server.port());
    std::io::stdout().flush()?;
    // Tokio's stdin needs a feature the crate does not enable; a thread
    // forwarding lines is enough here.
    let (sender, mut lines) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut controls_open = true;
    loop {
        let line = tokio::select! {
            line = lines.recv(), if controls_open => line,
            signal = tokio::signal::ctrl_c() => { signal?; break }
        };
        // Without standard input (closed or /dev/null) it just serves on.
        let Some(line) = line else {
            controls_open = false;
            continue;
        };
        let (verb, rest) = line.trim().split_once(' ').unwrap_or((line.trim(), ""));
        match verb {
            "unavailable" => server.set_unavailable(rest),
            "available" => server.set_available(),
            "refuse" => server.set_accepting(false),
            "accept" => server.set_accepting(true),
            _ => {
                eprintln!("unknown control {verb:?}");
                continue;
            }
        }
        println!("done");
        std::io::stdout().flush()?;
    }
    server.shutdown().await;
    Ok(())
}
