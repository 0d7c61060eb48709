//! Continuous oplog capture for clusters with continuous cloud backup (`pitEnabled`).
//!
//! Every second, for each replica set of each such cluster this replica hosts: a no-op entry
//! marks the second (as mongod's periodic no-op writer does, so a point in time is covered
//! once a later entry exists), then the entries since the last capture go to the blob store
//! as one slice with its [from, to] optimes. A gap (entries truncated from the oplog before
//! they were captured, or a timeline restarted by a restore) is logged and recorded in the
//! store, so that point-in-time requests across it are refused up front, and capture starts a
//! new timeline. Slices older than the cluster's `restoreWindowDays` are pruned once a minute.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bson::{Timestamp, doc};
use rewind_backup::{BackupError, capture_oplog, list_oplog_slices, prune_oplog_slices};
use rewind_domain::ObjectId;
use rewind_domain::pit_gap::{PitGap, PitGapCause};
use rewind_engine::Engine;
use rewind_store::MetadataStore;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::backups::{Backups, repository};

/// How often oplog is captured: the most a point-in-time restore lags behind writes.
const CAPTURE_INTERVAL: Duration = Duration::from_secs(1);
/// How often slices past the restore window are pruned.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// Starts the capture loop; returns when `stop` turns true.
pub fn spawn(
    store: Arc<dyn MetadataStore>,
    backups: Backups,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        // The last optime captured per repository (`None`: resume from the blob store).
        let mut last: HashMap<String, Option<Timestamp>> = HashMap::new();
        let mut last_prune: Option<std::time::Instant> = None;
        while !*stop.borrow() {
            if let Err(error) = capture_all(store.as_ref(), &backups, &mut last).await {
                tracing::error!(error = format!("{error:#}"), "oplog capture failed");
            }
            if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_INTERVAL) {
                if let Err(error) = prune_all(store.as_ref(), &backups).await {
                    tracing::error!(error = format!("{error:#}"), "oplog pruning failed");
                }
                last_prune = Some(std::time::Instant::now());
            }
            tokio::select! {
                _ = stop.changed() => {}
                _ = tokio::time::sleep(CAPTURE_INTERVAL) => {}
            }
        }
    })
}

async fn capture_all(
    store: &dyn MetadataStore,
    backups: &Backups,
    last: &mut HashMap<String, Option<Timestamp>>,
) -> anyhow::Result<()> {
    let pit_clusters: Vec<ObjectId> = backups
        .clusters
        .running()
        .await
        .into_iter()
        .filter(|cluster| cluster.pit_enabled)
        .map(|cluster| cluster.id)
        .collect();
    for cluster in pit_clusters {
        let Some(engines) = backups.clusters.engines(cluster).await else {
            continue;
        };
        for (set, engine) in engines {
            let prefix = repository(cluster, &set);
            let known = last.get(&prefix).copied();
            let blobs = backups.blobs.clone();
            let (key, engine) = (prefix.clone(), engine.clone());
            let (captured, gap_from) = tokio::task::spawn_blocking(move || {
                capture_one(&engine, blobs.as_ref(), &key, known)
            })
            .await??;
            last.insert(prefix, captured);
            if let Some(from) = gap_from {
                // A snapshot requested after the gap began is a replay base past it; a target
                // whose replay would still cross lost entries is refused by the restore itself.
                store
                    .open_pit_gap(&PitGap {
                        cluster_id: cluster,
                        from: rewind_domain::Timestamp::from_secs(i64::from(from.time)),
                        closed_at: None,
                        cause: PitGapCause::OplogLost,
                    })
                    .await?;
            }
        }
    }
    Ok(())
}

/// Removes each pitEnabled cluster's slices older than its restore window: a point in time
/// before the window cannot be asked for (the API refuses it), so its oplog is not kept.
async fn prune_all(store: &dyn MetadataStore, backups: &Backups) -> anyhow::Result<()> {
    let now = rewind_domain::Timestamp::now();
    for cluster in backups.clusters.running().await {
        if !cluster.pit_enabled {
            continue;
        }
        let Some(schedule) = store.get_schedule(cluster.id).await? else {
            continue;
        };
        let Some(engines) = backups.clusters.engines(cluster.id).await else {
            continue;
        };
        let window_start = now.plus_days(-i64::from(schedule.restore_window_days.max(1)));
        let before = Timestamp {
            time: u32::try_from(window_start.secs()).unwrap_or(0),
            increment: 0,
        };
        for (set, _) in engines {
            let (blobs, prefix) = (backups.blobs.clone(), repository(cluster.id, &set));
            let pruned = tokio::task::spawn_blocking(move || {
                prune_oplog_slices(blobs.as_ref(), &prefix, before)
            })
            .await??;
            if pruned > 0 {
                tracing::info!(cluster.id = %cluster.id, slices = pruned, "pruned oplog slices past the restore window");
            }
        }
    }
    Ok(())
}

/// Captures one repository's new entries; returns the last optime captured and, when entries
/// were lost since the previous capture, the last optime captured before them.
fn capture_one(
    engine: &Engine,
    blobs: &dyn rewind_backup::BlobStore,
    prefix: &str,
    known: Option<Option<Timestamp>>,
) -> anyhow::Result<(Option<Timestamp>, Option<Timestamp>)> {
    let mut after = match known {
        Some(after) => after,
        None => list_oplog_slices(blobs, prefix)?
            .last()
            .map(|slice| slice.to),
    };
    engine.write(|txn| txn.noop(&doc! {"msg": "periodic noop"}))?;
    let mut gap_from = None;
    loop {
        match capture_oplog(engine, blobs, prefix, after) {
            Ok(Some(slice)) => after = Some(slice.to),
            Ok(None) => return Ok((after, gap_from)),
            Err(BackupError::Gap { from, to }) => {
                tracing::warn!(
                    repository = prefix,
                    ?from,
                    ?to,
                    "oplog gap: entries were truncated (or the data was restored) before capture; starting a new timeline"
                );
                gap_from = Some(from);
                after = None;
                match capture_oplog(engine, blobs, prefix, None)? {
                    Some(slice) => after = Some(slice.to),
                    None => return Ok((after, gap_from)),
                }
            }
            Err(error) => return Err(error.into()),
        }
    }
}
