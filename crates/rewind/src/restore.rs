//! Runs restore jobs: `download` packages a snapshot as mongodump files (one per replica
//! set) behind one-time links; `automated` and `pointInTime` build the target's new data aside (a snapshot, then
//! oplog replay up to the target optime) and swap it in atomically.
//!
//! The target cluster refuses commands from the moment its job starts (code 91, "restore in
//! progress") until the new data serves, or until a failed job hands it back untouched.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context;
use rewind_api::auth::secrets::{new_access_token, sha256_hex};
use rewind_api::{download_stem, packaged_file};
use rewind_backup::{
    BlobStore, Manifest, PitTarget, ReplayStats, list_oplog_slices, load_manifest, restore_into,
    restore_to_point,
};
use rewind_domain::cluster::{Cluster, MONGODB_VERSION};
use rewind_domain::pit_gap::{PitGap, PitGapCause};
use rewind_domain::restore_job::{RestoreJob, RestoreJobState, RestoreProgress};
use rewind_domain::restore_request::{DeliveryType, PitTarget as AtlasPit};
use rewind_domain::snapshot::Snapshot;
use rewind_domain::{ObjectId, Timestamp};
use rewind_dump::{DumpOptions, write_archive, write_tar_gz};
use rewind_store::{Claimed, MetadataStore, RestoreOutcome};
use tokio::sync::watch;

use crate::backups::{SnapshotDump, repository};
use crate::durable::sync_dir;
use crate::job::{self, Checkpoint, Ended};
use crate::worker::WorkerConfig;

/// Claims one queued restore job this replica can run and runs it to an end; false when
/// there was none.
pub async fn take_one(
    store: &Arc<dyn MetadataStore>,
    config: &WorkerConfig,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<bool> {
    let now = Timestamp::now();
    let Some(Claimed { job, attempt }) = store
        .claim_queued_restore_job(&config.replica, &config.lease_from(now), now)
        .await?
    else {
        return Ok(false);
    };
    let owner = config.owner.as_str();
    tracing::info!(restore_job.id = %job.id, %owner, attempt, delivery_type = job.delivery_type.as_str(), "restore started");
    let outcome = match run(store, config, stop, &job).await {
        Ok(Some(outcome)) => outcome,
        Ok(None) => return Ok(true),
        Err(error) => {
            tracing::error!(restore_job.id = %job.id, error = format!("{error:#}"), "restore failed");
            failed(format!("{error:#}"))
        }
    };
    let state = outcome.state;
    if store.finish_restore_job(job.id, owner, &outcome).await? {
        tracing::info!(restore_job.id = %job.id, %owner, state = state.as_str(), "restore ended");
    } else {
        // Cancelled meanwhile (or the lease was lost): nothing this run produced is served.
        remove_download(&config.downloads, job.id).await;
        tracing::warn!(restore_job.id = %job.id, %owner, "restore ended after it was cancelled or taken over; its result is discarded");
    }
    Ok(true)
}

fn failed(reason: String) -> RestoreOutcome {
    RestoreOutcome {
        state: RestoreJobState::Failed,
        finished_at: Timestamp::now(),
        failure_reason: Some(reason),
        delivery_urls: Vec::new(),
        expires_at: None,
        download_token_sha256: None,
        progress: None,
    }
}

/// Runs a claimed job; `None` when it was handed back (shutdown, lost lease).
async fn run(
    store: &Arc<dyn MetadataStore>,
    config: &WorkerConfig,
    stop: &watch::Receiver<bool>,
    job: &RestoreJob,
) -> anyhow::Result<Option<RestoreOutcome>> {
    let source = store
        .get_cluster(job.group_id, &job.cluster_name)
        .await?
        .context("the source cluster no longer exists")?;
    let snapshot_id = job.snapshot_id.context("the job names no snapshot")?;
    let snapshot = store
        .get_snapshot(source.id, snapshot_id)
        .await?
        .context("the snapshot no longer exists")?;
    match job.delivery_type {
        DeliveryType::Download => download(store, config, stop, job, &source, &snapshot).await,
        DeliveryType::Automated | DeliveryType::PointInTime => {
            let (group, name) = job
                .target_group_id
                .zip(job.target_cluster_name.clone())
                .context("the job names no target cluster")?;
            let target = store
                .get_cluster(group, &name)
                .await?
                .context("the target cluster no longer exists")?;
            into_cluster(store, config, stop, job, &source, &snapshot, &target).await
        }
    }
}

/// Runs `step` under the job's lease; maps a handed-back run to `None`.
async fn leased<T: Send + 'static>(
    store: &Arc<dyn MetadataStore>,
    config: &WorkerConfig,
    stop: &watch::Receiver<bool>,
    job: ObjectId,
    step: impl FnOnce(&AtomicBool) -> std::io::Result<Checkpoint<T>> + Send + 'static,
) -> anyhow::Result<Option<T>> {
    let heartbeat = {
        let (store, config) = (store.clone(), config.clone());
        move || {
            let (store, lease) = (store.clone(), config.lease_from(Timestamp::now()));
            async move { store.renew_restore_lease(job, &lease).await }
        }
    };
    match job::run(
        step,
        heartbeat,
        config.lease / 3,
        stop.clone(),
        config.shutdown_grace,
    )
    .await
    {
        Ended::Finished(Ok(Checkpoint::Done(value))) => Ok(Some(value)),
        Ended::Finished(Ok(Checkpoint::Cancelled)) | Ended::ShutDown => {
            store
                .release_restore_job(job, &config.owner, rewind_store::Release::Shutdown)
                .await?;
            tracing::info!(restore_job.id = %job, "restore handed back for shutdown");
            Ok(None)
        }
        Ended::LeaseLost => {
            tracing::warn!(restore_job.id = %job, "restore lease lost or job cancelled; stopped");
            Ok(None)
        }
        Ended::Finished(Err(error)) => Err(error),
    }
}

