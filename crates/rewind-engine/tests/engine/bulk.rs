//! The bulk loader writes SQLite's pages itself: SQLite must find the result sound
//! (`PRAGMA integrity_check`), and the engine must read back exactly what went in, through
//! every path (scans, `_id` lookups, index lookups) and keep working on it afterwards.

use std::path::Path;

use bson::{Binary, Bson, RawDocumentBuf, doc, spec::BinarySubtype};
use rewind_engine::{BulkLoader, Engine};

use super::{open, raw, tmpdir};

fn integrity(dir: &Path) -> String {
    let conn = rusqlite::Connection::open(dir.join("engine.sqlite")).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

/// A document of about `size` bytes.
fn sized(id: i64, size: usize) -> RawDocumentBuf {
    raw(doc! {
        "_id": id,
        "group": id % 7,
        "email": format!("user{id}@example.com"),
        "blob": Binary { subtype: BinarySubtype::Generic, bytes: vec![(id % 251) as u8; size] },
    })
}

fn load(dir: &Path, docs: &[(&str, &RawDocumentBuf)]) -> rewind_engine::Result<()> {
    let mut loader = BulkLoader::create(dir)?;
    loader.add_collection(
        "app.users",
        None,
        &doc! {},
        &[
            doc! {"key": {"group": 1}, "name": "group_1"},
            doc! {"key": {"email": 1}, "name": "email_1", "unique": true},
        ],
    )?;
    loader.add_collection("app.empty", None, &doc! {"capped": false}, &[])?;
    // Consecutive documents of one namespace go in one call, as a restore passes a chunk.
    let mut at = 0;
    while at < docs.len() {
        let ns = docs[at].0;
        let run = docs[at..].iter().take_while(|(n, _)| *n == ns).count();
        loader.insert_all(ns, docs[at..at + run].iter().map(|(_, d)| d.as_ref()))?;
        at += run;
    }
    loader.finish(None)
}

fn check_reads(engine: &Engine, ns: &str, expected: &[&RawDocumentBuf]) {
    let mut expected: Vec<&RawDocumentBuf> = expected.to_vec();
    expected.sort_by_key(|d| d.get_i64("_id").unwrap());
    let view = engine.read_view().unwrap();
    let scanned = view.scan(ns, None, usize::MAX).unwrap();
    assert_eq!(scanned.len(), expected.len(), "{ns}");
    for (got, want) in scanned.iter().zip(&expected) {
        assert!(got.as_bytes() == want.as_bytes(), "{ns}: bytes differ");
    }
    for want in expected.iter().step_by(101) {
        let id = Bson::Int64(want.get_i64("_id").unwrap());
        let got = view.get(ns, &id).unwrap().unwrap();
        assert!(got.as_bytes() == want.as_bytes());
        let email = want.get_str("email").unwrap();
        let by_index = view
            .find_by_index(ns, "email_1", &[Bson::String(email.into())])
            .unwrap();
        assert_eq!(by_index.len(), 1);
        assert!(by_index[0].as_bytes() == want.as_bytes());
    }
    let group: Vec<_> = view
        .find_by_index(ns, "group_1", &[Bson::Int64(3)])
        .unwrap();
    assert_eq!(
        group.len(),
        expected
            .iter()
            .filter(|d| d.get_i64("group").unwrap() == 3)
            .count()
    );
}

#[test]
fn a_large_load_reads_back_exactly_and_takes_writes() {
    let dir = tmpdir("bulk-large");
    // Enough documents for several tree levels and the second thread's batches, sizes on both
    // sides of the in-page limit (overflow chains), one of several megabytes.
    let docs: Vec<RawDocumentBuf> = (0..40_000)
        .map(|i| {
            let size = match i % 1000 {
                0 => 20_000,
                1 => 3_990,
                2 => 4_100,
                _ => 40 + (i as usize * 37) % 300,
            };
            sized(i, if i == 777 { 5 << 20 } else { size })
        })
        .collect();
    let input: Vec<_> = docs.iter().map(|d| ("app.users", d)).collect();
    load(&dir, &input).unwrap();
    assert_eq!(integrity(&dir), "ok");

    let engine = open(&dir);
    let expected: Vec<_> = docs.iter().collect();
    check_reads(&engine, "app.users", &expected);
    // The empty collection exists, with its options, and holds nothing.
    let view = engine.read_view().unwrap();
    let empty = view.collection("app.empty").expect("app.empty was created");
    assert_eq!(empty.options, doc! {"capped": false});
    assert_eq!(view.scan("app.empty", None, 10).unwrap().len(), 0);
    drop(view);
    // Writes after the load: the unique index is live, updates and deletes land.
    let err = engine
        .write(|t| {
            t.insert(
                "app.users",
                &raw(doc! {"_id": -1, "email": "user5@example.com"}),
            )
        })
        .unwrap_err();
    assert_eq!(err.code(), 11000);
    engine
        .write(|t| {
            for i in (0..40_000).step_by(3) {
                t.delete("app.users", &Bson::Int64(i))?;
            }
            t.insert("app.users", &sized(50_000, 100))?;
            t.insert("app.more", &raw(doc! {"_id": 1}))
        })
        .unwrap();
    drop(engine);
    assert_eq!(integrity(&dir), "ok");
    let engine = open(&dir);
    let left: Vec<_> = docs
        .iter()
        .filter(|d| d.get_i64("_id").unwrap() % 3 != 0)
        .chain(std::iter::once(&sized(50_000, 100)))
        .cloned()
        .collect();
    check_reads(&engine, "app.users", &left.iter().collect::<Vec<_>>());
}

#[test]
fn documents_out_of_key_order_and_interleaved_namespaces_all_land() {
    let dir = tmpdir("bulk-shuffled");
    let docs: Vec<RawDocumentBuf> = (0..3_000).map(|i| sized((i * 7_919) % 3_001, 50)).collect();
    let others: Vec<RawDocumentBuf> = (0..50).map(|i| raw(doc! {"_id": i})).collect();
    // Users out of order, then another namespace, then users again (behind the last key).
    let mut input: Vec<_> = docs[..1_500].iter().map(|d| ("app.users", d)).collect();
    input.extend(others.iter().map(|d| ("app.others", d)));
    input.extend(docs[1_500..].iter().map(|d| ("app.users", d)));
    load(&dir, &input).unwrap();
    assert_eq!(integrity(&dir), "ok");
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["engine.sqlite"], "no temporary file is left");
    let engine = open(&dir);
    check_reads(&engine, "app.users", &docs.iter().collect::<Vec<_>>());
    assert_eq!(
        engine
            .read_view()
            .unwrap()
            .scan("app.others", None, 100)
            .unwrap(),
        others
    );
}

