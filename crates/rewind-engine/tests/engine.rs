//! Integration tests of the engine through its public API.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bson::{Bson, Document, RawDocumentBuf, Timestamp, doc};
use rewind_engine::{BulkLoader, Engine, EngineError, EngineOptions, Sync};

#[path = "engine/bulk.rs"]
mod bulk;
#[path = "engine/insert_many.rs"]
mod insert_many;
#[path = "engine/model.rs"]
mod model;
#[path = "engine/replay.rs"]
mod replay;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh directory under the system temp dir, unique per test and process.
fn tmpdir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("rewind-engine-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn raw(d: Document) -> RawDocumentBuf {
    RawDocumentBuf::try_from(&d).unwrap()
}

fn open(dir: &PathBuf) -> Engine {
    Engine::open(dir, EngineOptions::default()).unwrap()
}

fn all_docs(engine: &Engine, ns: &str) -> Vec<Vec<u8>> {
    let view = engine.read_view().unwrap();
    view.scan(ns, None, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|d| d.into_bytes())
        .collect()
}

fn entries(engine: &Engine) -> Vec<Document> {
    engine
        .oplog_range(None, None, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|e| Document::try_from(e).unwrap())
        .collect()
}

#[test]
fn crud_and_implicit_create() {
    let dir = tmpdir("crud");
    let e = open(&dir);
    let a = raw(doc! {"_id": 1, "z": 1, "a": "x"});
    e.write(|t| t.insert("app.users", &a)).unwrap();
    let v = e.read_view().unwrap();
    assert_eq!(
        v.get("app.users", &Bson::Double(1.0))
            .unwrap()
            .unwrap()
            .as_bytes(),
        a.as_bytes()
    );
    let info = v.collection("app.users").unwrap();
    assert_eq!(info.uuid.subtype, bson::spec::BinarySubtype::Uuid);
    assert_eq!(info.indexes[0].name, "_id_");
    drop(v);
    let err = e
        .write(|t| t.insert("app.users", &raw(doc! {"_id": 1i64})))
        .unwrap_err();
    assert_eq!(err.code(), 11000);
    let b = raw(doc! {"_id": 1, "a": "y"});
    assert!(
        e.write(|t| t.update("app.users", &Bson::Int32(1), &b))
            .unwrap()
    );
    assert!(
        !e.write(|t| t.update("app.users", &Bson::Int32(2), &b))
            .unwrap()
    );
    let changed_id = raw(doc! {"_id": 3});
    assert_eq!(
        e.write(|t| t.update("app.users", &Bson::Int32(1), &changed_id))
            .unwrap_err()
            .code(),
        66
    );
    assert_eq!(all_docs(&e, "app.users"), vec![b.as_bytes().to_vec()]);
    assert!(e.write(|t| t.delete("app.users", &Bson::Int64(1))).unwrap());
    assert!(!e.write(|t| t.delete("app.users", &Bson::Int64(1))).unwrap());
    assert!(all_docs(&e, "app.users").is_empty());
    assert_eq!(
        e.write(|t| t.insert("app.users", &raw(doc! {"a": 1})))
            .unwrap_err()
            .code(),
        2
    );
    assert_eq!(
        e.write(|t| t.insert("bad$db.c", &a)).unwrap_err().code(),
        73
    );
    assert_eq!(
        e.write(|t| t.create_collection("app.users", &doc! {}))
            .unwrap_err()
            .code(),
        48
    );
    // A failed statement inside a transaction leaves the rest of it intact.
    e.write(|t| {
        t.insert("app.more", &raw(doc! {"_id": 1}))?;
        assert!(t.insert("app.more", &raw(doc! {"_id": 1})).is_err());
        t.insert("app.more", &raw(doc! {"_id": 2}))
    })
    .unwrap();
    assert_eq!(all_docs(&e, "app.more").len(), 2);
    // A failing closure commits nothing, not even the implicit creation.
    let r: Result<(), EngineError> = e.write(|t| {
        t.insert("app.gone", &raw(doc! {"_id": 1}))?;
        Err(EngineError::BadValue("abort".into()))
    });
    assert!(r.is_err());
    assert!(e.read_view().unwrap().collection("app.gone").is_none());
    let dbs = e.read_view().unwrap().list_databases().unwrap();
    assert_eq!(dbs.len(), 1);
    assert_eq!(dbs[0].collections, 2);
}

