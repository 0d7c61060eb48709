//! Snapshots: round trip, content addressing, corruption, cancellation, deletion.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use bson::{Bson, doc};
use rewind_backup::{
    BackupError, BlobError, BlobStore, Manifest, Phase, SnapshotReader, SnapshotVisitor,
    delete_snapshot, list_snapshots, load_manifest, restore_into, take_snapshot_with,
};

use crate::common::{Fixture, dump, fill, open, raw, small_chunks, snapshot};

fn restore(
    fx: &Fixture,
    m: &Manifest,
    name: &str,
) -> Result<rewind_backup::RestoreStats, BackupError> {
    restore_into(
        &fx.blobs,
        "rs0",
        m,
        &fx.target(name),
        &AtomicBool::new(false),
        &mut |_| {},
    )
}

fn chunk_key(hash: &str) -> String {
    format!("rs0/chunks/{}/{hash}", &hash[..2])
}

#[test]
fn snapshot_restore_round_trip_is_exact() {
    let fx = Fixture::new();
    fill(&fx.engine);
    let before = dump(&fx.engine);
    assert!(before.values().map(|c| c.3.len()).sum::<usize>() > 12_000);
    let snap = snapshot(&fx.engine, &fx.blobs, "s1");
    let m = &snap.manifest;
    assert_eq!(m.optime, fx.engine.latest_optime());
    assert_eq!(m.totals.namespaces as usize, before.len());
    assert!(m.totals.chunks > 20, "{}", m.totals.chunks);
    assert!(snap.stats.compressed_bytes < snap.stats.logical_bytes);
    assert_eq!(load_manifest(&fx.blobs, "rs0", "s1").unwrap(), *m);
    assert_eq!(list_snapshots(&fx.blobs, "rs0").unwrap(), ["s1"]);

    let mut reports = Vec::new();
    let stats = restore_into(
        &fx.blobs,
        "rs0",
        m,
        &fx.target("r1"),
        &AtomicBool::new(false),
        &mut |p| reports.push(p),
    )
    .unwrap();
    assert_eq!(stats.documents, m.totals.documents);
    assert_eq!(stats.bytes, m.totals.logical_bytes);
    let last = reports.last().unwrap();
    assert_eq!(
        (last.phase, last.done_bytes, last.done_items),
        (Phase::Restore, last.total_bytes, last.total_items)
    );

    let restored = open(&fx.target("r1"));
    assert_eq!(
        dump(&restored),
        before,
        "documents, options, indexes and UUIDs"
    );
    assert_eq!(restored.latest_optime(), m.optime);
    // The restored engine enforces the restored indexes.
    let dup = restored.write(|t| {
        t.insert(
            "app.users",
            &raw(&doc! {"_id": -1, "email": "u1@example.com"}),
        )
    });
    assert!(dup.is_err());
}

#[test]
fn reader_streams_every_document_in_order() {
    struct Count(Vec<(String, u64)>);
    impl SnapshotVisitor for Count {
        fn namespace(&mut self, e: &rewind_backup::NamespaceEntry) -> rewind_backup::Result<()> {
            self.0.push((e.ns.clone(), 0));
            Ok(())
        }
        fn document(
            &mut self,
            _: &rewind_backup::NamespaceEntry,
            _: &bson::RawDocument,
        ) -> rewind_backup::Result<()> {
            if let Some(last) = self.0.last_mut() {
                last.1 += 1;
            }
            Ok(())
        }
    }
    let fx = Fixture::new();
    fill(&fx.engine);
    let m = snapshot(&fx.engine, &fx.blobs, "s1").manifest;
    for workers in [1, 3] {
        let mut c = Count(Vec::new());
        SnapshotReader::new(&fx.blobs, "rs0", &m)
            .with_workers(workers)
            .read(&AtomicBool::new(false), &mut c)
            .unwrap();
        let expected: Vec<_> = m
            .namespaces
            .iter()
            .map(|n| (n.ns.clone(), n.documents))
            .collect();
        assert_eq!(c.0, expected);
    }
}

