//! Job leases: claims, heartbeats, releases, reaping, and guarded state transitions.

use rewind_domain::cluster::Cluster;
use rewind_domain::group::Group;
use rewind_domain::restore_job::{RestoreJob, RestoreJobState};
use rewind_domain::restore_request::DeliveryType;
use rewind_domain::snapshot::{Snapshot, SnapshotStatus};
use rewind_domain::{ObjectId, Timestamp};

use super::{HOST, WORKER, lease};
use crate::{Lease, MetadataStore, Release, RestoreGuard};

pub(super) async fn leases_lapse_back_to_the_queue(store: &dyn MetadataStore, cluster: &Cluster) {
    let snapshot = Snapshot::on_demand(
        cluster.group_id,
        cluster.id,
        cluster.name.clone(),
        None,
        1,
        Timestamp::now(),
    );
    store.insert_on_demand_snapshot(&snapshot).await.unwrap();
    let lapsed = Lease {
        owner: "dead-worker".into(),
        until: Timestamp::now().plus_millis(-1),
    };
    let claimed = store
        .claim_queued_snapshot(HOST, "8.0.4", &lapsed, Timestamp::now())
        .await
        .unwrap()
        .expect("claimed");
    assert_eq!(claimed.job.id, snapshot.id);
    assert_eq!(
        store
            .reap_snapshot_leases(Timestamp::now(), 3)
            .await
            .unwrap(),
        1,
        "the lapsed lease is reaped"
    );
    assert_eq!(
        store
            .get_snapshot(cluster.id, snapshot.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        SnapshotStatus::Queued
    );
    assert!(
        !store
            .finish_snapshot(
                snapshot.id,
                "dead-worker",
                SnapshotStatus::Completed,
                Timestamp::now(),
                1,
                None
            )
            .await
            .unwrap(),
        "a worker that lost its lease cannot finish the job"
    );
    let live = store
        .claim_queued_snapshot(HOST, "8.0.4", &lease(), Timestamp::now())
        .await
        .unwrap()
        .expect("claimed again");
    assert_eq!(
        store
            .reap_snapshot_leases(Timestamp::now(), 3)
            .await
            .unwrap(),
        0,
        "a live lease is left alone"
    );
    assert!(
        store
            .finish_snapshot(
                live.job.id,
                WORKER,
                SnapshotStatus::Completed,
                Timestamp::now(),
                1,
                None
            )
            .await
            .unwrap()
    );
    // A job whose every attempt lapsed fails with a reason instead of looping forever.
    let doomed = Snapshot::on_demand(
        cluster.group_id,
        cluster.id,
        cluster.name.clone(),
        None,
        1,
        Timestamp::now(),
    );
    store.insert_on_demand_snapshot(&doomed).await.unwrap();
    for _ in 0..2 {
        store
            .claim_queued_snapshot(HOST, "8.0.4", &lapsed, Timestamp::now())
            .await
            .unwrap()
            .expect("claimed");
        store
            .reap_snapshot_leases(Timestamp::now(), 2)
            .await
            .unwrap();
    }
    let failed = store
        .get_snapshot(cluster.id, doomed.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.status, SnapshotStatus::Failed);
    assert!(
        failed
            .failure_reason
            .unwrap()
            .contains("stopped before finishing")
    );
}

/// A worker's heartbeat keeps its claim; a shutdown hands the job back without spending an
/// attempt; a transient failure hands it back behind a backoff.
pub(super) async fn heartbeats_and_releases(store: &dyn MetadataStore, cluster: &Cluster) {
    let snapshot = Snapshot::on_demand(
        cluster.group_id,
        cluster.id,
        cluster.name.clone(),
        None,
        1,
        Timestamp::now(),
    );
    store.insert_on_demand_snapshot(&snapshot).await.unwrap();
    let short = Lease {
        owner: WORKER.to_owned(),
        until: Timestamp::now().plus_millis(-1),
    };
    let claimed = store
        .claim_queued_snapshot(HOST, "8.0.4", &short, Timestamp::now())
        .await
        .unwrap()
        .expect("claimed");
    assert_eq!(claimed.job.id, snapshot.id);
    assert_eq!(claimed.attempt, 1);
    assert!(
        store
            .renew_snapshot_lease(snapshot.id, &lease())
            .await
            .unwrap(),
        "the holder renews its lease"
    );
    assert_eq!(
        store
            .reap_snapshot_leases(Timestamp::now(), 3)
            .await
            .unwrap(),
        0,
        "a renewed lease is not reaped"
    );
    let stranger = Lease {
        owner: "another-worker".into(),
        until: Timestamp::now().plus_millis(30_000),
    };
    assert!(
        !store
            .renew_snapshot_lease(snapshot.id, &stranger)
            .await
            .unwrap(),
        "only the holder renews"
    );
    assert!(
        !store
            .release_snapshot(snapshot.id, "another-worker", Release::Shutdown)
            .await
            .unwrap(),
        "only the holder releases"
    );

    // Shutdown: back in the queue at once, the attempt refunded (three claims in a row
    // then stay within a limit of three attempts after the reaper runs).
    assert!(
        store
            .release_snapshot(snapshot.id, WORKER, Release::Shutdown)
            .await
            .unwrap()
    );
    let reclaimed = store
        .claim_queued_snapshot(HOST, "8.0.4", &lease(), Timestamp::now())
        .await
        .unwrap()
        .expect("released for shutdown, claimable at once");
    assert_eq!(reclaimed.job.id, snapshot.id);
    assert_eq!(
        reclaimed.attempt, 1,
        "a shutdown release gives the attempt back"
    );

    // Not ready (its cluster is starting): back later, the attempt given back.
    let ready_at = Timestamp::now().plus_millis(60_000);
    assert!(
        store
            .release_snapshot(
                snapshot.id,
                WORKER,
                Release::NotReady { retry_at: ready_at }
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_queued_snapshot(HOST, "8.0.4", &lease(), Timestamp::now())
            .await
            .unwrap()
            .is_none(),
        "not claimable before it is ready"
    );
    let reclaimed = store
        .claim_queued_snapshot(HOST, "8.0.4", &lease(), ready_at)
        .await
        .unwrap()
        .expect("claimable once ready");
    assert_eq!(reclaimed.attempt, 1, "waiting did not cost an attempt");

    // Transient failure: back in the queue, but not claimable before the backoff ends.
    let retry_at = Timestamp::now().plus_millis(60_000);
    assert!(
        store
            .release_snapshot(
                snapshot.id,
                WORKER,
                Release::Retry {
                    retry_at,
                    error: "disk full"
                }
            )
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_snapshot(cluster.id, snapshot.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        SnapshotStatus::Queued
    );
    assert!(
        store
            .claim_queued_snapshot(HOST, "8.0.4", &lease(), Timestamp::now())
            .await
            .unwrap()
            .is_none(),
        "not claimable during its backoff"
    );
    let after_backoff = store
        .claim_queued_snapshot(HOST, "8.0.4", &lease(), retry_at)
        .await
        .unwrap()
        .expect("claimable once the backoff ends");
    assert_eq!(after_backoff.job.id, snapshot.id);
    assert_eq!(
        after_backoff.attempt, 2,
        "a retry counts as another attempt"
    );
    assert!(
        store
            .finish_snapshot(
                snapshot.id,
                WORKER,
                SnapshotStatus::Completed,
                Timestamp::now(),
                1,
                None
            )
            .await
            .unwrap()
    );
}

/// A cancel and a completion racing on one job: the compare-and-set lets exactly one win,
/// and the stored state is the winner's.
pub(super) async fn cancel_and_complete_race(
    store: &dyn MetadataStore,
    group: &Group,
    cluster: &Cluster,
    snapshot: &Snapshot,
) {
    for round in 0..20 {
        let job = RestoreJob {
            id: ObjectId::generate(),
            group_id: group.id,
            cluster_name: cluster.name.clone(),
            delivery_type: DeliveryType::Download,
            snapshot_id: Some(snapshot.id),
            target_group_id: None,
            target_cluster_name: None,
            pit: None,
            state: RestoreJobState::Queued,
            created_at: Timestamp::now(),
            snapshot_taken_at: snapshot.created_at,
            finished_at: None,
            expires_at: None,
            delivery_urls: Vec::new(),
            failure_reason: None,
            progress: None,
        };
        let guard = RestoreGuard {
            target: None,
            download_snapshot: None,
            max_group_downloads: None,
        };
        store.insert_restore_job(&job, &guard).await.unwrap();
        let now = Timestamp::now();
        assert!(
            store
                .transition_restore_job(
                    job.id,
                    &[RestoreJobState::Queued],
                    RestoreJobState::InProgress,
                    now
                )
                .await
                .unwrap()
        );
        let cancel = store.transition_restore_job(
            job.id,
            &[RestoreJobState::Queued, RestoreJobState::InProgress],
            RestoreJobState::Cancelled,
            now,
        );
        let complete = store.transition_restore_job(
            job.id,
            &[RestoreJobState::InProgress],
            RestoreJobState::Completed,
            now,
        );
        // Alternate which is polled first so neither always wins by ordering alone.
        let (cancelled, completed) = if round % 2 == 0 {
            tokio::join!(cancel, complete)
        } else {
            let (completed, cancelled) = tokio::join!(complete, cancel);
            (cancelled, completed)
        };
        let (cancelled, completed) = (cancelled.unwrap(), completed.unwrap());
        assert!(
            cancelled ^ completed,
            "exactly one of cancel ({cancelled}) and complete ({completed}) wins"
        );
        let stored = store
            .get_restore_job(group.id, &cluster.name, job.id)
            .await
            .unwrap()
            .unwrap();
        let expected = if cancelled {
            RestoreJobState::Cancelled
        } else {
            RestoreJobState::Completed
        };
        assert_eq!(stored.state, expected, "the stored outcome is the winner's");
    }
}
