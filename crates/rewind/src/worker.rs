//! The background worker: takes queued snapshots, hands back the jobs of dead workers,
//! and removes expired snapshots and bearer tokens.
//!
//! A cluster is still a record without a database engine, so a snapshot captures its empty
//! data set: the manifest lists each replica set with no namespaces. When clusters hold data,
//! the snapshot engine replaces `capture` and this loop stays. Restore jobs have no executor
//! yet, so they stay `queued`: nothing reports a restore that did not happen.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rewind_domain::Timestamp;
use rewind_domain::cluster::MONGODB_VERSION;
use rewind_domain::snapshot::{Snapshot, SnapshotStatus};
use rewind_store::{Lease, MetadataStore};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::durable::write_atomically;

/// How often the worker looks for work when idle.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How often lapsed leases, expired snapshots and expired tokens are swept: these change
/// on the scale of the lease, so sweeping on every poll would only add writes.
const SWEEP_INTERVAL: Duration = Duration::from_secs(5);
/// Claims of one job that may lapse before it fails instead of going back to the queue.
const MAX_ATTEMPTS: u32 = 3;

/// What one worker needs besides the store.
pub struct WorkerConfig {
    /// Where snapshot data lives.
    pub data_dir: PathBuf,
    /// Names this worker in the leases it takes (replica id and worker number).
    pub owner: String,
    /// How long a claim lasts: a job whose worker died goes back to the queue after this.
    pub lease: Duration,
}

/// Starts the worker; it finishes its current step and returns once `stop` turns true.
pub fn spawn(
    store: Arc<dyn MetadataStore>,
    config: WorkerConfig,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut last_sweep: Option<std::time::Instant> = None;
        loop {
            if last_sweep.is_none_or(|at| at.elapsed() >= SWEEP_INTERVAL) {
                if let Err(error) = sweep(store.as_ref(), &config).await {
                    tracing::error!(%error, "worker sweep failed");
                }
                last_sweep = Some(std::time::Instant::now());
            }
            if let Err(error) = take_queued(store.as_ref(), &config).await {
                tracing::error!(%error, "worker step failed");
            }
            tokio::select! {
                _ = stop.changed() => break,
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
            }
            if *stop.borrow() {
                break;
            }
        }
        tracing::info!("worker stopped");
    })
}

/// Hands back the jobs of dead workers and removes what expired.
async fn sweep(store: &dyn MetadataStore, config: &WorkerConfig) -> anyhow::Result<()> {
    let reaped = store
        .reap_snapshot_leases(Timestamp::now(), MAX_ATTEMPTS)
        .await?;
    if reaped > 0 {
        tracing::warn!(
            snapshots = reaped,
            "reclaimed snapshots whose worker stopped before finishing"
        );
    }
    for snapshot in store.expired_snapshots(Timestamp::now()).await? {
        let directory = snapshot_dir(&config.data_dir, &snapshot);
        match tokio::fs::remove_dir_all(&directory).await {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error.into()),
        }
        store.delete_snapshot(snapshot.id, Timestamp::now()).await?;
        tracing::info!(snapshot.id = %snapshot.id, "expired snapshot removed");
    }
    store.delete_expired_access_tokens(Timestamp::now()).await?;
    Ok(())
}

/// Takes every queued snapshot, one lease at a time.
async fn take_queued(store: &dyn MetadataStore, config: &WorkerConfig) -> anyhow::Result<()> {
    let (data_dir, owner) = (config.data_dir.as_path(), config.owner.as_str());
    loop {
        let lease = Lease {
            owner: owner.to_owned(),
            until: Timestamp::now()
                .plus_millis(i64::try_from(config.lease.as_millis()).unwrap_or(i64::MAX)),
        };
        let Some(snapshot) = store.claim_queued_snapshot(MONGODB_VERSION, &lease).await? else {
            break;
        };
        let directory = snapshot_dir(data_dir, &snapshot);
        let outcome = tokio::task::spawn_blocking({
            let snapshot = snapshot.clone();
            move || capture(&directory, &snapshot)
        })
        .await?;
        let now = Timestamp::now();
        match outcome {
            Ok(size) => {
                store
                    .finish_snapshot(
                        snapshot.id,
                        owner,
                        SnapshotStatus::Completed,
                        now,
                        size,
                        None,
                    )
                    .await?;
                tracing::info!(snapshot.id = %snapshot.id, size_bytes = size, "snapshot completed");
            }
            Err(error) => {
                let reason = format!("writing the snapshot manifest failed: {error}");
                store
                    .finish_snapshot(
                        snapshot.id,
                        owner,
                        SnapshotStatus::Failed,
                        now,
                        0,
                        Some(&reason),
                    )
                    .await?;
                tracing::error!(snapshot.id = %snapshot.id, %error, "snapshot failed");
            }
        }
    }
    Ok(())
}

fn snapshot_dir(data_dir: &Path, snapshot: &Snapshot) -> PathBuf {
    data_dir
        .join("snapshots")
        .join(snapshot.cluster_id.to_string())
        .join(snapshot.id.to_string())
}

/// Writes the manifest of the cluster's (empty) data set durably; returns the bytes stored.
fn capture(directory: &Path, snapshot: &Snapshot) -> std::io::Result<i64> {
    let manifest = json!({
        "format": "rewind-snapshot-manifest/1",
        "snapshotId": snapshot.id,
        "clusterId": snapshot.cluster_id,
        "clusterName": snapshot.cluster_name.as_str(),
        "mongodVersion": MONGODB_VERSION,
        "namespaces": [],
        "documents": 0,
    });
    let bytes = serde_json::to_vec_pretty(&manifest)?;
    write_atomically(&directory.join("manifest.json"), &bytes, 0o644)?;
    Ok(bytes.len() as i64)
}
