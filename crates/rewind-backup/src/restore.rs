//! Building a fresh engine directory from a snapshot.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use bson::{RawDocument, Timestamp};
use rewind_engine::BulkLoader;

use crate::blob::BlobStore;
use crate::chunk::Documents;
use crate::error::{BackupError, Result};
use crate::manifest::{ChunkRef, Manifest, NamespaceEntry};
use crate::progress::{Phase, Progress};
use crate::reader::{SnapshotReader, SnapshotVisitor};

/// What a restore built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RestoreStats {
    /// Collections created.
    pub namespaces: u64,
    /// Documents inserted.
    pub documents: u64,
    /// Their BSON bytes.
    pub bytes: u64,
    /// Chunks read.
    pub chunks: u64,
    /// The optime the new engine starts from (the snapshot's); replay oplog after it.
    pub optime: Option<Timestamp>,
}

struct Loader<'a> {
    loader: BulkLoader,
    stats: RestoreStats,
    report: Progress,
    progress: &'a mut dyn FnMut(Progress),
}

impl SnapshotVisitor for Loader<'_> {
    fn namespace(&mut self, entry: &NamespaceEntry) -> Result<()> {
        self.loader.add_collection(
            &entry.ns,
            Some(entry.uuid.clone()),
            &entry.options,
            &entry.indexes,
        )?;
        self.stats.namespaces += 1;
        Ok(())
    }

    fn document(&mut self, entry: &NamespaceEntry, doc: &RawDocument) -> Result<()> {
        self.loader.insert(&entry.ns, doc)?;
        self.stats.documents += 1;
        self.stats.bytes += doc.as_bytes().len() as u64;
        Ok(())
    }

    fn chunk_documents(&mut self, entry: &NamespaceEntry, docs: Documents<'_>) -> Result<u64> {
        // The engine takes plain documents: a framing error stops the chunk, kept here.
        let mut framing = None;
        let mut bytes = 0u64;
        let docs = docs
            .map_while(|d| d.map_err(|e| framing = Some(e)).ok())
            .inspect(|d| bytes += d.as_bytes().len() as u64);
        let count = self.loader.insert_all(&entry.ns, docs)?;
        if let Some(e) = framing {
            return Err(e);
        }
        self.stats.documents += count;
        self.stats.bytes += bytes;
        Ok(count)
    }

    fn chunk_done(&mut self, chunk: &ChunkRef) -> Result<()> {
        self.stats.chunks += 1;
        self.report.done_bytes += chunk.size;
        self.report.done_items += chunk.docs;
        (self.progress)(self.report);
        Ok(())
    }
}

/// Builds a new engine directory at `target_dir` (missing or empty) holding exactly the
/// snapshot `manifest` of the repository at `prefix`: every collection with its UUID,
/// options and indexes, every document byte for byte, and the snapshot's optime as the
/// engine's last optime. Open it with `Engine::open` after swapping it into place.
///
/// On any error (a missing or corrupt chunk, [`BackupError::Cancelled`], …) the directory
/// is incomplete and must be discarded.
pub fn restore_into(
    blobs: &dyn BlobStore,
    prefix: &str,
    manifest: &Manifest,
    target_dir: &Path,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(Progress),
) -> Result<RestoreStats> {
    let mut loader = Loader {
        loader: BulkLoader::create(target_dir)?,
        stats: RestoreStats {
            optime: manifest.optime,
            ..RestoreStats::default()
        },
        report: Progress::new(
            Phase::Restore,
            manifest.totals.logical_bytes,
            manifest.totals.documents,
        ),
        progress,
    };
    SnapshotReader::new(blobs, prefix, manifest).read(cancel, &mut loader)?;
    let Loader { loader, stats, .. } = loader;
    if stats.documents != manifest.totals.documents || stats.bytes != manifest.totals.logical_bytes
    {
        return Err(BackupError::Format(format!(
            "snapshot {} restored {} documents of {} bytes, its manifest lists {} of {}",
            manifest.snapshot_id,
            stats.documents,
            stats.bytes,
            manifest.totals.documents,
            manifest.totals.logical_bytes
        )));
    }
    loader.finish(manifest.optime)?;
    Ok(stats)
}