#[test]
fn ddl_rename_drop_and_listing() {
    let dir = tmpdir("ddl");
    let e = open(&dir);
    e.write(|t| {
        t.create_collection("a.c1", &doc! {"capped": false, "validator": {"x": 1}})?;
        t.insert("a.c1", &raw(doc! {"_id": 1}))?;
        t.create_indexes("a.c1", &[doc! {"key": {"x": 1}, "name": "x_1"}])?;
        t.rename_collection("a.c1", "b.c2", false)
    })
    .unwrap();
    let v = e.read_view().unwrap();
    assert!(v.collection("a.c1").is_none());
    let c2 = v.collection("b.c2").unwrap();
    assert_eq!(c2.options, doc! {"capped": false, "validator": {"x": 1}});
    assert_eq!(c2.indexes.len(), 2);
    assert_eq!(v.scan("b.c2", None, 10).unwrap().len(), 1);
    drop(v);
    assert_eq!(
        e.write(|t| t.drop_index("b.c2", "nope"))
            .unwrap_err()
            .code(),
        27
    );
    assert_eq!(
        e.write(|t| t.drop_index("b.c2", "_id_"))
            .unwrap_err()
            .code(),
        72
    );
    e.write(|t| t.drop_index("b.c2", "x_1")).unwrap();
    assert!(e.write(|t| t.drop_database("b")).unwrap());
    assert!(e.read_view().unwrap().collection("b.c2").is_none());
    assert_eq!(
        e.write(|t| t.rename_collection("x.y", "x.z", false))
            .unwrap_err()
            .code(),
        26
    );
}

#[test]
fn unique_indexes_multikey_compound_and_failed_build() {
    let dir = tmpdir("unique");
    let e = open(&dir);
    e.write(|t| {
        t.create_indexes(
            "db.c",
            &[
                doc! {"key": {"tags": 1}, "name": "tags_1", "unique": true},
                doc! {"key": {"a": 1, "b.c": -1}, "name": "ab", "unique": true},
                doc! {"key": {"s": 1}, "name": "s_1", "unique": true, "sparse": true},
            ],
        )
    })
    .unwrap();
    e.write(|t| {
        t.insert(
            "db.c",
            &raw(doc! {"_id": 1, "tags": ["x", "y", "x"], "a": 1, "b": {"c": 1}}),
        )
    })
    .unwrap();
    let err = e
        .write(|t| t.insert("db.c", &raw(doc! {"_id": 2, "tags": ["z", "y"]})))
        .unwrap_err();
    match &err {
        EngineError::DuplicateKey(dk) => {
            let (index, key_pattern, key_value) = (&dk.index, &dk.key_pattern, &dk.key_value);
            assert_eq!(index, "tags_1");
            assert_eq!(key_pattern, &doc! {"tags": 1});
            assert_eq!(key_value, &doc! {"tags": "y"});
        }
        other => panic!("unexpected {other:?}"),
    }
    let err = e
        .write(|t| {
            t.insert(
                "db.c",
                &raw(doc! {"_id": 3, "tags": "q", "a": 1.0, "b": {"c": 1i64}}),
            )
        })
        .unwrap_err();
    match &err {
        EngineError::DuplicateKey(dk) => {
            let (index, key_pattern, key_value) = (&dk.index, &dk.key_pattern, &dk.key_value);
            assert_eq!(key_pattern, &doc! {"a": 1, "b.c": -1});
            assert_eq!(index, "ab");
            assert_eq!(key_value, &doc! {"a": 1.0, "b.c": 1i64});
        }
        other => panic!("unexpected {other:?}"),
    }
    // Two documents without `s` are fine under a sparse unique index; two nulls under a
    // non-sparse one are not.
    e.write(|t| t.insert("db.c", &raw(doc! {"_id": 4, "tags": "t4", "a": 4})))
        .unwrap();
    e.write(|t| t.insert("db.c", &raw(doc! {"_id": 5, "tags": "t5"})))
        .unwrap();
    let err = e
        .write(|t| t.insert("db.c", &raw(doc! {"_id": 7, "tags": "t7"})))
        .unwrap_err();
    match &err {
        EngineError::DuplicateKey(dk) => {
            let (index, key_pattern, key_value) = (&dk.index, &dk.key_pattern, &dk.key_value);
            assert_eq!(key_pattern, &doc! {"a": 1, "b.c": -1});
            assert_eq!(index, "ab");
            assert_eq!(key_value, &doc! {"a": null, "b.c": null});
        }
        other => panic!("unexpected {other:?}"),
    }
    // Parallel arrays are refused.
    let err = e
        .write(|t| {
            t.insert(
                "db.c",
                &raw(doc! {"_id": 6, "tags": "t6", "a": [1, 2], "b": {"c": [1]}}),
            )
        })
        .unwrap_err();
    assert_eq!(err.code(), 171);
    // Lookups through an index.
    let v = e.read_view().unwrap();
    assert_eq!(
        v.find_by_index("db.c", "tags_1", &[Bson::String("x".into())])
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        v.find_by_index("db.c", "ab", &[Bson::Int64(4)])
            .unwrap()
            .len(),
        1
    );
    assert_eq!(v.find_by_index("db.c", "ab", &[]).unwrap().len(), 3);
    assert_eq!(v.find_by_index("db.c", "nope", &[]).unwrap_err().code(), 27);
    drop(v);
    // A unique build over duplicates fails and leaves nothing behind.
    let before = entries(&e).len();
    e.write(|t| t.insert("db.d", &raw(doc! {"_id": 1, "k": 5})))
        .unwrap();
    e.write(|t| t.insert("db.d", &raw(doc! {"_id": 2, "k": 5})))
        .unwrap();
    let err = e
        .write(|t| {
            t.create_indexes(
                "db.d",
                &[doc! {"key": {"k": 1}, "name": "k_1", "unique": true}],
            )
        })
        .unwrap_err();
    assert_eq!(err.code(), 11000);
    assert_eq!(
        e.read_view()
            .unwrap()
            .collection("db.d")
            .unwrap()
            .indexes
            .len(),
        1
    );
    assert_eq!(entries(&e).len(), before + 3);
    // Conflicting definitions.
    e.write(|t| t.create_indexes("db.d", &[doc! {"key": {"k": 1}, "name": "k_1"}]))
        .unwrap();
    assert_eq!(
        e.write(|t| t.create_indexes("db.d", &[doc! {"key": {"k": 1}, "name": "k_1"}]))
            .unwrap(),
        0
    );
    assert_eq!(
        e.write(|t| t.create_indexes("db.d", &[doc! {"key": {"j": 1}, "name": "k_1"}]))
            .unwrap_err()
            .code(),
        86
    );
    // `sparse` (like `unique`) tells indexes apart: under the same name, another index (86).
    assert_eq!(
        e.write(|t| t.create_indexes(
            "db.d",
            &[doc! {"key": {"k": 1}, "name": "k_1", "sparse": true}]
        ))
        .unwrap_err()
        .code(),
        86
    );
    // An option that does not tell indexes apart, under the same name (85).
    assert_eq!(
        e.write(|t| t.create_indexes(
            "db.d",
            &[doc! {"key": {"k": 1}, "name": "k_1", "storageEngine": {}}]
        ))
        .unwrap_err()
        .code(),
        85
    );
    assert_eq!(
        e.write(|t| t.create_indexes("db.d", &[doc! {"key": {"k": 1}, "name": "other"}]))
            .unwrap_err()
            .code(),
        85
    );
}