#[test]
fn unchanged_data_is_not_stored_twice() {
    let fx = Fixture::new();
    fill(&fx.engine);
    let s1 = snapshot(&fx.engine, &fx.blobs, "s1");
    assert!(s1.stats.chunks_written > 0 && s1.stats.chunks_reused == 0);
    assert!(s1.stats.stored_bytes > s1.stats.compressed_bytes);

    let s2 = snapshot(&fx.engine, &fx.blobs, "s2");
    assert_eq!(s2.stats.chunks_written, 0);
    assert_eq!(s2.stats.chunks_reused, s1.stats.chunks);
    // Only the manifest is new.
    assert!(
        s2.stats.stored_bytes * 10 < s1.stats.stored_bytes,
        "{:?}",
        s2.stats
    );

    // Change two documents of one collection: only chunks of that collection are new.
    fx.engine
        .write(|t| {
            t.update(
                "app.orders",
                &Bson::String("order-005000".into()),
                &raw(&doc! {"_id": "order-005000", "status": "lost"}),
            )?;
            t.delete("app.orders", &Bson::String("order-009000".into()))
                .map(drop)
        })
        .unwrap();
    let s3 = snapshot(&fx.engine, &fx.blobs, "s3");
    let old: HashSet<&str> = s1.manifest.chunk_hashes().collect();
    for (a, b) in s1.manifest.namespaces.iter().zip(&s3.manifest.namespaces) {
        if a.ns == "app.orders" {
            let new = b
                .chunks
                .iter()
                .filter(|c| !old.contains(c.hash.as_str()))
                .count();
            assert!(
                (1..=4).contains(&new),
                "{new} new chunks of {}",
                b.chunks.len()
            );
        } else {
            assert_eq!(a.chunks, b.chunks, "{}", a.ns);
        }
    }
    let saving = 1.0 - s3.stats.stored_bytes as f64 / s3.stats.compressed_bytes as f64;
    println!(
        "dedup: full {} B compressed, unchanged re-snapshot stored {} B, one-collection change stored {} B ({} of {} chunks, saving {:.1}%)",
        s1.stats.compressed_bytes,
        s2.stats.stored_bytes,
        s3.stats.stored_bytes,
        s3.stats.chunks_written,
        s3.stats.chunks,
        saving * 100.0
    );
    assert!(s3.stats.chunks_written <= 4);
    assert!(saving > 0.8, "saving {saving}");
    let restored = restore(&fx, &s3.manifest, "r3");
    assert!(restored.is_ok());
    assert_eq!(dump(&open(&fx.target("r3"))), dump(&fx.engine));
}

#[test]
fn a_corrupt_or_missing_chunk_fails_the_restore_naming_it() {
    let fx = Fixture::new();
    fill(&fx.engine);
    let m = snapshot(&fx.engine, &fx.blobs, "s1").manifest;
    let victim = &m
        .namespaces
        .iter()
        .find(|n| n.ns == "app.orders")
        .unwrap()
        .chunks[2];
    let key = chunk_key(&victim.hash);
    let path = fx.blob_path(&key);
    let original = std::fs::read(&path).unwrap();
    let mut flipped = original.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x10;
    std::fs::write(&path, &flipped).unwrap();

    let err = restore(&fx, &m, "r1").unwrap_err();
    match &err {
        BackupError::Blob(BlobError::Corrupt { key: k, .. }) => assert_eq!(k, &key),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        format!("backup object {key} is corrupt: checksum mismatch")
    );
    assert!(!err.to_string().contains(fx.dir.path().to_str().unwrap()));

    std::fs::remove_file(&path).unwrap();
    let err = restore(&fx, &m, "r2").unwrap_err();
    assert!(
        matches!(&err, BackupError::Blob(BlobError::NotFound { key: k }) if *k == key),
        "{err:?}"
    );
    assert_eq!(err.to_string(), format!("backup object {key} is missing"));

    // A chunk replaced by another valid object (right checksum, wrong content) is caught by
    // its content address.
    let other = &m
        .namespaces
        .iter()
        .find(|n| n.ns == "app.users")
        .unwrap()
        .chunks[0];
    let other_bytes = fx.blobs.get(&chunk_key(&other.hash)).unwrap();
    fx.blobs.put(&key, &other_bytes).unwrap();
    let err = restore(&fx, &m, "r3").unwrap_err();
    assert!(
        matches!(&err, BackupError::Blob(BlobError::Corrupt { key: k, .. }) if *k == key),
        "{err:?}"
    );

    std::fs::write(&path, &original).unwrap();
    restore(&fx, &m, "r4").unwrap();
}