/// Turns a step's error into an I/O error carrying its message, or a checkpoint on cancel.
fn step_error(error: rewind_backup::BackupError) -> std::io::Error {
    std::io::Error::other(error.to_string())
}

async fn download(
    store: &Arc<dyn MetadataStore>,
    config: &WorkerConfig,
    stop: &watch::Receiver<bool>,
    job: &RestoreJob,
    source: &Cluster,
    snapshot: &Snapshot,
) -> anyhow::Result<Option<RestoreOutcome>> {
    // One file per replica set; a replica set's file keeps Atlas's plain name.
    let sets = source.replica_set_names();
    let snapshot_id = snapshot.id.to_string();
    let files: Vec<(String, String)> = sets
        .iter()
        .map(|set| {
            let named = (sets.len() > 1).then_some(set.as_str());
            (
                repository(source.id, set),
                download_stem(&snapshot_id, named),
            )
        })
        .collect();
    let blobs = config.backups.blobs.clone();
    let (directory, job_id) = (config.downloads.join(job.id.to_string()), job.id);
    let stems: Vec<String> = files.iter().map(|(_, stem)| stem.clone()).collect();
    let started = Instant::now();
    let packaged = leased(store, config, stop, job.id, move |cancel| {
        let mut totals = Totals {
            bytes: 0,
            documents: 0,
        };
        for (prefix, stem) in &files {
            let manifest =
                load_manifest(blobs.as_ref(), prefix, &snapshot_id).map_err(step_error)?;
            match package(
                blobs.as_ref(),
                prefix,
                &manifest,
                &directory,
                job_id,
                stem,
                cancel,
            )? {
                Checkpoint::Done(packaged) => {
                    totals.bytes += packaged.bytes;
                    totals.documents += packaged.documents;
                }
                Checkpoint::Cancelled => return Ok(Checkpoint::Cancelled),
            }
        }
        Ok(Checkpoint::Done(totals))
    })
    .await?;
    let Some(manifest_totals) = packaged else {
        return Ok(None);
    };
    let token = new_access_token();
    let base = config.public_url.trim_end_matches('/');
    let urls = stems
        .iter()
        .map(|stem| format!("{base}/api/rewind/v1/downloads/{token}/{stem}.tar.gz"))
        .collect();
    let now = Timestamp::now();
    Ok(Some(RestoreOutcome {
        state: RestoreJobState::Completed,
        finished_at: now,
        failure_reason: None,
        delivery_urls: urls,
        expires_at: Some(
            now.plus_millis(i64::try_from(config.download_link.as_millis()).unwrap_or(i64::MAX)),
        ),
        download_token_sha256: Some(sha256_hex(&token)),
        progress: Some(progress(manifest_totals, 0, started)),
    }))
}