#[test]
fn writes_to_the_local_database_are_not_logged() {
    let dir = tmpdir("local");
    let e = open(&dir);
    let d = raw(doc! {"_id": 1, "a": 1});
    e.write(|t| {
        t.insert("local.startup", &d)?;
        t.update(
            "local.startup",
            &Bson::Int32(1),
            &raw(doc! {"_id": 1, "a": 2}),
        )?;
        t.create_indexes("local.startup", &[doc! {"key": {"a": 1}, "name": "a_1"}])?;
        t.drop_collection("local.startup")?;
        t.insert("db.c", &d)
    })
    .unwrap();
    let log = entries(&e);
    let namespaces: Vec<&str> = log.iter().map(|x| x.get_str("ns").unwrap()).collect();
    // The implicit creation of db.c, then its insert.
    assert_eq!(namespaces, ["db.$cmd", "db.c"]);
    // Nor can a rename carry documents past the oplog, either way.
    e.write(|t| t.insert("local.kept", &d)).unwrap();
    for (from, to) in [("local.kept", "db.moved"), ("db.c", "local.moved")] {
        let err = e
            .write(|t| t.rename_collection(from, to, false))
            .unwrap_err();
        assert_eq!(err.code(), 20, "{from} -> {to}");
    }
}

#[test]
fn a_collection_holds_at_most_64_indexes() {
    let dir = tmpdir("many");
    let e = open(&dir);
    let specs: Vec<Document> = (0..63)
        .map(|i| doc! {"key": {format!("f{i}"): 1}, "name": format!("f{i}_1")})
        .collect();
    assert_eq!(e.write(|t| t.create_indexes("db.c", &specs)).unwrap(), 63);
    let err = e
        .write(|t| t.create_indexes("db.c", &[doc! {"key": {"g": 1}, "name": "g_1"}]))
        .unwrap_err();
    assert_eq!(err.code(), 67);
}

