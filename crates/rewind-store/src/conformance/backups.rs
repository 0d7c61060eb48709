//! Snapshots and restore jobs: their rows, listings, guards and state changes.

use rewind_domain::cluster::Cluster;
use rewind_domain::group::Group;
use rewind_domain::restore_job::{RestoreJob, RestoreJobState};
use rewind_domain::restore_request::{DeliveryType, PitTarget};
use rewind_domain::snapshot::{Snapshot, SnapshotStatus};
use rewind_domain::{ClusterName, ObjectId, Timestamp};

use super::{HOST, WORKER, lease};
use crate::{MetadataStore, Page, RestoreGuard, StoreError};

pub(super) async fn snapshots(store: &dyn MetadataStore, cluster: &Cluster) -> Snapshot {
    let now = Timestamp::now();
    let first = Snapshot::on_demand(
        cluster.group_id,
        cluster.id,
        cluster.name.clone(),
        Some("one".into()),
        1,
        now,
    );
    store.insert_on_demand_snapshot(&first).await.unwrap();
    let second = Snapshot::on_demand(
        cluster.group_id,
        cluster.id,
        cluster.name.clone(),
        None,
        1,
        now,
    );
    match store.insert_on_demand_snapshot(&second).await {
        Err(StoreError::Conflict(id)) => assert_eq!(
            id,
            first.id.to_string(),
            "conflict names the unfinished snapshot"
        ),
        other => {
            panic!("a second on-demand snapshot while one is queued must conflict, got {other:?}")
        }
    }
    let claimed = store
        .claim_queued_snapshot(HOST, "8.0.4", &lease(), Timestamp::now())
        .await
        .unwrap()
        .expect("claims the queued snapshot");
    assert_eq!(
        (claimed.job.id, claimed.job.status),
        (first.id, SnapshotStatus::InProgress)
    );
    assert!(
        store
            .claim_queued_snapshot(HOST, "8.0.4", &lease(), Timestamp::now())
            .await
            .unwrap()
            .is_none(),
        "nothing else queued"
    );
    let captured = Timestamp::now();
    assert!(
        store
            .finish_snapshot(
                first.id,
                WORKER,
                SnapshotStatus::Completed,
                captured,
                42,
                None
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .finish_snapshot(
                first.id,
                WORKER,
                SnapshotStatus::Failed,
                captured,
                0,
                Some("x")
            )
            .await
            .unwrap(),
        "finish is compare-and-set"
    );
    let done = store
        .get_snapshot(cluster.id, first.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (done.status, done.created_at, done.storage_size_bytes),
        (SnapshotStatus::Completed, Some(captured), 42)
    );
    assert_eq!(
        done.expires_at,
        captured.plus_days(1),
        "retention counts from capture"
    );
    assert_eq!(
        store
            .latest_completed_snapshot(cluster.id, captured)
            .await
            .unwrap()
            .map(|s| s.id),
        Some(first.id)
    );
    assert!(
        store
            .latest_completed_snapshot(cluster.id, captured.plus_millis(-1))
            .await
            .unwrap()
            .is_none(),
        "nothing before capture"
    );
    store
        .insert_on_demand_snapshot(&second)
        .await
        .expect("a new on-demand snapshot once the first completed");
    let (listed, total) = store
        .list_snapshots(
            cluster.id,
            Page {
                offset: 0,
                limit: 1,
            },
        )
        .await
        .unwrap();
    assert_eq!((listed.len(), total), (1, 2), "paged listing with total");
    let before_delete = store
        .claim_queued_snapshot(HOST, "8.0.4", &lease(), Timestamp::now())
        .await
        .unwrap()
        .expect("second snapshot claimed");
    assert!(
        store
            .finish_snapshot(
                before_delete.job.id,
                WORKER,
                SnapshotStatus::Failed,
                captured,
                0,
                Some("test")
            )
            .await
            .unwrap()
    );
    assert!(store.delete_snapshot(second.id, captured).await.unwrap());
    assert!(
        !store.delete_snapshot(second.id, captured).await.unwrap(),
        "deleting twice reports nothing deleted"
    );
    let tombstone = store
        .get_snapshot(cluster.id, second.id)
        .await
        .unwrap()
        .expect("deleted snapshots stay as tombstones");
    assert_eq!(tombstone.deleted_at, Some(captured));
    assert_eq!(
        store.list_snapshots(cluster.id, Page::ALL).await.unwrap().1,
        1,
        "listing hides deleted snapshots"
    );
    assert!(
        store
            .set_snapshot_expiry(first.id, captured.plus_millis(-1))
            .await
            .unwrap()
    );
    assert_eq!(
        store.expired_snapshots(captured).await.unwrap().len(),
        1,
        "expired snapshot found"
    );
    assert!(
        store
            .set_snapshot_expiry(first.id, captured.plus_days(1))
            .await
            .unwrap()
    );
    done
}

pub(super) async fn restore_jobs(
    store: &dyn MetadataStore,
    group: &Group,
    cluster: &Cluster,
    snapshot: &Snapshot,
) {
    let job = |delivery_type, target: Option<&ClusterName>, created_at| RestoreJob {
        id: ObjectId::generate(),
        group_id: group.id,
        cluster_name: cluster.name.clone(),
        delivery_type,
        snapshot_id: Some(snapshot.id),
        target_group_id: target.map(|_| group.id),
        target_cluster_name: target.cloned(),
        pit: (delivery_type == DeliveryType::PointInTime).then_some(PitTarget::Oplog {
            ts: 1_700_000_000,
            inc: 3,
        }),
        state: RestoreJobState::Queued,
        created_at,
        snapshot_taken_at: snapshot.created_at,
        finished_at: None,
        expires_at: None,
        delivery_urls: Vec::new(),
        failure_reason: None,
        progress: None,
    };
    let now = Timestamp::now();
    let automated = job(DeliveryType::Automated, Some(&cluster.name), now);
    let guard = RestoreGuard {
        target: Some((group.id, cluster.name.clone())),
        download_snapshot: None,
        max_group_downloads: None,
    };
    store.insert_restore_job(&automated, &guard).await.unwrap();
    assert!(
        store
            .target_restoring(group.id, &cluster.name)
            .await
            .unwrap()
    );
    let pit = job(
        DeliveryType::PointInTime,
        Some(&cluster.name),
        now.plus_millis(1),
    );
    assert!(
        matches!(
            store.insert_restore_job(&pit, &guard).await,
            Err(StoreError::Conflict(_))
        ),
        "target busy"
    );
    assert_eq!(
        store
            .get_restore_job(group.id, &cluster.name, automated.id)
            .await
            .unwrap(),
        Some(automated.clone()),
        "job reads back"
    );
    assert_eq!(
        store
            .get_restore_job_with_org(group.id, &cluster.name, automated.id)
            .await
            .unwrap(),
        Some((automated.clone(), group.org_id)),
        "job reads back with its organization"
    );
    let elsewhere = ClusterName::parse("Elsewhere").unwrap();
    assert!(
        store
            .get_restore_job_with_org(group.id, &elsewhere, automated.id)
            .await
            .unwrap()
            .is_none(),
        "job of another cluster"
    );
    // Read twice (a store may serve the second from memory), change, read again.
    for _ in 0..2 {
        store
            .get_restore_job_with_org(group.id, &cluster.name, automated.id)
            .await
            .unwrap();
    }
    assert!(
        store
            .transition_restore_job(
                automated.id,
                &[RestoreJobState::Queued],
                RestoreJobState::InProgress,
                now
            )
            .await
            .unwrap()
    );
    let (moved, _) = store
        .get_restore_job_with_org(group.id, &cluster.name, automated.id)
        .await
        .unwrap()
        .expect("job still there");
    assert_eq!(
        moved.state,
        RestoreJobState::InProgress,
        "a read after an acknowledged write sees it"
    );
    assert!(
        store
            .transition_restore_job(
                automated.id,
                &[RestoreJobState::InProgress],
                RestoreJobState::Queued,
                now
            )
            .await
            .unwrap()
    );

    let download = job(DeliveryType::Download, None, now.plus_millis(2));
    let download_guard = RestoreGuard {
        target: None,
        download_snapshot: Some(snapshot.id),
        max_group_downloads: Some(20),
    };
    store
        .insert_restore_job(&download, &download_guard)
        .await
        .unwrap();
    assert_eq!(
        store.active_downloads(group.id, snapshot.id).await.unwrap(),
        (1, 1)
    );
    let again = job(DeliveryType::Download, None, now.plus_millis(3));
    assert!(
        matches!(
            store.insert_restore_job(&again, &download_guard).await,
            Err(StoreError::Conflict(_))
        ),
        "one download per snapshot"
    );
    let capped = RestoreGuard {
        target: None,
        download_snapshot: None,
        max_group_downloads: Some(1),
    };
    assert!(
        matches!(
            store.insert_restore_job(&again, &capped).await,
            Err(StoreError::Conflict(_))
        ),
        "download cap per project"
    );

    let (listed, total) = store
        .list_restore_jobs(group.id, &cluster.name, Page::ALL)
        .await
        .unwrap();
    assert_eq!(total, 2);
    assert_eq!(
        listed.iter().map(|job| job.id).collect::<Vec<_>>(),
        vec![download.id, automated.id],
        "newest first"
    );

    let cancel_from = [
        RestoreJobState::Queued,
        RestoreJobState::InProgress,
        RestoreJobState::Completed,
    ];
    assert!(
        store
            .transition_restore_job(download.id, &cancel_from, RestoreJobState::Cancelled, now)
            .await
            .unwrap()
    );
    assert!(
        !store
            .transition_restore_job(download.id, &cancel_from, RestoreJobState::Cancelled, now)
            .await
            .unwrap(),
        "cancel is compare-and-set"
    );
    assert_eq!(
        store.active_downloads(group.id, snapshot.id).await.unwrap(),
        (0, 0)
    );
    let counts = store.state_counts().await.unwrap();
    assert!(
        counts.contains(&("restore_job".into(), "cancelled".into(), 1)),
        "state counts: {counts:?}"
    );
    assert!(
        counts.contains(&("restore_job".into(), "queued".into(), 1)),
        "state counts: {counts:?}"
    );
    assert!(
        matches!(
            store.delete_cluster(cluster.id).await,
            Err(StoreError::Conflict(_))
        ),
        "a cluster being restored cannot be deleted"
    );
    assert!(
        store
            .transition_restore_job(
                automated.id,
                &[RestoreJobState::Queued],
                RestoreJobState::Failed,
                now
            )
            .await
            .unwrap()
    );
}