/// Bytes and documents of a snapshot.
#[derive(Clone, Copy)]
struct Totals {
    bytes: u64,
    documents: u64,
}

fn progress(totals: Totals, oplog_entries: u64, started: Instant) -> RestoreProgress {
    let seconds = started.elapsed().as_secs_f64().max(0.001);
    RestoreProgress {
        bytes_done: totals.bytes,
        bytes_total: totals.bytes,
        documents_done: totals.documents,
        documents_total: totals.documents,
        oplog_entries_applied: oplog_entries,
        bytes_per_second: (totals.bytes as f64 / seconds) as u64,
    }
}

/// Writes the tar.gz and the archive of one replica set's snapshot, named `stem`, each with
/// its size and SHA-256 beside it, durably.
fn package(
    blobs: &dyn BlobStore,
    prefix: &str,
    manifest: &Manifest,
    directory: &Path,
    job: ObjectId,
    stem: &str,
    cancel: &AtomicBool,
) -> std::io::Result<Checkpoint<Totals>> {
    std::fs::create_dir_all(directory)?;
    let source = SnapshotDump {
        blobs,
        prefix,
        manifest,
        cancel,
    };
    let options = DumpOptions::new(MONGODB_VERSION);
    let downloads = directory.parent().unwrap_or(directory);
    for archive in [false, true] {
        let path = packaged_file(downloads, &job.to_string(), stem, archive);
        let staged = path.with_extension("partial");
        let file = std::fs::File::create(&staged)?;
        let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
        let written = if archive {
            write_archive(&source, &mut writer, true, &options)
        } else {
            write_tar_gz(&source, &mut writer, &options)
        };
        let stats = match written {
            Ok(stats) => stats,
            Err(_) if cancel.load(Ordering::Relaxed) => return Ok(Checkpoint::Cancelled),
            Err(error) => return Err(error),
        };
        writer
            .into_inner()
            .map_err(|error| error.into_error())?
            .sync_all()?;
        std::fs::rename(&staged, &path)?;
        crate::durable::write_atomically(
            &path.with_extension("gz.sha256"),
            format!("{} {}\n", stats.sha256_hex(), stats.bytes).as_bytes(),
            0o644,
        )?;
    }
    sync_dir(directory)?;
    Ok(Checkpoint::Done(Totals {
        bytes: manifest.totals.logical_bytes,
        documents: manifest.totals.documents,
    }))
}

async fn remove_download(downloads: &Path, job: ObjectId) {
    match tokio::fs::remove_dir_all(downloads.join(job.to_string())).await {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            tracing::error!(%error, restore_job.id = %job, "removing a discarded download failed");
        }
        _ => {}
    }
}

/// One replica set to rebuild: where the snapshot is, where the new data goes.
struct Rebuild {
    set_name: String,
    prefix: String,
    generation: PathBuf,
}