#[test]
fn empty_timestamps_are_filled_on_insert() {
    let dir = tmpdir("empty-ts");
    let e = open(&dir);
    let zero = Timestamp {
        time: 0,
        increment: 0,
    };
    let docs = [
        raw(doc! {"_id": 1, "a": zero, "b": {"c": zero}, "d": [zero]}),
        raw(doc! {"_id": zero, "a": zero}),
    ];
    e.write(|t| t.insert("db.one", &docs[0])).unwrap();
    e.write(|t| t.insert_many("db.many", &docs, true).map(|_| ()))
        .unwrap();
    let log = entries(&e);
    for ns in ["db.one", "db.many"] {
        let stored: Vec<Document> = all_docs(&e, ns)
            .into_iter()
            .map(|bytes| Document::from_reader(bytes.as_slice()).unwrap())
            .collect();
        for doc in &stored {
            // Top-level fields only, and never `_id`; the value is a fresh optime, below
            // the insert's own entry.
            let a = doc.get_timestamp("a").unwrap();
            assert!(a.time > 0, "{doc:?}");
            let entry = log
                .iter()
                .find(|x| x.get_str("ns").ok() == Some(ns) && x.get_document("o").ok() == Some(doc))
                .unwrap_or_else(|| panic!("no entry logs {doc:?}"));
            let ts = entry.get_timestamp("ts").unwrap();
            assert!((a.time, a.increment) < (ts.time, ts.increment));
            if doc.get_i32("_id").ok() == Some(1) {
                assert_eq!(doc.get_document("b").unwrap(), &doc! {"c": zero});
                assert_eq!(doc.get_array("d").unwrap(), &vec![Bson::Timestamp(zero)]);
            } else {
                assert_eq!(doc.get("_id"), Some(&Bson::Timestamp(zero)));
            }
        }
    }
}

#[test]
fn oplog_and_index_sizes() {
    let dir = tmpdir("sizes");
    let e = open(&dir);
    let docs = [
        raw(doc! {"_id": 1, "a": "x"}),
        raw(doc! {"_id": 2, "a": "yy"}),
    ];
    e.write(|t| {
        t.create_indexes("db.c", &[doc! {"key": {"a": 1}, "name": "a_1"}])?;
        for d in &docs {
            t.insert("db.c", d)?;
        }
        // The transaction reads its own uncommitted entries: create, createIndexes, 2 inserts.
        assert_eq!(t.oplog_range(None, usize::MAX)?.len(), 4);
        Ok(())
    })
    .unwrap();
    let view = e.read_view().unwrap();
    let log = e.oplog_range(None, None, usize::MAX).unwrap();
    let stats = view.oplog_stats().unwrap();
    assert_eq!(stats.count, log.len() as u64);
    assert_eq!(
        stats.size_bytes,
        log.iter().map(|r| r.as_bytes().len() as u64).sum::<u64>()
    );
    assert_eq!(e.oplog_bytes(), stats.size_bytes, "kept by commits");
    let sizes = view.index_sizes("db.c").unwrap();
    let names: Vec<&str> = sizes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["_id_", "a_1"]);
    // Every index holds at least a byte of key per document.
    assert!(sizes.iter().all(|(_, bytes)| *bytes >= 2), "{sizes:?}");
    assert!(view.index_sizes("db.missing").unwrap().is_empty());
    assert_eq!(e.options().oplog_max_bytes, 1 << 30);
    drop(view);
    drop(e);
    assert_eq!(
        open(&dir).oplog_bytes(),
        stats.size_bytes,
        "summed when opened"
    );
}

