//! Organizations, projects, clusters, their hosting by replicas, and schedules.

use rewind_domain::cluster::{Cluster, ClusterState, ClusterType};
use rewind_domain::group::{Group, Organization};
use rewind_domain::schedule::BackupSchedule;
use rewind_domain::{ClusterName, ObjectId, Timestamp};

use crate::{MetadataStore, Page, StoreError};

pub(super) async fn orgs_and_groups(store: &dyn MetadataStore) -> (Organization, Group) {
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

pub(super) fn cluster_named(group: &Group, name: &str) -> Cluster {
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
pub(super) async fn dead_replicas_clusters_move_once(store: &dyn MetadataStore, group: &Group) {
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
pub(super) async fn cluster_hosting(store: &dyn MetadataStore, group: &Group) {
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

pub(super) async fn clusters_and_schedules(store: &dyn MetadataStore, group: &Group) -> Cluster {
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

pub(super) async fn group_deletion_needs_no_clusters(
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
