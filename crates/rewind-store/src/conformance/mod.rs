//! The behaviour every [`MetadataStore`] implementation must show. Each implementation's test
//! binary calls [`run_all`] on a fresh, empty store.

mod jobs;

use rewind_domain::cluster::{Cluster, ClusterState, ClusterType};
use rewind_domain::group::{Group, Organization};
use rewind_domain::restore_job::{RestoreJob, RestoreJobState};
use rewind_domain::restore_request::{DeliveryType, PitTarget};
use rewind_domain::schedule::BackupSchedule;
use rewind_domain::snapshot::{Snapshot, SnapshotStatus};
use rewind_domain::{ClusterName, ObjectId, Timestamp};

use crate::{
    AccessToken, ApiKey, BearerGrant, Lease, MetadataStore, Page, RestoreGuard, ServiceAccount,
    ServiceAccountSecret, StoreError,
};

/// Runs every conformance check against `store`, which must start empty. Panics on the first
/// behaviour that differs, naming it.
pub async fn run_all(store: &dyn MetadataStore) {
    let (org, group) = orgs_and_groups(store).await;
    let cluster = clusters_and_schedules(store, &group).await;
    cluster_hosting(store, &group).await;
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
    let snapshot = snapshots(store, &cluster).await;
    restore_jobs(store, &group, &cluster, &snapshot).await;
    credentials(store, &org, &group).await;
    jobs::leases_lapse_back_to_the_queue(store, &cluster).await;
    jobs::heartbeats_and_releases(store, &cluster).await;
    jobs::cancel_and_complete_race(store, &group, &cluster, &snapshot).await;
    jobs::restore_runs(store, &group, &cluster, &snapshot).await;
    jobs::scheduled_snapshots_once_per_slot(store, &cluster).await;
    jobs::pit_gaps_open_and_close(store, &cluster).await;
    dead_replicas_clusters_move_once(store, &group).await;
    group_deletion_needs_no_clusters(store, &group, &cluster).await;
}