#[test]
fn oplog_entries_have_mongod_shape() {
    let dir = tmpdir("oplog");
    let e = open(&dir);
    let d = raw(doc! {"_id": 7, "a": 1});
    let d2 = raw(doc! {"_id": 7, "a": 2});
    e.write(|t| {
        t.create_collection("db.c", &doc! {"capped": true, "size": 4096})?;
        t.insert("db.c", &d)?;
        t.update("db.c", &Bson::Int32(7), &d2)?;
        t.delete("db.c", &Bson::Int32(7))?;
        t.create_indexes("db.c", &[doc! {"key": {"a": 1}, "name": "a_1"}])?;
        t.drop_index("db.c", "a_1")?;
        t.rename_collection("db.c", "db.d", false)?;
        t.drop_collection("db.d")?;
        t.insert("db.e", &d)?;
        t.drop_database("db")
    })
    .unwrap();
    let log = entries(&e);
    let uuid = match log[0].get("ui") {
        Some(Bson::Binary(b)) => b.clone(),
        other => panic!("no ui: {other:?}"),
    };
    let shapes: Vec<(String, String, Document, Option<Document>)> = log
        .iter()
        .map(|x| {
            let keys: Vec<&str> = x.keys().map(String::as_str).collect();
            let expected: Vec<&str> = if x.contains_key("o2") {
                vec!["op", "ns", "ui", "o", "o2", "ts", "t", "v", "wall"]
            } else if x.contains_key("ui") {
                vec!["op", "ns", "ui", "o", "ts", "t", "v", "wall"]
            } else {
                vec!["op", "ns", "o", "ts", "t", "v", "wall"]
            };
            assert_eq!(keys, expected);
            assert_eq!(x.get("t"), Some(&Bson::Int64(1)));
            assert_eq!(x.get("v"), Some(&Bson::Int64(2)));
            assert!(matches!(x.get("wall"), Some(Bson::DateTime(_))));
            (
                x.get_str("op").unwrap().to_string(),
                x.get_str("ns").unwrap().to_string(),
                x.get_document("o").unwrap().clone(),
                x.get_document("o2").ok().cloned(),
            )
        })
        .collect();
    let id_index = doc! {"v": 2, "key": {"_id": 1}, "name": "_id_"};
    let c = |ns: &str, o: Document, o2: Option<Document>| ("c".to_string(), ns.to_string(), o, o2);
    let expected = vec![
        c(
            "db.$cmd",
            doc! {"create": "c", "capped": true, "size": 4096, "idIndex": id_index.clone()},
            None,
        ),
        (
            "i".into(),
            "db.c".into(),
            doc! {"_id": 7, "a": 1},
            Some(doc! {"_id": 7}),
        ),
        (
            "u".into(),
            "db.c".into(),
            doc! {"_id": 7, "a": 2},
            Some(doc! {"_id": 7}),
        ),
        ("d".into(), "db.c".into(), doc! {"_id": 7}, None),
        c(
            "db.$cmd",
            doc! {"createIndexes": "c", "v": 2, "key": {"a": 1}, "name": "a_1"},
            None,
        ),
        c(
            "db.$cmd",
            doc! {"dropIndexes": "c", "index": "a_1"},
            Some(doc! {"v": 2, "key": {"a": 1}, "name": "a_1"}),
        ),
        c(
            "db.$cmd",
            doc! {"renameCollection": "db.c", "to": "db.d", "stayTemp": false, "dropTarget": false},
            None,
        ),
        c(
            "db.$cmd",
            doc! {"drop": "d"},
            Some(doc! {"numRecords": 0i64}),
        ),
        c("db.$cmd", doc! {"create": "e", "idIndex": id_index}, None),
        (
            "i".into(),
            "db.e".into(),
            doc! {"_id": 7, "a": 1},
            Some(doc! {"_id": 7}),
        ),
        c(
            "db.$cmd",
            doc! {"drop": "e"},
            Some(doc! {"numRecords": 1i64}),
        ),
        c("db.$cmd", doc! {"dropDatabase": 1}, None),
    ];
    assert_eq!(shapes, expected);
    assert_eq!(log[1].get("ui"), Some(&Bson::Binary(uuid)));
    let ts: Vec<Timestamp> = log.iter().map(|x| x.get_timestamp("ts").unwrap()).collect();
    assert!(
        ts.windows(2)
            .all(|w| (w[0].time, w[0].increment) < (w[1].time, w[1].increment))
    );
    assert_eq!(e.latest_optime(), ts.last().copied());
    // Range reads.
    let after = e.oplog_range(Some(ts[2]), Some(ts[5]), 10).unwrap();
    assert_eq!(after.len(), 3);
    assert_eq!(e.oplog_range(Some(ts[2]), None, 2).unwrap().len(), 2);
}

#[test]
fn optimes_increase_across_reopen_and_notify() {
    let dir = tmpdir("reopen");
    let last = {
        let e = open(&dir);
        let mut rx = e.subscribe();
        for i in 0..50 {
            e.write(|t| t.insert("db.c", &raw(doc! {"_id": i})))
                .unwrap();
        }
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), e.latest_optime());
        e.latest_optime().unwrap()
    };
    let e = open(&dir);
    assert_eq!(e.latest_optime(), Some(last));
    e.write(|t| t.insert("db.c", &raw(doc! {"_id": "next"})))
        .unwrap();
    let now = e.latest_optime().unwrap();
    assert!((now.time, now.increment) > (last.time, last.increment));
}