#[test]
fn duplicates_are_refused_in_and_out_of_order() {
    let a = sized(1, 10);
    let b = sized(2, 10);
    // Adjacent in key order, out of order, and a unique index clash between two _ids.
    let clash = raw(doc! {"_id": 3i64, "group": 1i64, "email": "user1@example.com", "n": 1});
    for (tag, input) in [
        ("adjacent", vec![("app.users", &a), ("app.users", &a)]),
        (
            "behind",
            vec![("app.users", &a), ("app.users", &b), ("app.users", &a)],
        ),
    ] {
        let err = load(&tmpdir(tag), &input).unwrap_err();
        assert_eq!(err.code(), 11000, "{tag}");
        assert!(err.to_string().contains("_id_"), "{tag}: {err}");
    }
    let dir = tmpdir("bulk-clash");
    let err = load(
        &dir,
        &[("app.users", &a), ("app.users", &b), ("app.users", &clash)],
    )
    .unwrap_err();
    assert_eq!(err.code(), 11000);
    assert!(err.to_string().contains("email_1"), "{err}");
    assert!(err.to_string().contains("user1@example.com"), "{err}");
    // What a failed load leaves is no engine.
    let e = open(&dir);
    assert_eq!(e.read_view().unwrap().collections().count(), 0);
}