#[test]
fn cancel_mid_snapshot_then_rerun_completes() {
    let fx = Fixture::new();
    fill(&fx.engine);
    let view = fx.engine.read_view().unwrap();
    let cancel = AtomicBool::new(false);
    let mut chunks = 0;
    let err = take_snapshot_with(
        &view,
        &fx.blobs,
        "rs0",
        "s1",
        &small_chunks(),
        &cancel,
        &mut |p| {
            chunks += 1;
            assert!(p.done_bytes <= p.total_bytes);
            if chunks == 10 {
                cancel.store(true, Ordering::Relaxed);
            }
        },
    )
    .unwrap_err();
    assert!(matches!(err, BackupError::Cancelled), "{err:?}");
    assert_eq!(chunks, 10);
    assert!(matches!(
        load_manifest(&fx.blobs, "rs0", "s1"),
        Err(BackupError::Blob(BlobError::NotFound { .. }))
    ));
    assert!(list_snapshots(&fx.blobs, "rs0").unwrap().is_empty());

    let snap = take_snapshot_with(
        &view,
        &fx.blobs,
        "rs0",
        "s1",
        &small_chunks(),
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap();
    assert!(snap.stats.chunks_reused >= 8, "{:?}", snap.stats);
    restore(&fx, &snap.manifest, "r1").unwrap();
    assert_eq!(dump(&open(&fx.target("r1"))), dump(&fx.engine));

    // A cancelled restore fails the same way.
    let cancelled = AtomicBool::new(true);
    let err = restore_into(
        &fx.blobs,
        "rs0",
        &snap.manifest,
        &fx.target("r2"),
        &cancelled,
        &mut |_| {},
    );
    assert!(matches!(err, Err(BackupError::Cancelled)));
}

#[test]
fn delete_keeps_chunks_other_snapshots_use() {
    let fx = Fixture::new();
    fill(&fx.engine);
    let s1 = snapshot(&fx.engine, &fx.blobs, "s1").manifest;
    fx.engine
        .write(|t| {
            t.insert(
                "app.users",
                &raw(&doc! {"_id": 99_999, "email": "new@example.com"}),
            )
        })
        .unwrap();
    let s2 = snapshot(&fx.engine, &fx.blobs, "s2").manifest;
    let chunk_count = || fx.blobs.list("rs0/chunks/").unwrap().len();
    let all = chunk_count();
    let h1: HashSet<&str> = s1.chunk_hashes().collect();
    let h2: HashSet<&str> = s2.chunk_hashes().collect();
    let only1 = h1.difference(&h2).count();
    assert!(only1 >= 1);

    let stats = delete_snapshot(&fx.blobs, "rs0", &s1, std::slice::from_ref(&s2)).unwrap();
    assert_eq!(stats.chunks_deleted as usize, only1);
    assert_eq!(chunk_count(), all - only1);
    assert_eq!(list_snapshots(&fx.blobs, "rs0").unwrap(), ["s2"]);
    // Retrying a deletion is harmless.
    assert_eq!(
        delete_snapshot(&fx.blobs, "rs0", &s1, &[])
            .unwrap()
            .chunks_deleted,
        0
    );
    restore(&fx, &s2, "r2").unwrap();
    assert_eq!(dump(&open(&fx.target("r2"))), dump(&fx.engine));

    // Manifests still stored protect their chunks even when the caller does not list them.
    let s3 = snapshot(&fx.engine, &fx.blobs, "s3").manifest;
    assert_eq!(
        delete_snapshot(&fx.blobs, "rs0", &s2, &[])
            .unwrap()
            .chunks_deleted,
        0
    );
    let stats = delete_snapshot(&fx.blobs, "rs0", &s3, &[]).unwrap();
    assert_eq!(stats.chunks_deleted as usize, h2.len());
    assert_eq!(chunk_count(), 0);
}

#[test]
fn invalid_snapshot_ids_are_refused() {
    let fx = Fixture::new();
    let view = fx.engine.read_view().unwrap();
    for id in ["", "a/b", "../x", ".hidden"] {
        let r = take_snapshot_with(
            &view,
            &fx.blobs,
            "rs0",
            id,
            &small_chunks(),
            &AtomicBool::new(false),
            &mut |_| {},
        );
        assert!(matches!(r, Err(BackupError::InvalidTarget(_))), "{id}");
    }
    // An empty engine snapshots and restores to an empty engine.
    let m = snapshot(&fx.engine, &fx.blobs, "empty").manifest;
    assert_eq!((m.totals.documents, m.optime), (0, None));
    restore(&fx, &m, "r").unwrap();
    assert!(dump(&open(&fx.target("r"))).is_empty());
}
