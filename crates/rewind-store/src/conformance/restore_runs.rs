//! Restore jobs as work: progress, completion, download links and their expiry.

use rewind_domain::cluster::Cluster;
use rewind_domain::group::Group;
use rewind_domain::restore_job::{RestoreJob, RestoreJobState, RestoreProgress};
use rewind_domain::restore_request::DeliveryType;
use rewind_domain::snapshot::Snapshot;
use rewind_domain::{ObjectId, Timestamp};

use super::{HOST, WORKER, lease};
use crate::{DownloadLink, Lease, MetadataStore, RestoreGuard, RestoreOutcome};

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
                .mark_downloaded(first.id, file, Timestamp::now())
                .await
                .unwrap()
        );
        assert!(
            !store
                .mark_downloaded(first.id, file, Timestamp::now())
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

/// The download job a token's hash finds.
async fn download_link(store: &dyn MetadataStore, token_sha256: &str) -> DownloadLink {
    store
        .restore_job_by_download_token(token_sha256)
        .await
        .unwrap()
        .expect("found by its token's hash")
}