#[test]
fn malformed_documents_are_refused() {
    let good = sized(1, 10);
    let mut bytes = good.as_bytes().to_vec();
    // The last element's type, so a walk that stopped after `_id` would let it through.
    let blob = bytes.windows(5).position(|w| w == b"blob\0").unwrap();
    bytes[blob - 1] = 0x33;
    let bad = RawDocumentBuf::from_bytes(bytes).unwrap();
    let no_id = raw(doc! {"x": 1});
    let array_id = raw(doc! {"_id": [1, 2]});
    for (tag, doc) in [("type", &bad), ("no-id", &no_id), ("array-id", &array_id)] {
        let err = load(&tmpdir(tag), &[("app.users", &good), ("app.users", doc)]).unwrap_err();
        assert_eq!(err.code(), 2, "{tag}: {err}");
    }
}

/// Every index entry of an engine file: index name, key, document key.
fn index_entries(dir: &Path) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let conn = rusqlite::Connection::open(dir.join("engine.sqlite")).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT i.name, e.key, e.doc_key FROM idx_entries e JOIN indexes i ON i.id = e.index_id
             ORDER BY 1, 2, 3",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

#[test]
fn index_entries_equal_the_insert_paths_for_every_kind_of_value() {
    let specs = [
        doc! {"key": {"v": 1}, "name": "v_1"},
        doc! {"key": {"v": -1, "w": 1}, "name": "v_-1_w_1"},
        doc! {"key": {"w": 1}, "name": "w_sparse", "sparse": true},
        doc! {"key": {"u": 1}, "name": "u_unique", "unique": true},
    ];
    let values = [
        Bson::Int32(3),
        Bson::Int64(3),
        Bson::Double(2.5),
        Bson::String("é".into()),
        Bson::Null,
        Bson::Boolean(true),
        Bson::DateTime(bson::DateTime::from_millis(-5)),
        Bson::Timestamp(bson::Timestamp {
            time: 9,
            increment: 1,
        }),
        Bson::ObjectId(bson::oid::ObjectId::from_bytes([3; 12])),
        Bson::Array(vec![
            Bson::Int32(1),
            Bson::Int32(1),
            Bson::String("x".into()),
        ]),
        Bson::Array(vec![]),
        Bson::Document(doc! {"a": 1}),
        Bson::Binary(Binary {
            subtype: BinarySubtype::Generic,
            bytes: vec![1],
        }),
    ];
    let docs: Vec<RawDocumentBuf> = (0..60)
        .map(|i| {
            let mut d = doc! {"_id": i};
            if i % 5 != 0 {
                d.insert("v", values[i as usize % values.len()].clone());
            }
            if i % 3 == 0 {
                d.insert("w", values[(i as usize * 7) % values.len()].clone());
            }
            d.insert("u", i * 10);
            raw(d)
        })
        .collect();
    let inserted = tmpdir("bulk-index-inserted");
    let engine = open(&inserted);
    engine
        .write(|t| {
            t.create_indexes("db.c", &specs)?;
            docs.iter().try_for_each(|d| t.insert("db.c", d))
        })
        .unwrap();
    drop(engine);
    let loaded = tmpdir("bulk-index-loaded");
    let mut loader = BulkLoader::create(&loaded).unwrap();
    loader
        .add_collection("db.c", None, &doc! {}, &specs)
        .unwrap();
    loader
        .insert_all("db.c", docs.iter().map(|d| d.as_ref()))
        .unwrap();
    loader.finish(None).unwrap();
    assert_eq!(integrity(&loaded), "ok");
    let expected = index_entries(&inserted);
    assert!(expected.len() > 150, "{}", expected.len());
    assert_eq!(index_entries(&loaded), expected);
}

#[test]
fn a_load_with_a_failed_insert_refuses_the_rest() {
    let dir = tmpdir("bulk-failed");
    let mut loader = BulkLoader::create(&dir).unwrap();
    let good = sized(1, 10);
    loader.insert("app.users", &good).unwrap();
    let err = loader.insert("app.users", &good).unwrap_err();
    assert_eq!(err.code(), 11000);
    // Documents of the failed batch may be in the tree without their index entries.
    let err = loader.insert("app.users", &sized(2, 10)).unwrap_err();
    assert!(err.to_string().contains("discard"), "{err}");
    assert!(loader.finish(None).is_err());
    let e = open(&dir);
    assert_eq!(e.read_view().unwrap().collections().count(), 0);
}
