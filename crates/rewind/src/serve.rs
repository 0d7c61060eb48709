//! `rewind serve`: the HTTP API and the background workers in one process.

use std::sync::Arc;

use anyhow::Context;
use rewind_api::AppContext;
use rewind_store::{MetadataStore, PgStore, SqliteStore};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::backups::Backups;
use crate::config::Settings;
use crate::{bootstrap, hosting, oplog_capture, worker};

/// Runs until SIGTERM or SIGINT, then drains requests and stops the workers.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let signals = ShutdownSignals::install()?;
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
    // Before the first start's credentials are minted and printed: a wrong bucket or
    // credentials stop the process first. Opening an S3 store waits for the bucket to answer,
    // so it runs off the async workers.
    let location = settings.blob_store.clone();
    let blobs = tokio::task::spawn_blocking(move || rewind_backup::open_blob_store(&location))
        .await
        .context("opening the blob store")?
        .with_context(|| format!("opening the blob store {}", settings.blob_store))?;
    bootstrap::ensure(store.as_ref(), &settings.data_dir).await?;

    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    let address = listener.local_addr()?;
    let public_url = settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{address}"));
    let replica_id = bootstrap::replica_id(&settings.data_dir)?;
    let app = AppContext::shared(
        store.clone(),
        &public_url,
        replica_id,
        settings.data_dir.join("downloads"),
    )
    .await
    .context("reading the secrets replicas share")?;
    let router = rewind_api::router(app);

    let clusters = hosting::Clusters::new(hosting::HostingConfig {
        lease: settings.lease,
        blobs: blobs.clone(),
        replica: replica_id.to_string(),
        data_dir: settings.data_dir.clone(),
        port_base: settings.cluster_port_base,
        handler: Arc::new(|engine| Arc::new(rewind_commands::Commands::new(engine))),
        engine: rewind_engine::EngineOptions {
            oplog_max_bytes: settings.oplog_max_bytes,
            oplog_max_age: settings.oplog_max_age,
            ..rewind_engine::EngineOptions::default()
        },
    });
    let backups = Backups {
        blobs,
        clusters: clusters.clone(),
    };
    let (stop_sender, stop_receiver) = watch::channel(false);
    let incarnation = rewind_domain::ObjectId::generate();
    let workers: Vec<_> = (0..settings.workers)
        .map(|number| {
            let config = worker::WorkerConfig {
                backups: backups.clone(),
                downloads: settings.data_dir.join("downloads"),
                public_url: public_url.clone(),
                replica: replica_id.to_string(),
                // A restarted replica is the same replica, but not the same lease holder.
                owner: format!("{replica_id}/{incarnation}/{number}"),
                lease: settings.lease,
                shutdown_grace: settings.shutdown_grace,
                fault_snapshot_delay: settings.fault_snapshot_delay,
                download_link: settings.download_link,
                fault_restore_delay: settings.fault_restore_delay,
            };
            worker::spawn(store.clone(), config, stop_receiver.clone())
        })
        .collect();

    let hosting = hosting::spawn(store.clone(), clusters.clone(), stop_receiver.clone());
    let oplog_capture = oplog_capture::spawn(store.clone(), backups, stop_receiver.clone());

    println!("rewind: listening on http://{address}");
    tracing::info!(%address, replica = %replica_id, data_dir = %settings.data_dir.display(), "rewind serving");
    let mut shutdown = stop_receiver;
    rewind_api::server::serve(listener, router, async move {
        signals.received().await;
        tracing::info!("shutdown requested: draining requests");
        let _ = stop_sender.send(true);
        let _ = shutdown.changed().await;
    })
    .await;
    for worker in workers {
        worker.await.context("joining a worker")?;
    }
    oplog_capture.await.context("stopping oplog capture")?;
    hosting.await.context("stopping the clusters")?;
    tracing::info!("rewind stopped");
    Ok(())
}

/// SIGTERM and SIGINT, caught from the moment this is created: a signal that arrives before
/// the server's shutdown future first runs must not fall to the default action (killing the
/// process without draining anything), which a supervisor stopping a just-started replica
/// would otherwise hit.
struct ShutdownSignals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            terminate: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            interrupt: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    async fn received(mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}
