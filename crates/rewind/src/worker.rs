//! The background worker: takes snapshots and runs restore jobs under a lease, hands back
//! the jobs of dead workers, and removes what expired (snapshots with their blobs, download
//! links, bearer tokens) and the backups of deleted clusters.
//!
//! Every replica runs the same loop against the shared store; the store's claim (`FOR UPDATE
//! SKIP LOCKED` on PostgreSQL, the single writer on SQLite) gives each job to one worker of
//! the replica hosting its cluster, the heartbeat in [`crate::job`] keeps it there, and the
//! reaper hands it back to the queue when its holder stops renewing.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use rewind_backup::{BackupError, load_manifest, take_snapshot};
use rewind_domain::Timestamp;
use rewind_domain::cluster::MONGODB_VERSION;
use rewind_domain::snapshot::{Snapshot, SnapshotStatus};
use rewind_engine::Engine;
use rewind_store::{Claimed, Lease, MetadataStore, Release};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::backups::{Backups, cluster_prefix, repository};
use crate::job::{self, Checkpoint, Ended};

/// How often the worker looks for work when idle.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How often lapsed leases, expired snapshots and expired tokens are swept: these change
/// on the scale of the lease, so sweeping on every poll would only add writes.
const SWEEP_INTERVAL: Duration = Duration::from_secs(5);
/// The most blob objects of deleted clusters one sweep removes.
const BLOB_DELETES_PER_SWEEP: usize = 10_000;
/// Attempts of one job (lapsed claims and transient failures alike) before it fails.
const MAX_ATTEMPTS: u32 = 3;

/// What one worker needs besides the store.
#[derive(Clone)]
pub struct WorkerConfig {
    /// The blob store and the clusters running here.
    pub backups: Backups,
    /// Where download restores are packaged.
    pub downloads: PathBuf,
    /// The base URL download links start with.
    pub public_url: String,
    /// The replica this worker runs in: it takes the jobs of the clusters the replica hosts.
    pub replica: String,
    /// Names this worker in the leases it takes (replica, process and worker number).
    pub owner: String,
    /// How long a claim lasts: a job whose worker died goes back to the queue after this.
    pub lease: Duration,
    /// How long a running job gets to reach a checkpoint once shutdown starts.
    pub shutdown_grace: Duration,
    /// Fault injection for tests: the least time a snapshot step takes.
    pub fault_snapshot_delay: Duration,
    /// How long a download link stays valid.
    pub download_link: Duration,
    /// Fault injection for tests: how long a restore waits before swapping its data in.
    pub fault_restore_delay: Duration,
}

impl WorkerConfig {
    /// A lease for this worker from `now`.
    pub fn lease_from(&self, now: Timestamp) -> Lease {
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
            let snapshot = take_one(&store, &config, &stop)
                .await
                .unwrap_or_else(|error| {
                    tracing::error!(error = format!("{error:#}"), "snapshot step failed");
                    false
                });
            let restore = crate::restore::take_one(&store, &config, &stop)
                .await
                .unwrap_or_else(|error| {
                    tracing::error!(error = format!("{error:#}"), "restore step failed");
                    false
                });
            let worked = snapshot || restore;
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
    let reaped = store
        .reap_restore_leases(Timestamp::now(), MAX_ATTEMPTS)
        .await?;
    if reaped > 0 {
        tracing::warn!(
            restore_jobs = reaped,
            "reclaimed restore jobs whose worker stopped before finishing"
        );
    }
    for snapshot in store.expired_snapshots(Timestamp::now()).await? {
        remove_snapshot_data(store, config, &snapshot).await?;
        store.delete_snapshot(snapshot.id, Timestamp::now()).await?;
        tracing::info!(snapshot.id = %snapshot.id, "expired snapshot removed with its data");
    }
    queue_scheduled_snapshots(store, config).await?;
    store.expire_downloads(Timestamp::now()).await?;
    store.delete_expired_access_tokens(Timestamp::now()).await?;
    remove_deleted_clusters_backups(store, config).await
}

/// Removes the backups of deleted clusters (their snapshot rows went with them), at most
/// [`BLOB_DELETES_PER_SWEEP`] objects a sweep so the worker gets back to jobs. A deletion is
/// acted on once a lease old, when a snapshot that was running has stopped writing (its
/// lease renewals failed); a cluster is forgotten only once a sweep finds nothing left of
/// it, so an object a late writer added is removed too. A cluster that cannot be cleaned now
/// is logged and tried again next sweep, without holding up the others.
async fn remove_deleted_clusters_backups(
    store: &dyn MetadataStore,
    config: &WorkerConfig,
) -> anyhow::Result<()> {
    let lease = i64::try_from(config.lease.as_millis()).unwrap_or(i64::MAX);
    let before = Timestamp::now().plus_millis(-lease);
    let mut budget = BLOB_DELETES_PER_SWEEP;
    for cluster in store.deleted_cluster_backups(before).await? {
        if budget == 0 {
            break;
        }
        let blobs = config.backups.blobs.clone();
        let prefix = cluster_prefix(cluster);
        let removed = tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
            let keys = blobs.list(&prefix)?;
            for key in keys.iter().take(budget) {
                blobs.delete(key)?;
            }
            Ok(keys.len())
        })
        .await?;
        match removed {
            Ok(0) => store.forget_deleted_cluster_backups(cluster).await?,
            Ok(found) => {
                let removed = found.min(budget);
                budget -= removed;
                tracing::info!(cluster.id = %cluster, objects = removed, left = found - removed, "deleted cluster's backups removed");
            }
            Err(error) => {
                tracing::error!(cluster.id = %cluster, error = format!("{error:#}"), "removing a deleted cluster's backups failed; retrying next sweep");
            }
        }
    }
    Ok(())
}

