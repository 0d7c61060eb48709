//! The background worker: claims queued snapshots under a lease, hands back the jobs of dead
//! workers, and removes expired snapshots and bearer tokens.
//!
//! Every replica runs the same loop against the shared store; the store's claim (`FOR UPDATE
//! SKIP LOCKED` on PostgreSQL, the single writer on SQLite) gives each job to one worker, the
//! heartbeat in [`crate::job`] keeps it there, and the reaper hands it to another worker when
//! its holder stops renewing. Restore jobs have no executor yet, so they stay `queued`: nothing
//! reports a restore that did not happen.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use rewind_domain::Timestamp;
use rewind_domain::cluster::MONGODB_VERSION;
use rewind_domain::snapshot::{Snapshot, SnapshotStatus};
use rewind_store::{Claimed, Lease, MetadataStore, Release};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::durable::write_atomically;
use crate::job::{self, Checkpoint, Ended};

/// How often the worker looks for work when idle.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How often lapsed leases, expired snapshots and expired tokens are swept: these change
/// on the scale of the lease, so sweeping on every poll would only add writes.
const SWEEP_INTERVAL: Duration = Duration::from_secs(5);
/// Attempts of one job (lapsed claims and transient failures alike) before it fails.
const MAX_ATTEMPTS: u32 = 3;

/// What one worker needs besides the store.
#[derive(Clone)]
pub struct WorkerConfig {
    /// Where snapshot data lives.
    pub data_dir: PathBuf,
    /// Names this worker in the leases it takes (replica id and worker number).
    pub owner: String,
    /// How long a claim lasts: a job whose worker died goes back to the queue after this.
    pub lease: Duration,
    /// How long a running job gets to reach a checkpoint once shutdown starts.
    pub shutdown_grace: Duration,
    /// Fault injection for tests: the least time a snapshot step takes.
    pub fault_snapshot_delay: Duration,
}

impl WorkerConfig {
    fn lease_from(&self, now: Timestamp) -> Lease {
        Lease {
            owner: self.owner.clone(),
            until: now.plus_millis(i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX)),
        }
    }
}

/// Starts the worker. Once `stop` turns true it claims nothing more, gives a running job
/// `shutdown_grace` to reach a checkpoint, releases the job's lease if it did not, and returns.
pub fn spawn(
    store: Arc<dyn MetadataStore>,
    config: WorkerConfig,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut last_sweep: Option<std::time::Instant> = None;
        let mut stop = stop;
        while !*stop.borrow() {
            if last_sweep.is_none_or(|at| at.elapsed() >= SWEEP_INTERVAL) {
                if let Err(error) = sweep(store.as_ref(), &config).await {
                    tracing::error!(%error, "worker sweep failed");
                }
                last_sweep = Some(std::time::Instant::now());
            }
            let worked = match take_one(&store, &config, &stop).await {
                Ok(worked) => worked,
                Err(error) => {
                    tracing::error!(%error, "worker step failed");
                    false
                }
            };
            if !worked {
                tokio::select! {
                    _ = stop.changed() => {}
                    _ = tokio::time::sleep(POLL_INTERVAL) => {}
                }
            }
        }
        tracing::info!(owner = %config.owner, "worker stopped");
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

/// Claims one queued snapshot and runs it to an end; false when the queue was empty.
async fn take_one(
    store: &Arc<dyn MetadataStore>,
    config: &WorkerConfig,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<bool> {
    let now = Timestamp::now();
    let Some(Claimed {
        job: snapshot,
        attempt,
    }) = store
        .claim_queued_snapshot(MONGODB_VERSION, &config.lease_from(now), now)
        .await?
    else {
        return Ok(false);
    };
    let owner = config.owner.as_str();
    tracing::info!(snapshot.id = %snapshot.id, %owner, attempt, "snapshot started");
    let directory = snapshot_dir(&config.data_dir, &snapshot);
    let delay = config.fault_snapshot_delay;
    let step = {
        let snapshot = snapshot.clone();
        move |cancel: &AtomicBool| capture(&directory, &snapshot, delay, cancel)
    };
    let heartbeat = {
        let (store, config, id) = (store.clone(), config.clone(), snapshot.id);
        move || {
            let (store, lease) = (store.clone(), config.lease_from(Timestamp::now()));
            async move { store.renew_snapshot_lease(id, &lease).await }
        }
    };
    let ended = job::run(
        step,
        heartbeat,
        config.lease / 3,
        stop.clone(),
        config.shutdown_grace,
    )
    .await;
    let now = Timestamp::now();
    match ended {
        Ended::Finished(Ok(Checkpoint::Done(size))) => {
            if store
                .finish_snapshot(
                    snapshot.id,
                    owner,
                    SnapshotStatus::Completed,
                    now,
                    size,
                    None,
                )
                .await?
            {
                tracing::info!(snapshot.id = %snapshot.id, %owner, size_bytes = size, "snapshot completed");
            } else {
                tracing::warn!(snapshot.id = %snapshot.id, %owner, "snapshot finished after its lease was lost; the new holder records it");
            }
        }
        Ended::Finished(Ok(Checkpoint::Cancelled)) | Ended::ShutDown => {
            store
                .release_snapshot(snapshot.id, owner, Release::Shutdown)
                .await?;
            tracing::info!(snapshot.id = %snapshot.id, %owner, "snapshot handed back for shutdown");
        }
        Ended::Finished(Err(error)) if attempt < MAX_ATTEMPTS => {
            let reason = format!("writing the snapshot failed: {error}");
            let retry_at = now.plus_millis(job::backoff(attempt).as_millis() as i64);
            store
                .release_snapshot(
                    snapshot.id,
                    owner,
                    Release::Retry {
                        retry_at,
                        error: &reason,
                    },
                )
                .await?;
            tracing::warn!(snapshot.id = %snapshot.id, %owner, attempt, %error, "snapshot will be retried");
        }
        Ended::Finished(Err(error)) => {
            let reason = format!("writing the snapshot failed after {attempt} attempts: {error}");
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
            tracing::error!(snapshot.id = %snapshot.id, %owner, %error, "snapshot failed");
        }
        Ended::LeaseLost => {
            tracing::warn!(snapshot.id = %snapshot.id, %owner, "snapshot lease lost; abandoned to its new holder");
        }
    }
    Ok(true)
}

fn snapshot_dir(data_dir: &Path, snapshot: &Snapshot) -> PathBuf {
    data_dir
        .join("snapshots")
        .join(snapshot.cluster_id.to_string())
        .join(snapshot.id.to_string())
}

/// Writes the manifest of the cluster's (empty) data set durably; returns the bytes stored.
/// Rewriting it is harmless, so a re-run after a crash finishes the job correctly.
fn capture(
    directory: &Path,
    snapshot: &Snapshot,
    delay: Duration,
    cancel: &AtomicBool,
) -> std::io::Result<Checkpoint<i64>> {
    if !job::pause(delay, cancel) {
        return Ok(Checkpoint::Cancelled);
    }
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
    Ok(Checkpoint::Done(bytes.len() as i64))
}
