//! Rebuilds a replica set this replica has no data for (a cluster taken over from a dead
//! replica) from the blob store: its latest completed snapshot, then every oplog entry
//! captured since. Writes after the last capture (at most about a second for a `pitEnabled`
//! cluster; everything since the snapshot otherwise) are lost with the dead replica.

use std::sync::atomic::AtomicBool;

use rewind_backup::{
    BackupError, BlobError, list_oplog_slices, load_manifest, replay_oplog, restore_into,
};
use rewind_domain::Timestamp;
use rewind_domain::cluster::Cluster;
use rewind_engine::Engine;
use rewind_store::MetadataStore;

use super::{HostingConfig, layout};
use crate::backups::repository;

/// Seeds `set_name`'s data when a completed snapshot of it exists; otherwise the replica set
/// starts empty (a new cluster).
pub async fn from_backups(
    store: &dyn MetadataStore,
    config: &HostingConfig,
    cluster: &Cluster,
    set_name: &str,
) -> anyhow::Result<()> {
    let Some(snapshot) = store
        .latest_completed_snapshot(cluster.id, Timestamp::now())
        .await?
    else {
        return Ok(());
    };
    let (blobs, options) = (config.blobs.clone(), config.engine.clone());
    let (data_dir, id, set) = (config.data_dir.clone(), cluster.id, set_name.to_owned());
    let snapshot_id = snapshot.id.to_string();
    let seeded = tokio::task::spawn_blocking(move || -> anyhow::Result<Option<u64>> {
        let prefix = repository(id, &set);
        let manifest = match load_manifest(blobs.as_ref(), &prefix, &snapshot_id) {
            Ok(manifest) => manifest,
            // A snapshot stored in a blob store this replica does not share.
            Err(BackupError::Blob(BlobError::NotFound { .. })) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        let generation = layout::new_generation(&data_dir, id);
        let cancel = AtomicBool::new(false);
        restore_into(blobs.as_ref(), &prefix, &manifest, &generation, &cancel, &mut |_| {})?;
        let slices = list_oplog_slices(blobs.as_ref(), &prefix)?;
        let mut replayed = 0;
        if let (Some(after), Some(last)) = (manifest.optime, slices.last().map(|slice| slice.to)) {
            let engine = Engine::open(&generation, options)?;
            match replay_oplog(&engine, blobs.as_ref(), &slices, after, last, &cancel, &mut |_| {}) {
                Ok(stats) => replayed = stats.applied,
                Err(error) => tracing::warn!(%error, "oplog since the snapshot not replayed; the cluster holds the snapshot"),
            }
        }
        layout::swap(&data_dir, id, &set, &generation)?;
        Ok(Some(replayed))
    })
    .await??;
    match seeded {
        Some(replayed) => {
            tracing::info!(cluster.id = %cluster.id, snapshot.id = %snapshot.id, oplog_entries = replayed, "replica set rebuilt from its backups")
        }
        None => {
            tracing::warn!(cluster.id = %cluster.id, snapshot.id = %snapshot.id, "the cluster's snapshots are not in this replica's blob store; it starts empty")
        }
    }
    Ok(())
}