/// Queues the snapshot of each hosted cluster's latest due policy slot, once per slot (the
/// store refuses a second snapshot of a slot, whichever replica or worker asks).
async fn queue_scheduled_snapshots(
    store: &dyn MetadataStore,
    config: &WorkerConfig,
) -> anyhow::Result<()> {
    let now = Timestamp::now();
    for cluster in config.backups.clusters.running().await {
        if !cluster.backup_enabled {
            continue;
        }
        let Some(schedule) = store.get_schedule(cluster.id).await? else {
            continue;
        };
        let Some((slot, due)) = schedule.last_due(now) else {
            continue;
        };
        if slot <= cluster.created_at {
            continue;
        }
        let snapshot = Snapshot::scheduled(
            cluster.group_id,
            cluster.id,
            cluster.name.clone(),
            &due,
            now,
        );
        if store.insert_scheduled_snapshot(&snapshot, slot).await? {
            tracing::info!(cluster.id = %cluster.id, snapshot.id = %snapshot.id, frequency = %snapshot.frequency_type, "scheduled snapshot queued");
        }
    }
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
        .claim_queued_snapshot(
            &config.replica,
            MONGODB_VERSION,
            &config.lease_from(now),
            now,
        )
        .await?
    else {
        return Ok(false);
    };
    let owner = config.owner.as_str();
    tracing::info!(snapshot.id = %snapshot.id, %owner, attempt, "snapshot started");
    let Some(engines) = config.backups.clusters.engines(snapshot.cluster_id).await else {
        // Claims take only served clusters, but the address a replica recorded survives its
        // restart: the cluster is starting again here. Wait for it rather than fail.
        store
            .release_snapshot(
                snapshot.id,
                owner,
                Release::NotReady {
                    retry_at: Timestamp::now().plus_millis(500),
                },
            )
            .await?;
        tracing::info!(snapshot.id = %snapshot.id, "snapshot waits for its cluster to start");
        return Ok(false);
    };
    let (blobs, delay) = (config.backups.blobs.clone(), config.fault_snapshot_delay);
    let step = {
        let snapshot = snapshot.clone();
        move |cancel: &AtomicBool| capture(&blobs, &engines, &snapshot, delay, cancel)
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
                // A new replay base: gaps of point-in-time history before it close here.
                store
                    .close_pit_gaps(snapshot.cluster_id, snapshot.requested_at, now)
                    .await?;
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

/// Removes an expired snapshot's manifests and the chunks no other snapshot uses.
///
/// The replica sets come from the cluster's record, so a paused (not running) cluster's
/// expired snapshots are removed too; a deleted cluster's go with all its backups.
async fn remove_snapshot_data(
    store: &dyn MetadataStore,
    config: &WorkerConfig,
    snapshot: &Snapshot,
) -> anyhow::Result<()> {
    let blobs = config.backups.blobs.clone();
    let (cluster, id) = (snapshot.cluster_id, snapshot.id.to_string());
    let prefixes: Vec<String> = match store
        .get_cluster(snapshot.group_id, &snapshot.cluster_name)
        .await?
    {
        Some(record) if record.id == cluster => record
            .replica_set_names()
            .iter()
            .map(|set| repository(cluster, set))
            .collect(),
        _ => Vec::new(),
    };
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        for prefix in prefixes {
            match load_manifest(blobs.as_ref(), &prefix, &id) {
                Ok(manifest) => {
                    rewind_backup::delete_snapshot(blobs.as_ref(), &prefix, &manifest, &[])?;
                }
                Err(BackupError::Blob(rewind_backup::BlobError::NotFound { .. })) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    })
    .await?
}

/// Snapshots every replica set of a cluster from a consistent read view of each; returns
/// the compressed bytes its snapshots reference. Chunks are content-addressed and the
/// manifest is written last, so a re-run after a crash finishes the job correctly.
fn capture(
    blobs: &Arc<dyn rewind_backup::BlobStore>,
    engines: &[(String, Arc<Engine>)],
    snapshot: &Snapshot,
    delay: Duration,
    cancel: &AtomicBool,
) -> std::io::Result<Checkpoint<i64>> {
    if !job::pause(delay, cancel) {
        return Ok(Checkpoint::Cancelled);
    }
    let mut size = 0u64;
    for (set, engine) in engines {
        let prefix = repository(snapshot.cluster_id, set);
        let view = engine.read_view().map_err(std::io::Error::other)?;
        match take_snapshot(
            &view,
            blobs.as_ref(),
            &prefix,
            &snapshot.id.to_string(),
            cancel,
            &mut |_| {},
        ) {
            Ok(taken) => {
                // What the snapshot keeps: its chunks (compressed) and its manifest.
                let manifest = serde_json::to_vec(&taken.manifest).map_or(0, |bytes| bytes.len());
                size += taken.stats.compressed_bytes + manifest as u64;
            }
            Err(BackupError::Cancelled) => return Ok(Checkpoint::Cancelled),
            Err(error) => return Err(std::io::Error::other(error.to_string())),
        }
    }
    Ok(Checkpoint::Done(i64::try_from(size).unwrap_or(i64::MAX)))
}
