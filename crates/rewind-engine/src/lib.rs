//! The storage engine of one rewind replica set: databases, collections of raw BSON
//! documents keyed by `_id`, secondary indexes, and an oplog in MongoDB's format, in one
//! SQLite file (WAL mode) per directory. No wire protocol and no query language here.
//!
//! ```no_run
//! use rewind_engine::{Engine, EngineOptions};
//! use bson::{doc, Bson, RawDocumentBuf};
//! # fn main() -> rewind_engine::Result<()> {
//! let engine = Engine::open("/var/lib/rewind/rs0", EngineOptions::default())?;
//! let d = RawDocumentBuf::try_from(&doc! {"_id": 1, "a": "x"})?;
//! engine.write(|txn| {
//!     txn.create_indexes("app.users", &[doc! {"key": {"a": 1}, "name": "a_1", "unique": true}])?;
//!     txn.insert("app.users", &d)
//! })?;
//! let view = engine.read_view()?;
//! assert!(view.get("app.users", &Bson::Int32(1))?.is_some());
//! let entries = engine.oplog_range(None, None, 100)?;
//! # let _ = entries; Ok(()) }
//! ```

mod apply;
mod bulk;
mod engine;
mod entries;
mod error;
mod index;
mod insert;
mod keys;
mod ns;
mod oplog;
mod pages;
mod read;
mod replay;
mod store;
mod txn;

pub use bulk::BulkLoader;
pub use engine::{Engine, EngineOptions};
pub use error::{DuplicateKey, EngineError, Result};
pub use index::{ID_INDEX_NAME, IndexSpec};
pub use insert::InsertMany;
pub use keys::{encode_component, key_bytes, valid_id};
pub use ns::{parse_ns, validate_collection_name, validate_db_name};
pub use read::{CollectionStats, DatabaseInfo, ReadView};
pub use replay::{OplogFields, SimpleWrite, raw_id_key};
pub use store::{CollectionInfo, Sync};
pub use txn::WriteTxn;