#[test]
fn oplog_retention_by_size() {
    let dir = tmpdir("retention");
    let opts = EngineOptions {
        oplog_max_bytes: 20_000,
        ..EngineOptions::default()
    };
    let e = Engine::open(&dir, opts).unwrap();
    for i in 0..1000 {
        e.write(|t| t.insert("db.c", &raw(doc! {"_id": i, "pad": "x".repeat(50)})))
            .unwrap();
    }
    let log = e.oplog_range(None, None, usize::MAX).unwrap();
    let bytes: usize = log.iter().map(|x| x.as_bytes().len()).sum();
    assert!(bytes <= 20_000 && bytes > 10_000, "{bytes}");
    assert_eq!(
        Document::try_from(log.last().unwrap().clone())
            .unwrap()
            .get_timestamp("ts")
            .unwrap(),
        e.latest_optime().unwrap()
    );
    assert!(e.oldest_optime().unwrap().is_some());
}

#[test]
fn read_view_is_isolated_and_does_not_block_the_writer() {
    let dir = tmpdir("view");
    let e = Arc::new(open(&dir));
    e.write(|t| t.insert("db.c", &raw(doc! {"_id": 1})))
        .unwrap();
    let view = e.read_view().unwrap();
    let at = view.optime();
    // The writer commits while the view is open, from another thread.
    let writer = {
        let e = e.clone();
        std::thread::spawn(move || {
            e.write(|t| {
                t.insert("db.c", &raw(doc! {"_id": 2}))?;
                t.create_indexes("db.c", &[doc! {"key": {"a": 1}, "name": "a_1"}])?;
                t.insert("db.new", &raw(doc! {"_id": 1}))
            })
        })
    };
    writer.join().unwrap().unwrap();
    // The view moves to another thread (it is Send) and still sees the old state.
    let handle = std::thread::spawn(move || {
        let ids = view.scan("db.c", None, 10).unwrap().len();
        (
            ids,
            view.collection("db.new").is_some(),
            view.collection("db.c").unwrap().indexes.len(),
            view.optime(),
            view.oplog_range(at, None, 10).unwrap().len(),
        )
    });
    assert_eq!(handle.join().unwrap(), (1, false, 1, at, 0));
    assert_eq!(all_docs(&e, "db.c").len(), 2);
}

const CRASH_ENV: &str = "REWIND_ENGINE_CRASH_DIR";

