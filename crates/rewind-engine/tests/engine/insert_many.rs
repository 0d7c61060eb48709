//! `WriteTxn::insert_many` against the same documents inserted one `insert` at a time: the
//! same documents land, the same refusals come back, the same index entries and oplog
//! entries are written.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use bson::{Bson, Document, RawDocumentBuf, doc};
use rewind_engine::{Engine, EngineError, EngineOptions};

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn tmpdir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!(
        "rewind-insert-many-{tag}-{}-{n}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

const NS: &str = "db.c";

/// An engine whose collection has a unique multikey index, a compound one and one
/// document already.
fn prepared(tag: &str) -> (Engine, PathBuf) {
    let dir = tmpdir(tag);
    let engine = Engine::open(&dir, EngineOptions::default()).unwrap();
    engine
        .write(|t| {
            t.create_indexes(
                NS,
                &[
                    doc! {"key": {"tags": 1}, "name": "tags_1", "unique": true},
                    doc! {"key": {"a": 1, "b": 1}, "name": "a_b"},
                ],
            )?;
            t.insert(NS, &raw(doc! {"_id": 0, "tags": ["old"]}))
        })
        .unwrap();
    (engine, dir)
}

fn raw(d: Document) -> RawDocumentBuf {
    RawDocumentBuf::try_from(&d).unwrap()
}

/// Every way a document of a batch can be refused, between documents that land.
fn batch() -> Vec<RawDocumentBuf> {
    let mut missing_id = raw(doc! {"x": 1});
    missing_id.append(bson::raw::cstr!("y"), 2);
    vec![
        raw(doc! {"_id": 1, "tags": ["a", "b"]}),
        raw(doc! {"_id": 2, "tags": ["c"], "a": 1, "b": 1}),
        // The same `_id` as an earlier document of the batch.
        raw(doc! {"_id": 1.0, "tags": ["d"]}),
        // The same `_id` as a document stored before.
        raw(doc! {"_id": 0}),
        // A unique multikey key another document of the batch holds.
        raw(doc! {"_id": 3, "tags": ["e", "b"]}),
        raw(doc! {"_id": 4, "tags": ["f"]}),
        missing_id,
        raw(doc! {"_id": [1], "tags": ["g"]}),
        // A compound index over two arrays.
        raw(doc! {"_id": 5, "a": [1, 2], "b": [3, 4]}),
        // Both a duplicate `_id` and a unique clash: the `_id` is reported, as one by one.
        raw(doc! {"_id": 2, "tags": ["old"]}),
        raw(doc! {"_id": "last", "tags": ["h", "h"]}),
    ]
}

/// What a batch left: inserted count, refusals, documents, index lookups, oplog entries
/// without their times and collection UUID.
#[derive(Debug, PartialEq)]
struct Outcome {
    inserted: usize,
    errors: Vec<(usize, i32, String)>,
    docs: Vec<Vec<u8>>,
    by_tag: Vec<Vec<RawDocumentBuf>>,
    by_a: Vec<RawDocumentBuf>,
    entries: Vec<Document>,
}

fn outcome(engine: &Engine, inserted: usize, errors: Vec<(usize, EngineError)>) -> Outcome {
    let view = engine.read_view().unwrap();
    let docs = view
        .scan(NS, None, usize::MAX)
        .unwrap()
        .into_iter()
        .map(RawDocumentBuf::into_bytes)
        .collect();
    let by_tag = ["a", "b", "c", "d", "e", "f", "g", "h", "old"]
        .iter()
        .map(|tag| {
            view.find_by_index(NS, "tags_1", &[Bson::from(*tag)])
                .unwrap()
        })
        .collect();
    let by_a = view.find_by_index(NS, "a_b", &[Bson::Int32(1)]).unwrap();
    let mut last = None;
    let entries = engine
        .oplog_range(None, None, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|e| {
            let mut e = Document::try_from(e).unwrap();
            let ts = e.get_timestamp("ts").unwrap();
            assert!(
                last < Some((ts.time, ts.increment)),
                "ts strictly increasing"
            );
            last = Some((ts.time, ts.increment));
            assert!(e.get_datetime("wall").is_ok());
            for volatile in ["ts", "wall", "ui"] {
                e.remove(volatile);
            }
            e
        })
        .collect();
    Outcome {
        inserted,
        errors: errors
            .into_iter()
            .map(|(i, e)| (i, e.code(), e.to_string()))
            .collect(),
        docs,
        by_tag,
        by_a,
        entries,
    }
}

fn one_by_one(ordered: bool) -> Outcome {
    let (engine, dir) = prepared("one");
    let docs = batch();
    let (inserted, errors) = engine
        .write(|t| {
            let (mut inserted, mut errors) = (0, Vec::new());
            for (index, doc) in docs.iter().enumerate() {
                match t.insert(NS, doc) {
                    Ok(()) => inserted += 1,
                    Err(e) => {
                        errors.push((index, e));
                        if ordered {
                            break;
                        }
                    }
                }
            }
            Ok((inserted, errors))
        })
        .unwrap();
    let out = outcome(&engine, inserted, errors);
    drop(engine);
    let _ = std::fs::remove_dir_all(dir);
    out
}

fn batched(ordered: bool) -> Outcome {
    let (engine, dir) = prepared("many");
    let docs = batch();
    let result = engine.write(|t| t.insert_many(NS, &docs, ordered)).unwrap();
    assert!(!result.one_at_a_time, "refusals stay on the batch path");
    let out = outcome(&engine, result.inserted, result.errors);
    drop(engine);
    let _ = std::fs::remove_dir_all(dir);
    out
}

#[test]
fn unordered_batches_land_and_refuse_what_single_inserts_do() {
    let batched = batched(false);
    assert_eq!(batched, one_by_one(false));
    assert_eq!(batched.inserted, 4, "{:?}", batched.errors);
    let refused: Vec<(usize, i32)> = batched.errors.iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(
        refused,
        vec![
            (2, 11000),
            (3, 11000),
            (4, 11000),
            (6, 2),
            (7, 2),
            (8, 171),
            (9, 11000)
        ]
    );
    assert!(
        batched.errors[6].2.contains("index: _id_"),
        "{:?}",
        batched.errors[6]
    );
    // The setup's create + createIndexes x2 + insert, then one entry per landed document.
    let inserts: Vec<&Document> = batched.entries.iter().skip(4).collect();
    let ids: Vec<Bson> = inserts
        .iter()
        .map(|e| e.get_document("o2").unwrap().get("_id").cloned().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![
            Bson::Int32(1),
            Bson::Int32(2),
            Bson::Int32(4),
            Bson::String("last".into())
        ]
    );
    assert!(inserts.iter().all(|e| e.get_str("op").ok() == Some("i")));
}

#[test]
fn ordered_batches_stop_where_single_inserts_do() {
    let batched = batched(true);
    assert_eq!(batched, one_by_one(true));
    assert_eq!(batched.inserted, 2);
    assert_eq!(batched.errors.len(), 1);
    assert_eq!((batched.errors[0].0, batched.errors[0].1), (2, 11000));
    assert_eq!(batched.entries.len(), 4 + 2);
}

#[test]
fn an_empty_or_clean_batch_creates_the_collection_and_logs_each_document() {
    let dir = tmpdir("clean");
    let engine = Engine::open(&dir, EngineOptions::default()).unwrap();
    let docs: Vec<RawDocumentBuf> = (0..3).map(|i| raw(doc! {"_id": i, "v": i})).collect();
    let result = engine
        .write(|t| t.insert_many("db.new", &docs, true))
        .unwrap();
    assert_eq!((result.inserted, result.errors.len()), (3, 0));
    assert!(!result.one_at_a_time);
    let entries = engine.oplog_range(None, None, usize::MAX).unwrap();
    let ops: Vec<&str> = entries.iter().map(|e| e.get_str("op").unwrap()).collect();
    assert_eq!(ops, ["c", "i", "i", "i"]);
    let first = entries[1].clone();
    assert_eq!(first.get_document("o").unwrap(), docs[0].as_ref());
    assert_eq!(
        Document::try_from(first.get_document("o2").unwrap()).unwrap(),
        doc! {"_id": 0}
    );
    let none: [RawDocumentBuf; 0] = [];
    let empty = engine
        .write(|t| t.insert_many("db.new", &none, false))
        .unwrap();
    assert_eq!((empty.inserted, empty.errors.len()), (0, 0));
    // A batch refused whole creates no collection, as single inserts would not.
    let refused = [raw(doc! {"x": 1}), raw(doc! {"_id": [2]})];
    for ordered in [false, true] {
        let result = engine
            .write(|t| t.insert_many("db.never", &refused, ordered))
            .unwrap();
        assert_eq!(result.inserted, 0);
        assert_eq!(result.errors.len(), if ordered { 1 } else { 2 });
    }
    assert!(engine.read_view().unwrap().collection("db.never").is_none());
    assert_eq!(engine.oplog_range(None, None, usize::MAX).unwrap().len(), 4);
    drop(engine);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_failure_that_is_no_refusal_reruns_the_batch_one_document_at_a_time() {
    let dir = tmpdir("fallback");
    let engine = Engine::open(&dir, EngineOptions::default()).unwrap();
    let docs: Vec<RawDocumentBuf> = (0..3).map(|i| raw(doc! {"_id": i})).collect();
    // A namespace without a collection part fails the batch as a whole, not one document.
    let result = engine
        .write(|t| t.insert_many("nodot", &docs, false))
        .unwrap();
    assert!(result.one_at_a_time);
    assert_eq!(result.inserted, 0);
    let refused: Vec<usize> = result.errors.iter().map(|(index, _)| *index).collect();
    assert_eq!(refused, [0, 1, 2]);
    drop(engine);
    let _ = std::fs::remove_dir_all(dir);
}
