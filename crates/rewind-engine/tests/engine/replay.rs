//! Replay for restores (`replay_oplog_entry`) against the general `apply_oplog_entry`, and
//! the bulk loader's sorted index runs.

use bson::{Bson, Document, Timestamp, doc};
use rewind_engine::{BulkLoader, Engine, ReadView};

use super::{all_docs, open, raw, sample_source, tmpdir};

/// One collection: namespace, `[uuid, index specs, options]`, documents, each index's
/// documents in index order.
type CollState = (String, Bson, Vec<Vec<u8>>, Vec<Vec<Vec<u8>>>);

/// Catalog, documents and every index's entries, as seen through the public API.
fn state(e: &Engine) -> Vec<CollState> {
    let view = e.read_view().unwrap();
    let by_index = |v: &ReadView, ns: &str, name: &str| {
        v.find_by_index(ns, name, &[])
            .unwrap()
            .into_iter()
            .map(|d| d.into_bytes())
            .collect::<Vec<_>>()
    };
    view.collections()
        .map(|c| {
            let ns = c.ns();
            let specs = Bson::Array(c.indexes.iter().map(|s| s.spec.clone().into()).collect());
            let uuid_specs = Bson::Array(vec![
                Bson::Binary(c.uuid.clone()),
                specs,
                c.options.clone().into(),
            ]);
            let indexes = c
                .indexes
                .iter()
                .map(|s| by_index(&view, &ns, &s.name))
                .collect();
            (ns.clone(), uuid_specs, all_docs(e, &ns), indexes)
        })
        .collect()
}

#[test]
fn replay_for_restore_equals_general_apply() {
    let src = open(&tmpdir("rp-src"));
    sample_source(&src);
    let mark = src.latest_optime().unwrap();
    src.write(|t| {
        // Index keys that change, stay, and vanish; multikey; a replacement without a change.
        t.update(
            "shop.items",
            &Bson::Int32(7),
            &raw(doc! {"_id": 7, "sku": "s7", "price": 0.5, "tags": ["b", "c", "d"]}),
        )?;
        t.update(
            "shop.items",
            &Bson::Int32(8),
            &raw(doc! {"_id": 8, "sku": "s8x"}),
        )?;
        t.update(
            "shop.items",
            &Bson::Int32(9),
            &raw(doc! {"_id": 9, "sku": "s9", "price": 3.0, "tags": ["a", "t2"]}),
        )?;
        t.delete("shop.items", &Bson::Int32(10))?;
        // The sku freed by the update above is taken again: unique checks see the change.
        t.insert("shop.items", &raw(doc! {"_id": 5000, "sku": "s8"}))?;
        t.rename_collection("shop.log", "shop.log2", false)?;
        t.insert("shop.log2", &raw(doc! {"_id": "after-rename"}))?;
        t.insert("other.x", &raw(doc! {"_id": 1}))?;
        t.drop_database("other")?;
        t.create_indexes("shop.log2", &[doc! {"key": {"a": 1}, "name": "a_1"}])?;
        t.insert("shop.log2", &raw(doc! {"_id": "indexed", "a": 5}))?;
        t.noop(&doc! {"msg": "periodic"})
    })
    .unwrap();
    let log = src.oplog_range(None, None, usize::MAX).unwrap();
    let last_ts = Document::try_from(log.last().unwrap().clone())
        .unwrap()
        .get_timestamp("ts")
        .unwrap();

    // The entries of the last write, whose replay over its own result must change nothing.
    let tail: Vec<_> = log
        .iter()
        .filter(|e| e.get_timestamp("ts").unwrap() > mark)
        .collect();
    assert!(tail.len() > 10);

    let general = open(&tmpdir("rp-general"));
    for e in log.iter().chain(tail.iter().copied()) {
        general.write(|t| t.apply_oplog_entry(e)).unwrap();
    }
    let replayed = open(&tmpdir("rp-replayed"));
    // All in one transaction, then the tail again in small batches (idempotence).
    replayed
        .write(|t| log.iter().try_for_each(|e| t.replay_oplog_entry(e)))
        .unwrap();
    for batch in tail.chunks(3) {
        replayed
            .write(|t| batch.iter().try_for_each(|e| t.replay_oplog_entry(e)))
            .unwrap();
    }
    assert_eq!(state(&replayed), state(&general));
    assert_eq!(state(&replayed), state(&src));

    // The restored engine continues the source's timeline: its optime is the last entry's,
    // nothing was logged again, and new writes get later optimes and are logged.
    assert_eq!(replayed.latest_optime(), Some(last_ts));
    assert!(replayed.oplog_range(None, None, 10).unwrap().is_empty());
    replayed
        .write(|t| t.insert("shop.items", &raw(doc! {"_id": -5, "sku": "new"})))
        .unwrap();
    let after = replayed.oplog_range(None, None, 10).unwrap();
    assert_eq!(after.len(), 1);
    assert!(after[0].get_timestamp("ts").unwrap() > last_ts);
    let err = replayed
        .write(|t| t.insert("shop.items", &raw(doc! {"_id": -6, "sku": "new"})))
        .unwrap_err();
    assert_eq!(err.code(), 11000);

    // A failing entry fails its transaction as a whole.
    let bad = raw(
        doc! {"op": "i", "ns": "shop.items", "o": {"_id": -7, "sku": "s1"}, "ts": Timestamp {time: last_ts.time + 1, increment: 1}},
    );
    let before = state(&replayed);
    let err = replayed
        .write(|t| {
            t.replay_oplog_entry(&raw(doc! {"op": "i", "ns": "shop.items", "o": {"_id": -8}, "ts": Timestamp {time: last_ts.time + 1, increment: 0}}))?;
            t.replay_oplog_entry(&bad)
        })
        .unwrap_err();
    assert_eq!(err.code(), 11000);
    assert_eq!(state(&replayed), before);
}

#[test]
fn bulk_load_enforces_unique_indexes_across_sorted_runs() {
    let dir = tmpdir("bulk-unique");
    let mut loader = BulkLoader::create(&dir).unwrap();
    loader
        .add_collection(
            "a.b",
            None,
            &doc! {},
            &[doc! {"key": {"u": 1}, "name": "u_1", "unique": true}],
        )
        .unwrap();
    let docs: Vec<_> = (0..50).map(|i| raw(doc! {"_id": i, "u": i % 49})).collect();
    loader
        .insert_all("a.b", docs.iter().map(|d| d.as_ref()))
        .unwrap();
    let err = loader.finish(None).unwrap_err();
    assert_eq!(err.code(), 11000);
    assert!(err.to_string().contains("u_1"), "{err}");
    assert!(err.to_string().contains("dup key: { u: 0 }"), "{err}");
    // Nothing that looks like an engine was left behind.
    let e = open(&dir);
    assert_eq!(e.read_view().unwrap().collections().count(), 0);
}
