//! Job leases: claims, heartbeats, releases, reaping, and guarded state transitions.

use rewind_domain::cluster::Cluster;
use rewind_domain::group::Group;
use rewind_domain::restore_job::{RestoreJob, RestoreJobState, RestoreProgress};
use rewind_domain::restore_request::DeliveryType;
use rewind_domain::snapshot::{Snapshot, SnapshotStatus};
use rewind_domain::{ObjectId, Timestamp};

use super::{HOST, WORKER, lease};
use crate::{DownloadLink, Lease, MetadataStore, Release, RestoreGuard, RestoreOutcome};

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

/// Restore jobs as work: only the replica hosting the cluster claims them; the holder
/// renews, reports progress and ends them; a cancelled job cannot be completed; a download
/// link is found by its token's hash, downloads completely once, and expires.
pub(super) async fn restore_runs(
    store: &dyn MetadataStore,
    group: &Group,
    cluster: &Cluster,
    snapshot: &Snapshot,
) {
    let download = |created_at| RestoreJob {
        id: ObjectId::generate(),
        group_id: group.id,
        cluster_name: cluster.name.clone(),
        delivery_type: DeliveryType::Download,
        snapshot_id: Some(snapshot.id),
        target_group_id: None,
        target_cluster_name: None,
        pit: None,
        state: RestoreJobState::Queued,
        created_at,
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
    let first = download(Timestamp::now());
    store.insert_restore_job(&first, &guard).await.unwrap();
    let now = Timestamp::now();
    assert!(
        store
            .claim_queued_restore_job("replica-elsewhere", &lease(), now)
            .await
            .unwrap()
            .is_none(),
        "a replica that does not host the cluster claims nothing"
    );
    let claimed = store
        .claim_queued_restore_job(HOST, &lease(), now)
        .await
        .unwrap()
        .expect("the hosting replica claims the job");
    assert_eq!((claimed.job.id, claimed.attempt), (first.id, 1));
    assert_eq!(claimed.job.state, RestoreJobState::InProgress);
    assert!(store.renew_restore_lease(first.id, &lease()).await.unwrap());
    let progress = RestoreProgress {
        bytes_done: 10,
        bytes_total: 20,
        documents_done: 1,
        documents_total: 2,
        oplog_entries_applied: 0,
        bytes_per_second: 5,
    };
    assert!(
        store
            .record_restore_progress(first.id, WORKER, &progress)
            .await
            .unwrap()
    );
    let read = store
        .get_restore_job(group.id, &cluster.name, first.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.progress, Some(progress));
    let token_sha256 = format!("{:064x}", 7);
    let outcome = RestoreOutcome {
        state: RestoreJobState::Completed,
        finished_at: Timestamp::now(),
        failure_reason: None,
        delivery_urls: vec![
            "https://example.test/d/token/restore-s-shard-0.tar.gz".into(),
            "https://example.test/d/token/restore-s-shard-1.tar.gz".into(),
        ],
        expires_at: Some(Timestamp::now().plus_millis(3_600_000)),
        download_token_sha256: Some(token_sha256.clone()),
        progress: Some(progress),
    };
    assert!(
        !store
            .finish_restore_job(first.id, "another-worker", &outcome)
            .await
            .unwrap(),
        "only the holder ends the job"
    );
    assert!(
        store
            .finish_restore_job(first.id, WORKER, &outcome)
            .await
            .unwrap()
    );
    let found = download_link(store, &token_sha256).await;
    assert_eq!(found.job.id, first.id);
    assert_eq!(found.job.state, RestoreJobState::Completed);
    assert_eq!(found.job.delivery_urls, outcome.delivery_urls);
    assert_eq!(
        (found.completed_at, found.downloaded_files.len()),
        (None, 0)
    );
    // One complete download per file; the job is downloaded once every file is.
    let files = ["restore-s-shard-0.tar.gz", "restore-s-shard-1.tar.gz"];
    for (done, file) in files.iter().enumerate() {
        assert!(
            store
                .mark_downloaded(first.id, file, files.len(), Timestamp::now())
                .await
                .unwrap()
        );
        assert!(
            !store
                .mark_downloaded(first.id, file, files.len(), Timestamp::now())
                .await
                .unwrap(),
            "one complete download of {file}"
        );
        let found = download_link(store, &token_sha256).await;
        let mut downloaded = found.downloaded_files.clone();
        downloaded.sort();
        assert_eq!(downloaded, files[..=done]);
        assert_eq!(found.completed_at.is_some(), done == files.len() - 1);
    }
    assert_eq!(
        store
            .expire_downloads(Timestamp::now().plus_millis(3_600_001))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .get_restore_job(group.id, &cluster.name, first.id)
            .await
            .unwrap()
            .unwrap()
            .state,
        RestoreJobState::Expired
    );

    // A cancel while the job runs: the worker's completion loses, its heartbeat says so.
    let second = download(Timestamp::now());
    store.insert_restore_job(&second, &guard).await.unwrap();
    let claimed = store
        .claim_queued_restore_job(HOST, &lease(), Timestamp::now())
        .await
        .unwrap()
        .expect("claimed");
    assert_eq!(claimed.job.id, second.id);
    assert!(
        store
            .transition_restore_job(
                second.id,
                &[RestoreJobState::Queued, RestoreJobState::InProgress],
                RestoreJobState::Cancelled,
                Timestamp::now()
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .renew_restore_lease(second.id, &lease())
            .await
            .unwrap()
    );
    assert!(
        !store
            .finish_restore_job(second.id, WORKER, &outcome)
            .await
            .unwrap(),
        "a cancelled job cannot complete"
    );

    // A dead worker's job goes back to the queue, then fails after its last attempt.
    let third = download(Timestamp::now());
    store.insert_restore_job(&third, &guard).await.unwrap();
    let lapsed = Lease {
        owner: "dead-worker".into(),
        until: Timestamp::now().plus_millis(-1),
    };
    for attempt in 1..=2 {
        let claimed = store
            .claim_queued_restore_job(HOST, &lapsed, Timestamp::now())
            .await
            .unwrap()
            .expect("claimed");
        assert_eq!((claimed.job.id, claimed.attempt), (third.id, attempt));
        assert_eq!(
            store
                .reap_restore_leases(Timestamp::now(), 2)
                .await
                .unwrap(),
            1
        );
    }
    let failed = store
        .get_restore_job(group.id, &cluster.name, third.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.state, RestoreJobState::Failed);
    assert!(
        failed
            .failure_reason
            .unwrap()
            .contains("stopped before finishing")
    );
}

/// A schedule slot is snapshotted once, however many replicas try.
pub(super) async fn scheduled_snapshots_once_per_slot(
    store: &dyn MetadataStore,
    cluster: &Cluster,
) {
    let slot = Timestamp::from_secs(1_795_919_400);
    let item = rewind_domain::schedule::PolicyItem {
        id: ObjectId::generate(),
        frequency_type: "daily".into(),
        frequency_interval: 1,
        retention_unit: rewind_domain::snapshot::RetentionUnit::Days,
        retention_value: 7,
    };
    let scheduled = |now| {
        Snapshot::scheduled(
            cluster.group_id,
            cluster.id,
            cluster.name.clone(),
            &[&item],
            now,
        )
    };
    let first = scheduled(Timestamp::now());
    assert!(store.insert_scheduled_snapshot(&first, slot).await.unwrap());
    let (racing_a, racing_b) = (scheduled(Timestamp::now()), scheduled(Timestamp::now()));
    let (a, b) = tokio::join!(
        store.insert_scheduled_snapshot(&racing_a, slot),
        store.insert_scheduled_snapshot(&racing_b, slot)
    );
    assert!(
        !a.unwrap() && !b.unwrap(),
        "the slot already has its snapshot"
    );
    let stored = store
        .get_snapshot(cluster.id, first.id)
        .await
        .unwrap()
        .expect("the scheduled snapshot");
    assert_eq!(stored.frequency_type, "daily");
    assert_eq!(stored.policy_items, vec![item.id]);
    assert!(
        store
            .insert_scheduled_snapshot(&scheduled(Timestamp::now()), slot.plus_millis(86_400_000))
            .await
            .unwrap(),
        "the next slot gets its own"
    );
}

/// Gaps of point-in-time history open, are found by the targets they cover, and close when a
/// snapshot requested after them completes.
async fn download_link(store: &dyn MetadataStore, token_sha256: &str) -> DownloadLink {
    store
        .restore_job_by_download_token(token_sha256)
        .await
        .unwrap()
        .expect("found by its token's hash")
}

pub(super) async fn pit_gaps_open_and_close(store: &dyn MetadataStore, cluster: &Cluster) {
    use rewind_domain::pit_gap::{PitGap, PitGapCause};
    let at = |seconds: i64| Timestamp::from_secs(1_900_000_000 + seconds);
    let gap = PitGap {
        cluster_id: cluster.id,
        from: at(10),
        closed_at: None,
        cause: PitGapCause::Restored,
    };
    store.open_pit_gap(&gap).await.unwrap();
    let found = |needed: i64, base: i64| async move {
        store
            .pit_gap_at(cluster.id, at(needed), at(base))
            .await
            .unwrap()
    };
    assert_eq!(found(9, 9).await, None, "a target before the gap");
    assert_eq!(
        found(10, 10).await,
        Some(gap.clone()),
        "a target at its start"
    );
    assert_eq!(
        found(100, 100).await,
        Some(gap.clone()),
        "open: every later target"
    );
    assert_eq!(
        store
            .close_pit_gaps(cluster.id, at(9), at(13))
            .await
            .unwrap(),
        0,
        "a snapshot requested before the gap began does not close it"
    );
    assert_eq!(
        store
            .close_pit_gaps(cluster.id, at(12), at(20))
            .await
            .unwrap(),
        1
    );
    let closed = PitGap {
        closed_at: Some(at(20)),
        ..gap.clone()
    };
    assert_eq!(
        found(15, 15).await,
        Some(closed.clone()),
        "before the new base"
    );
    assert_eq!(found(20, 20).await, None, "from the new base on");
    assert_eq!(found(25, 25).await, None);
    assert_eq!(
        store
            .close_pit_gaps(cluster.id, at(30), at(40))
            .await
            .unwrap(),
        0,
        "a closed gap stays closed where it closed"
    );
    let other = ObjectId::generate();
    assert_eq!(
        store.pit_gap_at(other, at(15), at(15)).await.unwrap(),
        None,
        "gaps belong to their cluster"
    );
}
