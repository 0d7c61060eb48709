//! The restore pipeline's failure modes and what a replayed engine looks like afterwards.

use std::sync::atomic::AtomicBool;

use bson::{Bson, doc};
use rewind_backup::{
    BackupError, BlobError, BlobStore, CaptureLimits, capture_oplog_with, replay_oplog,
    restore_into,
};

use crate::common::{Fixture, dump, fill, open, raw, snapshot};

#[test]
fn a_corrupt_chunk_mid_pipeline_leaves_no_engine_behind() {
    let fx = Fixture::new();
    fill(&fx.engine);
    let m = snapshot(&fx.engine, &fx.blobs, "s1").manifest;
    let chunks: Vec<_> = m.namespaces.iter().flat_map(|n| &n.chunks).collect();
    assert!(chunks.len() > 8, "{} chunks", chunks.len());
    // Late in the stream: earlier chunks are already in the engine, later ones read ahead.
    let victim = chunks[chunks.len() - 3];
    let key = format!("rs0/chunks/{}/{}", &victim.hash[..2], victim.hash);
    let mut bytes = std::fs::read(fx.blob_path(&key)).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(fx.blob_path(&key), &bytes).unwrap();

    let dir = fx.target("r1");
    let never = AtomicBool::new(false);
    let err = restore_into(&fx.blobs, "rs0", &m, &dir, &never, &mut |_| {}).unwrap_err();
    assert!(
        matches!(&err, BackupError::Blob(BlobError::Corrupt { key: k, .. }) if *k == key),
        "{err:?}"
    );
    // Nothing there opens as the snapshot's data, even partly.
    assert!(dump(&open(&dir)).is_empty());
}

#[test]
fn a_replayed_engine_continues_the_timeline_and_takes_writes() {
    let fx = Fixture::new();
    let e = &fx.engine;
    e.write(|t| {
        t.create_indexes(
            "app.users",
            &[doc! {"key": {"v": 1}, "name": "v_1", "unique": true}],
        )
        .map(drop)
    })
    .unwrap();
    e.write(|t| (0..100).try_for_each(|i| t.insert("app.users", &raw(&doc! {"_id": i, "v": i}))))
        .unwrap();
    let base = snapshot(e, &fx.blobs, "base").manifest;
    // More entries than one replay batch holds, in slices smaller than a batch.
    for round in 0..5 {
        e.write(|t| {
            for i in 0..5_000 {
                let id = 1_000 + round * 5_000 + i;
                t.insert("app.users", &raw(&doc! {"_id": id, "v": id}))?;
            }
            t.update(
                "app.users",
                &Bson::Int32(round),
                &raw(&doc! {"_id": round, "v": -round}),
            )?;
            t.delete("app.users", &Bson::Int32(50 + round)).map(drop)
        })
        .unwrap();
    }
    let limits = CaptureLimits {
        max_entries: 3_000,
        ..CaptureLimits::default()
    };
    let mut slices = Vec::new();
    let mut after = base.optime;
    while let Some(s) = capture_oplog_with(e, &fx.blobs, "rs0", after, &limits).unwrap() {
        after = Some(s.to);
        slices.push(s);
    }
    let target = e.latest_optime().unwrap();
    let dir = fx.target("pit");
    let never = AtomicBool::new(false);
    restore_into(&fx.blobs, "rs0", &base, &dir, &never, &mut |_| {}).unwrap();
    let restored = open(&dir);
    let stats = replay_oplog(
        &restored,
        &fx.blobs,
        &slices,
        base.optime.unwrap(),
        target,
        &never,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(stats.applied, 5 * 5_002);
    assert!(stats.batches >= 2, "{stats:?}");
    assert_eq!(stats.last_applied, Some(target));
    assert_eq!(dump(&restored), dump(e));
    assert_eq!(restored.latest_optime(), Some(target));
    // Replaying again changes nothing: replay is idempotent.
    let again = replay_oplog(
        &restored,
        &fx.blobs,
        &slices,
        base.optime.unwrap(),
        target,
        &never,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(dump(&restored), dump(e));
    assert_eq!(again.applied, stats.applied);

    // New writes: later optimes, logged, unique index live.
    restored
        .write(|t| t.insert("app.users", &raw(&doc! {"_id": -1, "v": -100})))
        .unwrap();
    let log = restored.oplog_range(None, None, 10).unwrap();
    assert_eq!(log.len(), 1);
    assert!(log[0].get_timestamp("ts").unwrap() > target);
    let err = restored
        .write(|t| t.insert("app.users", &raw(&doc! {"_id": -2, "v": -100})))
        .unwrap_err();
    assert_eq!(err.code(), 11000);
    assert!(fx.blobs.exists(&slices[0].key).unwrap());
}
