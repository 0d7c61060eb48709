//! Shared fixtures: a varied data set, a full dump of an engine's state, small chunks.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use bson::spec::BinarySubtype;
use bson::{Binary, Bson, DateTime, Document, RawDocumentBuf, doc, oid::ObjectId};
use rewind_backup::{
    ChunkingOptions, LocalBlobStore, Snapshot, SnapshotOptions, take_snapshot_with,
};
use rewind_engine::{Engine, EngineOptions, Sync};

/// One collection's full state: UUID, options, index specs and every document's bytes.
pub type CollState = (Binary, Document, Vec<Document>, Vec<Vec<u8>>);
const STATUSES: [&str; 3] = ["new", "paid", "shipped"];

/// Every collection's state by namespace.
pub type State = BTreeMap<String, CollState>;

pub fn open(dir: &Path) -> Engine {
    let opts = EngineOptions {
        sync: Sync::Normal,
        ..EngineOptions::default()
    };
    Engine::open(dir, opts).unwrap()
}

pub fn raw(d: &Document) -> RawDocumentBuf {
    RawDocumentBuf::try_from(d).unwrap()
}

pub fn dump(engine: &Engine) -> State {
    let view = engine.read_view().unwrap();
    let mut out = State::new();
    for info in view.collections() {
        let mut docs = Vec::new();
        view.for_each(&info.ns(), |d| {
            docs.push(d.as_bytes().to_vec());
            Ok(true)
        })
        .unwrap();
        let specs = info.indexes.iter().map(|i| i.spec.clone()).collect();
        out.insert(
            info.ns(),
            (info.uuid.clone(), info.options.clone(), specs, docs),
        );
    }
    out
}

/// Several databases; options (a validator with a `$regex` query document, capped); unique,
/// compound, sparse and nested-path indexes; nested documents and arrays; binary values of
/// several subtypes; large documents; mixed `_id` types; an empty collection. 12k+ docs.
pub fn fill(engine: &Engine) {
    engine
        .write(|t| {
            t.create_collection(
                "app.users",
                &doc! {"validator": {"name": {"$regex": "^u", "$options": "i"}}, "validationLevel": "moderate"},
            )?;
            t.create_indexes(
                "app.users",
                &[
                    doc! {"key": {"email": 1}, "name": "email_1", "unique": true},
                    doc! {"key": {"profile.age": -1, "name": 1}, "name": "age_name"},
                ],
            )?;
            t.create_collection("logs.events", &doc! {"capped": true, "size": 1 << 24})?;
            t.create_indexes(
                "app.orders",
                &[
                    doc! {"key": {"status": 1, "total": -1}, "name": "status_total"},
                    doc! {"key": {"coupon": 1}, "name": "coupon_1", "sparse": true},
                ],
            )?;
            t.create_indexes("app.empty", &[doc! {"key": {"x": 1}, "name": "x_1"}])?;
            Ok(())
        })
        .unwrap();
    for batch in 0..4 {
        engine
            .write(|t| {
                for i in batch * 500..(batch + 1) * 500 {
                    let d = doc! {
                        "_id": i, "name": format!("user{i}"), "email": format!("u{i}@example.com"),
                        "profile": {"age": i % 90, "tags": ["a", "b", {"deep": [i, i * 2]}], "score": i as f64 / 3.0},
                    };
                    t.insert("app.users", &raw(&d))?;
                }
                Ok(())
            })
            .unwrap();
    }
    for batch in 0..12 {
        engine
            .write(|t| {
                for i in batch * 1000..(batch + 1) * 1000 {
                    let mut d = doc! {
                        "_id": format!("order-{i:06}"), "status": STATUSES[i % 3],
                        "total": Bson::Decimal128(bson::Decimal128::from_bytes([(i % 251) as u8; 16])),
                        "lines": (0..(i % 5)).map(|l| Bson::Document(doc! {"sku": l as i32, "qty": (i + l) as i64})).collect::<Vec<_>>(),
                        "at": DateTime::from_millis(1_700_000_000_000 + i as i64),
                    };
                    if i % 7 == 0 {
                        d.insert("coupon", format!("C{i}"));
                    }
                    t.insert("app.orders", &raw(&d))?;
                }
                Ok(())
            })
            .unwrap();
    }
    engine
        .write(|t| {
            for i in 0..300u32 {
                let d = doc! {"_id": ObjectId::new(), "level": "info", "n": i, "msg": "x".repeat(i as usize)};
                t.insert("logs.events", &raw(&d))?;
            }
            for (i, subtype) in [BinarySubtype::Generic, BinarySubtype::Md5, BinarySubtype::UserDefined(0x80)]
                .into_iter()
                .enumerate()
            {
                for j in 0..20usize {
                    let bytes: Vec<u8> = (0..(j * 5000 + 1)).map(|k| ((k * 31 + i) % 256) as u8).collect();
                    let d = doc! {"_id": (i * 100 + j) as i64, "data": Binary { subtype, bytes }, "nested": {"bin": Binary { subtype: BinarySubtype::Generic, bytes: vec![0, 255, 7] }}};
                    t.insert("media.blobs", &raw(&d))?;
                }
            }
            Ok(())
        })
        .unwrap();
}

/// Small chunks so the test data spans many of them.
pub fn small_chunks() -> SnapshotOptions {
    SnapshotOptions {
        chunking: ChunkingOptions {
            min_bytes: 16 << 10,
            target_bytes: 32 << 10,
            max_bytes: 64 << 10,
            zstd_level: 1,
        },
        workers: 2,
    }
}

pub fn snapshot(engine: &Engine, blobs: &LocalBlobStore, id: &str) -> Snapshot {
    let view = engine.read_view().unwrap();
    take_snapshot_with(
        &view,
        blobs,
        "rs0",
        id,
        &small_chunks(),
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap()
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub engine: Engine,
    pub blobs: LocalBlobStore,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let engine = open(&dir.path().join("source"));
        let blobs = LocalBlobStore::open(&dir.path().join("blobs")).unwrap();
        Self { dir, engine, blobs }
    }

    /// A fresh, not yet existing directory for a restore.
    pub fn target(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// The file behind a blob key.
    pub fn blob_path(&self, key: &str) -> std::path::PathBuf {
        self.dir.path().join("blobs").join(key)
    }
}