async fn into_cluster(
    store: &Arc<dyn MetadataStore>,
    config: &WorkerConfig,
    stop: &watch::Receiver<bool>,
    job: &RestoreJob,
    source: &Cluster,
    snapshot: &Snapshot,
    target: &Cluster,
) -> anyhow::Result<Option<RestoreOutcome>> {
    let (source_sets, target_sets) = (source.replica_set_names(), target.replica_set_names());
    anyhow::ensure!(
        source_sets.len() == target_sets.len(),
        "the target cluster has {} replica sets and the snapshot {}",
        target_sets.len(),
        source_sets.len()
    );
    let clusters = config.backups.clusters.clone();
    let rebuilds: Vec<Rebuild> = source_sets
        .iter()
        .zip(&target_sets)
        .map(|(source_set, target_set)| Rebuild {
            set_name: target_set.clone(),
            prefix: repository(source.id, source_set),
            generation: clusters.new_generation(target.id),
        })
        .collect();
    let pit = match (job.delivery_type, job.pit) {
        (DeliveryType::PointInTime, Some(pit)) => Some(pit_bound(pit)?),
        (DeliveryType::PointInTime, None) => anyhow::bail!("the job names no point in time"),
        _ => None,
    };
    clusters
        .set_unavailable(
            target.id,
            Some("a restore into this cluster is in progress"),
        )
        .await;
    let started = Instant::now();
    let blobs = config.backups.blobs.clone();
    let snapshot_id = snapshot.id.to_string();
    let plans: Vec<(String, PathBuf)> = rebuilds
        .iter()
        .map(|rebuild| (rebuild.prefix.clone(), rebuild.generation.clone()))
        .collect();
    let delay = config.fault_restore_delay;
    let built = leased(store, config, stop, job.id, move |cancel| {
        match build(blobs.as_ref(), &plans, &snapshot_id, pit, cancel)? {
            Checkpoint::Done(built) if job::pause(delay, cancel) => Ok(Checkpoint::Done(built)),
            _ => Ok(Checkpoint::Cancelled),
        }
    })
    .await;
    match built {
        Ok(Some((totals, replayed))) => {
            // From the swap until a snapshot of the new data completes, no point in time of
            // the target can be replayed (Atlas refuses that stretch too).
            let swapped_at = Timestamp::now();
            store
                .open_pit_gap(&PitGap {
                    cluster_id: target.id,
                    from: swapped_at,
                    closed_at: None,
                    cause: PitGapCause::Restored,
                })
                .await?;
            for rebuild in &rebuilds {
                clusters
                    .replace_data(target.id, &rebuild.set_name, &rebuild.generation)
                    .await?;
            }
            tracing::info!(cluster.id = %target.id, restore_job.id = %job.id, "restored data swapped in");
            // As Atlas does, a restored cluster gets a fresh snapshot.
            let fresh = Snapshot::on_demand(
                target.group_id,
                target.id,
                target.name.clone(),
                Some("after restore".into()),
                1,
                Timestamp::now(),
            );
            if let Err(error) = store.insert_on_demand_snapshot(&fresh).await {
                tracing::warn!(%error, cluster.id = %target.id, "no fresh snapshot after the restore");
            }
            Ok(Some(RestoreOutcome {
                state: RestoreJobState::Completed,
                finished_at: Timestamp::now(),
                failure_reason: None,
                delivery_urls: Vec::new(),
                expires_at: None,
                download_token_sha256: None,
                progress: Some(progress(totals, replayed, started)),
            }))
        }
        other => {
            // The old data was never touched: serve it again and drop what was built.
            clusters.set_unavailable(target.id, None).await;
            for rebuild in &rebuilds {
                let _ = tokio::fs::remove_dir_all(&rebuild.generation).await;
            }
            other.map(|_| None)
        }
    }
}

/// The inclusive optime bound of an Atlas point in time.
fn pit_bound(pit: AtlasPit) -> anyhow::Result<bson::Timestamp> {
    let target = match pit {
        AtlasPit::UtcSeconds(seconds) => {
            PitTarget::from_atlas(Some(i64::from(seconds)), None, None)
        }
        AtlasPit::Oplog { ts, inc } => {
            PitTarget::from_atlas(None, Some(i64::from(ts)), Some(i64::from(inc)))
        }
    };
    Ok(target?.bound())
}

/// Builds every replica set's new data: the snapshot, then (pointInTime) the captured oplog
/// up to `pit`, inclusive.
fn build(
    blobs: &dyn BlobStore,
    plans: &[(String, PathBuf)],
    snapshot_id: &str,
    pit: Option<bson::Timestamp>,
    cancel: &AtomicBool,
) -> std::io::Result<Checkpoint<(Totals, u64)>> {
    let mut totals = Totals {
        bytes: 0,
        documents: 0,
    };
    let mut replayed = 0;
    for (prefix, generation) in plans {
        let manifest = load_manifest(blobs, prefix, snapshot_id).map_err(step_error)?;
        let built = match pit {
            Some(up_to) => list_oplog_slices(blobs, prefix).and_then(|slices| {
                restore_to_point(
                    blobs,
                    prefix,
                    &manifest,
                    &slices,
                    up_to,
                    generation,
                    cancel,
                    &mut |_| {},
                )
            }),
            None => restore_into(blobs, prefix, &manifest, generation, cancel, &mut |_| {})
                .map(|stats| (stats, ReplayStats::default())),
        };
        match built {
            Ok((stats, replay)) => {
                totals.bytes += stats.bytes;
                totals.documents += stats.documents;
                replayed += replay.applied;
            }
            Err(rewind_backup::BackupError::Cancelled) => return Ok(Checkpoint::Cancelled),
            Err(error) => return Err(step_error(error)),
        }
    }
    Ok(Checkpoint::Done((totals, replayed)))
}