/// Child half of the kill -9 test: commits forever, printing each acknowledged `_id`.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CRASH_ENV) else {
        return;
    };
    let e = Engine::open(
        &dir,
        EngineOptions {
            sync: Sync::Normal,
            ..EngineOptions::default()
        },
    )
    .unwrap();
    let mut out = std::io::stdout().lock();
    for i in 0i64.. {
        e.write(|t| t.insert("db.c", &raw(doc! {"_id": i, "pad": "p".repeat(200)})))
            .unwrap();
        use std::io::Write;
        writeln!(out, "ACK {i}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tmpdir("crash");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CRASH_ENV, &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("ACK ") {
            acked.push(n.parse::<i64>().unwrap());
            if acked.len() >= 300 {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    assert_eq!(acked.len(), 300);
    let e = open(&dir);
    let v = e.read_view().unwrap();
    for id in acked {
        assert!(
            v.get("db.c", &Bson::Int64(id)).unwrap().is_some(),
            "lost acknowledged _id {id}"
        );
    }
    assert!(v.optime().is_some());
}

fn sample_source(e: &Engine) {
    e.write(|t| {
        t.create_collection("shop.items", &doc! {"validator": {"price": {"$gte": 0}}})?;
        t.create_indexes(
            "shop.items",
            &[
                doc! {"key": {"sku": 1}, "name": "sku_1", "unique": true},
                doc! {"key": {"tags": 1, "price": -1}, "name": "tp"},
            ],
        )
    })
    .unwrap();
    for batch in 0..10 {
        e.write(|t| {
            for i in 0..100 {
                let n = batch * 100 + i;
                t.insert("shop.items", &raw(doc! {"_id": n, "sku": format!("s{n}"), "price": n as f64 / 3.0, "tags": ["a", format!("t{}", n % 7)]}))?;
                t.insert("shop.log", &raw(doc! {"_id": bson::oid::ObjectId::new(), "z": 1, "a": n}))?;
            }
            Ok(())
        })
        .unwrap();
    }
    e.write(|t| {
        t.update(
            "shop.items",
            &Bson::Int32(5),
            &raw(doc! {"_id": 5, "sku": "s5", "price": 1}),
        )?;
        t.delete("shop.items", &Bson::Int32(6))
    })
    .unwrap();
}

#[test]
fn bulk_load_equals_inserts_byte_for_byte() {
    let src_dir = tmpdir("bulk-src");
    let dst_dir = tmpdir("bulk-dst");
    let src = open(&src_dir);
    sample_source(&src);
    let view = src.read_view().unwrap();
    let mut loader = BulkLoader::create(&dst_dir).unwrap();
    for info in view.collections() {
        let specs: Vec<Document> = info.indexes.iter().map(|s| s.spec.clone()).collect();
        loader
            .add_collection(&info.ns(), Some(info.uuid.clone()), &info.options, &specs)
            .unwrap();
        view.for_each(&info.ns(), |d| loader.insert(&info.ns(), d).map(|_| true))
            .unwrap();
    }
    loader.finish(view.optime()).unwrap();
    let dst = open(&dst_dir);
    let dview = dst.read_view().unwrap();
    assert_eq!(
        dview.collections().collect::<Vec<_>>(),
        view.collections().collect::<Vec<_>>()
    );
    for info in view.collections() {
        assert_eq!(all_docs(&dst, &info.ns()), all_docs(&src, &info.ns()));
        for spec in &info.indexes {
            let a = dview.find_by_index(&info.ns(), &spec.name, &[]).unwrap();
            assert_eq!(a, view.find_by_index(&info.ns(), &spec.name, &[]).unwrap());
        }
    }
    assert_eq!(dview.optime(), view.optime());
    // The restored unique index is live.
    let err = dst
        .write(|t| t.insert("shop.items", &raw(doc! {"_id": -1, "sku": "s1"})))
        .unwrap_err();
    assert_eq!(err.code(), 11000);
    let err = BulkLoader::create(&dst_dir).err().unwrap();
    assert_eq!(err.code(), 2);
}

#[test]
fn replaying_the_oplog_reproduces_the_documents() {
    let src_dir = tmpdir("replay-src");
    let dst_dir = tmpdir("replay-dst");
    let src = open(&src_dir);
    sample_source(&src);
    src.write(|t| {
        t.rename_collection("shop.log", "shop.log2", false)?;
        t.insert("other.x", &raw(doc! {"_id": 1}))?;
        t.drop_database("other")
    })
    .unwrap();
    let dst = open(&dst_dir);
    let log = src.oplog_range(None, None, usize::MAX).unwrap();
    // Applying twice shows idempotence.
    for _ in 0..2 {
        dst.write(|t| log.iter().try_for_each(|e| t.apply_oplog_entry(e)))
            .unwrap();
    }
    let sv = src.read_view().unwrap();
    let dv = dst.read_view().unwrap();
    let names = |v: &rewind_engine::ReadView| {
        v.collections()
            .map(|c| (c.ns(), c.uuid.clone(), c.indexes.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&sv), names(&dv));
    for info in sv.collections() {
        assert_eq!(all_docs(&dst, &info.ns()), all_docs(&src, &info.ns()));
    }
    // $v:2 diff updates and nested applyOps.
    let op = doc! {"op": "c", "ns": "admin.$cmd", "o": {"applyOps": [
        {"op": "u", "ns": "shop.items", "o": {"$v": 2, "diff": {"u": {"price": 99}, "i": {"new": true}}}, "o2": {"_id": 1}},
        {"op": "n", "ns": "", "o": {"msg": "noop"}},
    ]}};
    dst.write(|t| t.apply_oplog_entry(&raw(op))).unwrap();
    let one = dv.get("shop.items", &Bson::Int32(1)).unwrap().unwrap();
    drop(dv);
    assert_eq!(
        Document::try_from(one).unwrap().get("price"),
        Some(&Bson::Double(1.0 / 3.0))
    );
    let got = dst
        .read_view()
        .unwrap()
        .get("shop.items", &Bson::Int32(1))
        .unwrap()
        .unwrap();
    assert_eq!(
        Document::try_from(got).unwrap(),
        doc! {"_id": 1, "sku": "s1", "price": 99, "tags": ["a", "t1"], "new": true}
    );
    let legacy = doc! {"op": "u", "ns": "shop.items", "o": {"$set": {"a": 1}}, "o2": {"_id": 1}};
    assert_eq!(
        dst.write(|t| t.apply_oplog_entry(&raw(legacy)))
            .unwrap_err()
            .code(),
        2
    );
}

/// Each collection's namespace and index names, as a view's catalog has them.
fn describe(view: &rewind_engine::ReadView) -> Vec<(String, Vec<String>)> {
    view.collections()
        .map(|c| (c.ns(), c.indexes.iter().map(|i| i.name.clone()).collect()))
        .collect()
}

#[test]
fn views_share_a_decoded_catalog_and_see_the_one_of_their_snapshot() {
    let dir = tmpdir("catalog");
    let e = open(&dir);
    e.write(|t| t.insert("app.a", &raw(doc! {"_id": 1})))
        .unwrap();
    let first = e.read_view().unwrap();
    let at_first = describe(&first);
    assert_eq!(at_first, vec![("app.a".into(), vec!["_id_".into()])]);
    // Neither a second view nor a document write changes the catalog: views share it.
    let second = e.read_view().unwrap();
    e.write(|t| t.insert("app.a", &raw(doc! {"_id": 2})))
        .unwrap();
    let third = e.read_view().unwrap();
    for other in [&second, &third] {
        assert!(std::ptr::eq(
            first.collection("app.a").unwrap(),
            other.collection("app.a").unwrap()
        ));
    }
    drop((second, third));

    type Change = fn(&mut rewind_engine::WriteTxn<'_>) -> rewind_engine::Result<()>;
    type Expected = Vec<(&'static str, Vec<&'static str>)>;
    let changes: [(Change, Expected); 5] = [
        (
            |t| t.create_collection("app.b", &doc! {}),
            vec![("app.a", vec!["_id_"]), ("app.b", vec!["_id_"])],
        ),
        (
            |t| {
                t.create_indexes("app.a", &[doc! {"key": {"x": 1}, "name": "x_1"}])
                    .map(drop)
            },
            vec![("app.a", vec!["_id_", "x_1"]), ("app.b", vec!["_id_"])],
        ),
        (
            |t| t.drop_index("app.a", "x_1"),
            vec![("app.a", vec!["_id_"]), ("app.b", vec!["_id_"])],
        ),
        (
            |t| t.rename_collection("app.b", "app.c", false),
            vec![("app.a", vec!["_id_"]), ("app.c", vec!["_id_"])],
        ),
        (
            |t| t.drop_collection("app.c").map(drop),
            vec![("app.a", vec!["_id_"])],
        ),
    ];
    for (change, expected) in changes {
        e.write(change).unwrap();
        let expected: Vec<(String, Vec<String>)> = expected
            .into_iter()
            .map(|(ns, names)| (ns.into(), names.into_iter().map(String::from).collect()))
            .collect();
        assert_eq!(describe(&e.read_view().unwrap()), expected);
    }

    // A write that changed the catalog and failed leaves nothing to see.
    let err = e
        .write(|t| {
            t.create_collection("app.gone", &doc! {})?;
            t.insert("app.a", &raw(doc! {"_id": 1}))
        })
        .unwrap_err();
    assert_eq!(err.code(), 11000);
    assert_eq!(
        describe(&e.read_view().unwrap()),
        vec![("app.a".into(), vec!["_id_".into()])]
    );

    // The generation lives in the file: a change made through another engine on the same
    // directory (this one's cache knows nothing of it) is seen by this engine's next view.
    drop(first);
    let other = open(&dir);
    other
        .write(|t| t.create_collection("app.d", &doc! {}))
        .unwrap();
    let app_a_and_d = vec![
        ("app.a".into(), vec!["_id_".into()]),
        ("app.d".into(), vec!["_id_".into()]),
    ];
    assert_eq!(describe(&e.read_view().unwrap()), app_a_and_d);
    drop(e);
    assert_eq!(describe(&open(&dir).read_view().unwrap()), app_a_and_d);
}

#[test]
fn nesting_past_the_limit_is_refused_alike_one_at_a_time_and_in_batches() {
    let e = open(&tmpdir("depth"));
    let nested = |levels: usize| {
        let mut inner = doc! {"leaf": 1};
        for _ in 1..levels {
            inner = doc! {"a": inner};
        }
        inner
    };
    // The top-level document is the first level: `_id` beside 199 more.
    let at_limit = raw(doc! {"_id": 1, "d": nested(199)});
    let too_deep = raw(doc! {"_id": 2, "d": nested(200)});
    e.write(|t| t.insert("app.deep", &at_limit)).unwrap();
    let one = e.write(|t| t.insert("app.deep", &too_deep)).unwrap_err();
    let batch = e
        .write(|t| t.insert_many("app.deep", &[&too_deep], true))
        .unwrap();
    assert_eq!(batch.inserted, 0);
    assert_eq!(batch.errors.len(), 1);
    assert_eq!(batch.errors[0].1.code(), one.code());
    assert_eq!(one.code(), 22);
    assert_eq!(all_docs(&e, "app.deep"), vec![at_limit.into_bytes()]);
}
