//! `rewind serve`: the HTTP API and the background workers in one process.

use std::sync::Arc;

use anyhow::Context;
use rewind_api::AppContext;
use rewind_store::{MetadataStore, PgStore, SqliteStore};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Settings;
use crate::{bootstrap, worker};

/// Runs until SIGTERM or SIGINT, then drains requests and stops the workers.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating data directory {}", settings.data_dir.display()))?;
    let store: Arc<dyn MetadataStore> = match &settings.database_url {
        Some(url) => Arc::new(
            PgStore::connect(url)
                .await
                .context("connecting to the PostgreSQL metadata store")?,
        ),
        None => Arc::new(
            SqliteStore::open(&settings.data_dir.join("metadata.sqlite"))
                .await
                .context("opening the metadata store")?,
        ),
    };
    bootstrap::ensure(store.as_ref(), &settings.data_dir).await?;

    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    let address = listener.local_addr()?;
    let public_url = settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{address}"));
    let app = AppContext::shared(store.clone(), &public_url)
        .await
        .context("reading the secrets replicas share")?;
    let replica_id = app.replica_id;
    let router = rewind_api::router(app);

    let (stop_sender, stop_receiver) = watch::channel(false);
    let workers: Vec<_> = (0..settings.workers)
        .map(|number| {
            let config = worker::WorkerConfig {
                data_dir: settings.data_dir.clone(),
                owner: format!("{replica_id}/{number}"),
                lease: settings.lease,
                shutdown_grace: settings.shutdown_grace,
                fault_snapshot_delay: settings.fault_snapshot_delay,
            };
            worker::spawn(store.clone(), config, stop_receiver.clone())
        })
        .collect();

    println!("rewind: listening on http://{address}");
    tracing::info!(%address, replica = %replica_id, data_dir = %settings.data_dir.display(), "rewind serving");
    let mut shutdown = stop_receiver;
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            wait_for_signal().await;
            tracing::info!("shutdown requested: draining requests");
            let _ = stop_sender.send(true);
            let _ = shutdown.changed().await;
        })
        .await?;
    for worker in workers {
        worker.await.context("joining a worker")?;
    }
    tracing::info!("rewind stopped");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
}