async fn credentials(store: &dyn MetadataStore, org: &Organization, group: &Group) {
    let key = ApiKey {
        id: ObjectId::generate(),
        org_id: org.id,
        public_key: "abcdefgh".into(),
        description: "key".into(),
        ha1_md5: "00".repeat(16),
        ha1_sha256: "11".repeat(32),
        private_key_suffix: "0123456789ab".into(),
        org_roles: vec!["ORG_OWNER".into()],
        group_roles: vec![],
        created_at: Timestamp::now(),
    };
    store.create_api_key(&key).await.unwrap();
    assert!(
        matches!(
            store
                .create_api_key(&ApiKey {
                    id: ObjectId::generate(),
                    ..key.clone()
                })
                .await,
            Err(StoreError::AlreadyExists(_))
        ),
        "public keys are unique"
    );
    assert_eq!(
        store.get_api_key_by_public_key("abcdefgh").await.unwrap(),
        Some(key.clone())
    );
    let assigned = ApiKey {
        group_roles: vec![(group.id, "GROUP_OWNER".into())],
        description: "changed".into(),
        ..key.clone()
    };
    assert!(store.update_api_key(&assigned).await.unwrap());
    assert_eq!(
        store.get_api_key_by_public_key("abcdefgh").await.unwrap(),
        Some(assigned.clone()),
        "a key's new roles count at once"
    );
    assert_eq!(store.get_api_key(key.id).await.unwrap(), Some(assigned));
    assert_eq!(store.list_api_keys(org.id, Page::ALL).await.unwrap().1, 1);

    let now = Timestamp::now();
    let account = ServiceAccount {
        client_id: "mdb_sa_id_test".into(),
        org_id: org.id,
        name: "sa".into(),
        description: "d".into(),
        org_roles: vec!["ORG_READ_ONLY".into()],
        group_roles: vec![(group.id, "GROUP_READ_ONLY".into())],
        secrets: vec![ServiceAccountSecret {
            id: ObjectId::generate(),
            secret_sha256: "22".repeat(32),
            masked: "mdb_sa_sk_****abcd".into(),
            created_at: now,
            expires_at: now.plus_days(1),
        }],
        created_at: now,
    };
    store.create_service_account(&account).await.unwrap();
    assert_eq!(
        store.get_service_account(&account.client_id).await.unwrap(),
        Some(account.clone())
    );
    let token = AccessToken {
        token_sha256: "33".repeat(32),
        client_id: account.client_id.clone(),
        expires_at: now.plus_days(1),
    };
    store.create_access_token(&token).await.unwrap();
    assert_eq!(
        store.get_access_token(&token.token_sha256).await.unwrap(),
        Some(token.clone())
    );
    let grant = store
        .get_bearer_grant(&token.token_sha256)
        .await
        .unwrap()
        .expect("grant of a live token");
    assert_eq!(
        grant,
        BearerGrant {
            client_id: account.client_id.clone(),
            org_id: org.id,
            org_roles: account.org_roles.clone(),
            group_roles: account.group_roles.clone(),
            expires_at: token.expires_at
        }
    );
    let stale = AccessToken {
        token_sha256: "44".repeat(32),
        client_id: account.client_id.clone(),
        expires_at: now.plus_millis(-1),
    };
    store.create_access_token(&stale).await.unwrap();
    assert_eq!(
        store.delete_expired_access_tokens(now).await.unwrap(),
        1,
        "only the expired token is swept"
    );
    assert!(
        store
            .get_access_token(&stale.token_sha256)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .revoke_access_token(&token.token_sha256)
            .await
            .unwrap()
    );
    assert!(
        store
            .get_bearer_grant(&token.token_sha256)
            .await
            .unwrap()
            .is_none(),
        "revoked at once"
    );
    store.create_access_token(&token).await.unwrap();
    assert!(
        store
            .delete_service_account(&account.client_id)
            .await
            .unwrap()
    );
    assert!(
        store
            .get_bearer_grant(&token.token_sha256)
            .await
            .unwrap()
            .is_none(),
        "deleting the account revokes its tokens"
    );
    assert!(store.delete_api_key(key.id).await.unwrap());
    let first = store.shared_secret("test-secret", "aaaa").await.unwrap();
    let second = store.shared_secret("test-secret", "bbbb").await.unwrap();
    assert_eq!(
        (first.as_str(), second.as_str()),
        ("aaaa", "aaaa"),
        "the first stored secret wins"
    );
    assert!(store.get_api_key(key.id).await.unwrap().is_none());
    assert!(
        store
            .get_api_key_by_public_key("abcdefgh")
            .await
            .unwrap()
            .is_none(),
        "a deleted key stops working at once"
    );
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

async fn orgs_and_groups(store: &dyn MetadataStore) -> (Organization, Group) {
    let org = Organization {
        id: ObjectId::generate(),
        name: "org".into(),
        created_at: Timestamp::now(),
    };
    store.create_org(&org).await.expect("create org");
    assert_eq!(
        store.get_org(org.id).await.unwrap(),
        Some(org.clone()),
        "org reads back"
    );
    let group = Group {
        id: ObjectId::generate(),
        org_id: org.id,
        name: "project".into(),
        created_at: Timestamp::now(),
    };
    store.create_group(&group).await.expect("create group");
    let twin = Group {
        id: ObjectId::generate(),
        ..group.clone()
    };
    assert!(
        matches!(
            store.create_group(&twin).await,
            Err(StoreError::AlreadyExists(_))
        ),
        "a project name is unique within its organization"
    );
    let (groups, total) = store.list_groups(&[org.id], Page::ALL).await.unwrap();
    assert_eq!(
        (groups, total),
        (vec![group.clone()], 1),
        "list groups of the org"
    );
    let (none, zero) = store
        .list_groups(&[ObjectId::generate()], Page::ALL)
        .await
        .unwrap();
    assert!(none.is_empty() && zero == 0, "other orgs see no groups");
    (org, group)
}

fn cluster_named(group: &Group, name: &str) -> Cluster {
    Cluster {
        id: ObjectId::generate(),
        group_id: group.id,
        name: ClusterName::parse(name).unwrap(),
        cluster_type: ClusterType::ReplicaSet,
        backup_enabled: true,
        pit_enabled: true,
        paused: false,
        state: ClusterState::Idle,
        created_at: Timestamp::now(),
        spec: serde_json::json!({"replicationSpecs": [{"regionConfigs": []}]}),
        address: None,
    }
}

/// A replica whose heartbeat stopped loses its clusters to one live replica, once.
async fn dead_replicas_clusters_move_once(store: &dyn MetadataStore, group: &Group) {
    let orphan = cluster_named(group, "Orphaned");
    store.create_cluster(&orphan, None).await.unwrap();
    assert!(
        store
            .host_clusters("replica-dead")
            .await
            .unwrap()
            .iter()
            .any(|cluster| cluster.id == orphan.id)
    );
    store
        .record_cluster_address(
            orphan.id,
            "replica-dead",
            Some("127.0.0.1:1"),
            ClusterState::Idle,
        )
        .await
        .unwrap();
    let now = Timestamp::now();
    store
        .replica_heartbeat("replica-dead", now.plus_millis(-60_000))
        .await
        .unwrap();
    store.replica_heartbeat("replica-live", now).await.unwrap();
    store.replica_heartbeat("replica-other", now).await.unwrap();
    let stale_before = now.plus_millis(-30_000);
    assert!(
        store
            .take_over_clusters("replica-dead", stale_before)
            .await
            .unwrap()
            .is_empty(),
        "a replica does not take over from itself"
    );
    let (live, other) = tokio::join!(
        store.take_over_clusters("replica-live", stale_before),
        store.take_over_clusters("replica-other", stale_before)
    );
    let moved: Vec<Cluster> = live.unwrap().into_iter().chain(other.unwrap()).collect();
    assert_eq!(moved.len(), 1, "the orphaned cluster moves once: {moved:?}");
    assert_eq!(moved[0].id, orphan.id);
    assert_eq!(
        moved[0].address, None,
        "not served until its new replica serves it"
    );
    assert!(
        store
            .take_over_clusters("replica-live", stale_before)
            .await
            .unwrap()
            .is_empty()
            && store
                .take_over_clusters("replica-other", stale_before)
                .await
                .unwrap()
                .is_empty(),
        "nothing moves twice"
    );
    assert!(store.delete_cluster(orphan.id).await.unwrap());
}

/// Each cluster is hosted by exactly one replica, which records where it answers.
async fn cluster_hosting(store: &dyn MetadataStore, group: &Group) {
    let mut first = cluster_named(group, "Hosted1");
    first.state = ClusterState::Creating;
    store.create_cluster(&first, None).await.unwrap();
    let hosted = store.host_clusters("replica-a").await.unwrap();
    assert!(hosted.iter().any(|cluster| cluster.id == first.id));
    assert!(
        !store
            .host_clusters("replica-b")
            .await
            .unwrap()
            .iter()
            .any(|cluster| cluster.id == first.id),
        "a hosted cluster stays with its replica"
    );
    assert!(
        !store
            .record_cluster_address(
                first.id,
                "replica-b",
                Some("127.0.0.1:1"),
                ClusterState::Idle
            )
            .await
            .unwrap(),
        "only the host records an address"
    );
    assert!(
        store
            .record_cluster_address(
                first.id,
                "replica-a",
                Some("127.0.0.1:27100"),
                ClusterState::Idle
            )
            .await
            .unwrap()
    );
    let served = store
        .get_cluster(group.id, &first.name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(served.address.as_deref(), Some("127.0.0.1:27100"));
    assert_eq!(served.state, ClusterState::Idle);
    let second = cluster_named(group, "Hosted2");
    store.create_cluster(&second, None).await.unwrap();
    let hosted_by_b = store.host_clusters("replica-b").await.unwrap();
    assert!(hosted_by_b.iter().any(|cluster| cluster.id == second.id));
    assert!(
        !hosted_by_b.iter().any(|cluster| cluster.id == first.id),
        "replica-b hosts only what no one hosted"
    );
    let before_deletion = Timestamp::now().plus_millis(-1);
    for cluster in [&first, &second] {
        assert!(store.delete_cluster(cluster.id).await.unwrap());
    }
    // Their backups are left to remove, once the deletion is old enough.
    let left = |before| async move { store.deleted_cluster_backups(before).await.unwrap() };
    let deleted = left(Timestamp::now()).await;
    assert!(deleted.contains(&first.id) && deleted.contains(&second.id));
    let earlier = left(before_deletion).await;
    assert!(!earlier.contains(&first.id) && !earlier.contains(&second.id));
    store
        .forget_deleted_cluster_backups(first.id)
        .await
        .unwrap();
    let deleted = left(Timestamp::now()).await;
    assert!(!deleted.contains(&first.id) && deleted.contains(&second.id));
    assert!(
        !store
            .record_cluster_address(first.id, "replica-a", None, ClusterState::Idle)
            .await
            .unwrap(),
        "a deleted cluster records nothing"
    );
}

async fn clusters_and_schedules(store: &dyn MetadataStore, group: &Group) -> Cluster {
    let cluster = cluster_named(group, "Cluster0");
    let schedule = BackupSchedule::atlas_default(cluster.id, cluster.created_at);
    store
        .create_cluster(&cluster, Some(&schedule))
        .await
        .expect("create cluster");
    assert_eq!(
        store.get_cluster(group.id, &cluster.name).await.unwrap(),
        Some(cluster.clone()),
        "cluster reads back"
    );
    assert_eq!(
        store.get_schedule(cluster.id).await.unwrap(),
        Some(schedule.clone()),
        "schedule reads back"
    );
    let twin = Cluster {
        id: ObjectId::generate(),
        ..cluster.clone()
    };
    assert!(
        matches!(
            store.create_cluster(&twin, None).await,
            Err(StoreError::AlreadyExists(_))
        ),
        "cluster names are unique per project"
    );
    let changed = BackupSchedule {
        restore_window_days: 3,
        ..schedule.cleared()
    };
    store.put_schedule(&changed).await.unwrap();
    assert_eq!(
        store.get_schedule(cluster.id).await.unwrap(),
        Some(changed),
        "schedule replaced"
    );
    store.put_schedule(&schedule).await.unwrap();
    let paused = Cluster {
        paused: true,
        ..cluster.clone()
    };
    store.update_cluster(&paused, None).await.unwrap();
    assert!(
        store
            .get_cluster(group.id, &cluster.name)
            .await
            .unwrap()
            .unwrap()
            .paused,
        "cluster updated"
    );
    store.update_cluster(&cluster, None).await.unwrap();
    cluster
}

async fn snapshots(store: &dyn MetadataStore, cluster: &Cluster) -> Snapshot {
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

async fn restore_jobs(
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

async fn group_deletion_needs_no_clusters(
    store: &dyn MetadataStore,
    group: &Group,
    cluster: &Cluster,
) {
    assert!(
        matches!(
            store.delete_group(group.id).await,
            Err(StoreError::Conflict(_))
        ),
        "a project with clusters cannot be deleted"
    );
    assert!(store.delete_cluster(cluster.id).await.unwrap());
    assert!(
        store.get_schedule(cluster.id).await.unwrap().is_none(),
        "schedule deleted with its cluster"
    );
    assert!(store.delete_group(group.id).await.unwrap());
    assert!(store.get_group(group.id).await.unwrap().is_none());
}
