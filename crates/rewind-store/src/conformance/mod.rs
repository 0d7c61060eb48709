//! The behaviour every [`MetadataStore`] implementation must show. Each implementation's test
//! binary calls [`run_all`] on a fresh, empty store.

mod backups;
mod credentials;
mod jobs;
mod projects;
mod restore_runs;
mod slots_and_gaps;

use rewind_domain::Timestamp;
use rewind_domain::cluster::ClusterState;

use crate::{Lease, MetadataStore};

/// Runs every conformance check against `store`, which must start empty. Panics on the first
/// behaviour that differs, naming it.
pub async fn run_all(store: &dyn MetadataStore) {
    let (org, group) = projects::orgs_and_groups(store).await;
    let cluster = projects::clusters_and_schedules(store, &group).await;
    projects::cluster_hosting(store, &group).await;
    assert!(
        store
            .record_cluster_address(
                cluster.id,
                HOST,
                Some("127.0.0.1:27100"),
                ClusterState::Idle
            )
            .await
            .unwrap(),
        "the suite's cluster is served by its host"
    );
    let snapshot = backups::snapshots(store, &cluster).await;
    backups::restore_jobs(store, &group, &cluster, &snapshot).await;
    credentials::credentials(store, &org, &group).await;
    jobs::leases_lapse_back_to_the_queue(store, &cluster).await;
    jobs::heartbeats_and_releases(store, &cluster).await;
    jobs::cancel_and_complete_race(store, &group, &cluster, &snapshot).await;
    restore_runs::restore_runs(store, &group, &cluster, &snapshot).await;
    slots_and_gaps::scheduled_snapshots_once_per_slot(store, &cluster).await;
    slots_and_gaps::pit_gaps_open_and_close(store, &cluster).await;
    projects::dead_replicas_clusters_move_once(store, &group).await;
    projects::group_deletion_needs_no_clusters(store, &group, &cluster).await;
}

/// The replica hosting the suite's clusters (the hosting check assigns them to it).
pub(crate) const HOST: &str = "replica-a";

/// The lease holder the suite claims jobs as.
pub(crate) const WORKER: &str = "conformance-worker";

pub(crate) fn lease() -> Lease {
    Lease {
        owner: WORKER.to_owned(),
        until: Timestamp::now().plus_millis(30_000),
    }
}
