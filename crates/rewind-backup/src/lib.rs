//! Backups of a rewind replica set: content-addressed logical snapshots, oplog capture,
//! restores into a fresh engine directory, and point-in-time replay.
//!
//! Everything is synchronous (run it on a blocking thread) and goes through a
//! [`BlobStore`], where every object carries a SHA-256 checked on every read. One
//! repository (a key prefix, e.g. one per replica set) holds:
//!
//! - `chunks/<h[0..2]>/<h>`: zstd-compressed runs of raw BSON documents of one collection,
//!   addressed by the SHA-256 `h` of the uncompressed bytes, so unchanged data is stored once
//!   across snapshots;
//! - `snapshots/<id>.json`: the [`Manifest`] of a snapshot, written last;
//! - `oplog/<from>_<to>_n<count>_a<after>.oplog`: captured oplog slices.
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use rewind_backup::*;
//! use rewind_engine::{Engine, EngineOptions};
//! # fn main() -> Result<()> {
//! let engine = Engine::open("/var/lib/rewind/rs0", EngineOptions::default())?;
//! let blobs = open_blob_store("file:///var/backups/rewind")?;
//! let cancel = AtomicBool::new(false);
//! let snap = take_snapshot(&engine.read_view()?, &*blobs, "c1/rs0", "s1", &cancel, &mut |_| {})?;
//! let slice = capture_oplog(&engine, &*blobs, "c1/rs0", snap.manifest.optime)?;
//! // Later: restore aside, replay to a point, then swap the directory in.
//! let manifest = load_manifest(&*blobs, "c1/rs0", "s1")?;
//! restore_into(&*blobs, "c1/rs0", &manifest, "/var/lib/rewind/rs0.new".as_ref(), &cancel, &mut |_| {})?;
//! let restored = Engine::open("/var/lib/rewind/rs0.new", EngineOptions::default())?;
//! let slices = list_oplog_slices(&*blobs, "c1/rs0")?;
//! let up_to = PitTarget::from_atlas(Some(1_700_000_000), None, None)?.bound();
//! if let Some(after) = manifest.optime {
//!     replay_oplog(&restored, &*blobs, &slices, after, up_to, &cancel, &mut |_| {})?;
//! }
//! # let _ = slice; Ok(()) }
//! ```

mod blob;
mod chunk;
mod error;
mod layout;
mod manifest;
mod oplog;
mod pit;
mod progress;
mod reader;
mod replay;
mod restore;
mod snapshot;

pub use blob::{BlobStore, LocalBlobStore, open_blob_store, validate_key};
pub use chunk::{ChunkingOptions, Documents, documents, read_chunk};
pub use error::{BackupError, BlobError, Result};
pub use manifest::{
    ChunkRef, MANIFEST_FORMAT, Manifest, NamespaceEntry, Totals, list_snapshots, load_manifest,
};
pub use oplog::{
    CaptureLimits, OplogGap, OplogSlice, capture_oplog, capture_oplog_with, check_oplog_gap,
    detect_gap, list_oplog_slices, prune_oplog_slices, read_slice,
};
pub use pit::{NET_CHANGES_MAX_BYTES, restore_to_point};
pub use progress::{Phase, Progress};
pub use reader::{SnapshotReader, SnapshotVisitor};
pub use replay::{
    PitTarget, REPLAY_BATCH, REPLAY_BATCH_BYTES, ReplayStats, covers, first_gap, replay_oplog,
};
pub use restore::{RestoreStats, restore_into};
pub use snapshot::{
    DeleteStats, Snapshot, SnapshotOptions, SnapshotStats, delete_snapshot, take_snapshot,
    take_snapshot_with,
};
