//! Schedule slots snapshotted once, and gaps of point-in-time history.

use rewind_domain::cluster::Cluster;
use rewind_domain::snapshot::Snapshot;
use rewind_domain::{ObjectId, Timestamp};

use crate::MetadataStore;

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
