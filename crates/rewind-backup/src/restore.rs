//! Building a fresh engine directory from a snapshot.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use std::collections::BTreeMap;

use bson::{RawDocument, RawDocumentBuf, Timestamp};
use rewind_engine::{BulkLoader, raw_id_key};

use crate::blob::BlobStore;
use crate::chunk::Documents;
use crate::error::{BackupError, Result};
use crate::manifest::{ChunkRef, Manifest, NamespaceEntry};
use crate::pit::Changes;
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
    /// The optime the new engine starts from (the snapshot's, or the last entry's merged
    /// in); replay oplog after it.
    pub optime: Option<Timestamp>,
}

struct Loader<'a> {
    loader: BulkLoader,
    stats: RestoreStats,
    report: Progress,
    progress: &'a mut dyn FnMut(Progress),
    /// Final states to merge in, by collection ([`crate::pit`]); and the current
    /// collection's, those not yet merged.
    changes: Changes,
    pending: (String, BTreeMap<Vec<u8>, Option<RawDocumentBuf>>),
    /// The last `_id` key seen in the current collection, where keys were computed: the
    /// merge needs the snapshot's documents in key order, and checks it.
    last_key: Option<Vec<u8>>,
}

impl Loader<'_> {
    /// Adds the snapshot's documents `docs` (in `_id` order, the next ones of collection
    /// `ns`) with the pending final states up to the last of them merged in.
    fn add(&mut self, ns: &str, docs: &[&RawDocument]) -> Result<()> {
        let Some(last) = docs.last() else {
            return Ok(());
        };
        if self.pending.1.is_empty() {
            self.loader.insert_all(ns, docs.iter().copied())?;
            return Ok(());
        }
        let last = doc_key(last)?;
        let before = self.last_key.clone();
        self.check_order(&last)?;
        // The pending states up to and including the last document's key are merged here.
        let mut due = std::mem::take(&mut self.pending.1);
        self.pending.1 = due.split_off(&last);
        if let Some(entry) = self.pending.1.first_entry()
            && *entry.key() == last
        {
            let (key, state) = entry.remove_entry();
            due.insert(key, state);
        }
        if due.is_empty() {
            self.loader.insert_all(ns, docs.iter().copied())?;
            return Ok(());
        }
        let mut merged: Vec<&RawDocument> = Vec::with_capacity(docs.len() + due.len());
        let mut states = due.iter().peekable();
        let mut previous = before;
        for doc in docs {
            let key = doc_key(doc)?;
            if previous.as_ref().is_some_and(|p| *p >= key) {
                return Err(out_of_order(ns));
            }
            while let Some((_, state)) = states.next_if(|(k, _)| **k < key) {
                merged.extend(state.as_deref());
            }
            match states.next_if(|(k, _)| **k == key) {
                Some((_, state)) => merged.extend(state.as_deref()),
                None => merged.push(doc),
            }
            previous = Some(key);
        }
        merged.extend(states.filter_map(|(_, state)| state.as_deref()));
        self.loader.insert_all(ns, merged)?;
        Ok(())
    }

    /// Refuses a batch whose last key is not past the previous batch's.
    fn check_order(&mut self, last: &[u8]) -> Result<()> {
        if self
            .last_key
            .as_deref()
            .is_some_and(|previous| previous >= last)
        {
            return Err(out_of_order(&self.pending.0));
        }
        self.last_key = Some(last.to_vec());
        Ok(())
    }

    /// Adds the final states left for the current collection (keys past its last document).
    fn flush_pending(&mut self) -> Result<()> {
        let (ns, pending) = std::mem::take(&mut self.pending);
        if pending.values().any(Option::is_some) {
            let docs = pending.values().filter_map(|state| state.as_deref());
            self.loader.insert_all(&ns, docs)?;
        }
        Ok(())
    }
}

fn out_of_order(ns: &str) -> BackupError {
    BackupError::Format(format!(
        "the snapshot's documents of {ns} are not in _id order: the oplog cannot be merged in"
    ))
}

/// The storage key of a stored document's `_id`.
fn doc_key(doc: &RawDocument) -> Result<Vec<u8>> {
    raw_id_key(doc)
        .map_err(|e| BackupError::Format(format!("snapshot document: {e}")))?
        .ok_or_else(|| BackupError::Format("a snapshot document has no _id".into()))
}

impl SnapshotVisitor for Loader<'_> {
    fn namespace(&mut self, entry: &NamespaceEntry) -> Result<()> {
        self.flush_pending()?;
        self.loader.add_collection(
            &entry.ns,
            Some(entry.uuid.clone()),
            &entry.options,
            &entry.indexes,
        )?;
        let pending = self.changes.remove(&entry.ns).unwrap_or_default();
        self.pending = (entry.ns.clone(), pending);
        self.last_key = None;
        self.stats.namespaces += 1;
        Ok(())
    }

    fn document(&mut self, entry: &NamespaceEntry, doc: &RawDocument) -> Result<()> {
        self.add(&entry.ns, &[doc])?;
        self.stats.documents += 1;
        self.stats.bytes += doc.as_bytes().len() as u64;
        Ok(())
    }

    fn chunk_documents(&mut self, entry: &NamespaceEntry, docs: Documents<'_>) -> Result<u64> {
        // The engine takes plain documents: a framing error stops the chunk, kept here.
        let mut framing = None;
        let docs: Vec<&RawDocument> = docs
            .map_while(|d| d.map_err(|e| framing = Some(e)).ok())
            .collect();
        self.add(&entry.ns, &docs)?;
        if let Some(e) = framing {
            return Err(e);
        }
        let count = docs.len() as u64;
        self.stats.documents += count;
        self.stats.bytes += docs.iter().map(|d| d.as_bytes().len() as u64).sum::<u64>();
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
    restore_with(
        blobs,
        prefix,
        manifest,
        target_dir,
        Changes::new(),
        manifest.optime,
        cancel,
        progress,
    )
}

/// [`restore_into`] with `changes` merged in (the final states of the documents an oplog
/// touched after the snapshot) and `optime` as the new engine's last optime.
#[allow(clippy::too_many_arguments)]
pub(crate) fn restore_with(
    blobs: &dyn BlobStore,
    prefix: &str,
    manifest: &Manifest,
    target_dir: &Path,
    changes: Changes,
    optime: Option<Timestamp>,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(Progress),
) -> Result<RestoreStats> {
    let mut loader = Loader {
        loader: BulkLoader::create(target_dir)?,
        stats: RestoreStats {
            optime,
            ..RestoreStats::default()
        },
        report: Progress::new(
            Phase::Restore,
            manifest.totals.logical_bytes,
            manifest.totals.documents,
        ),
        progress,
        changes,
        pending: Default::default(),
        last_key: None,
    };
    SnapshotReader::new(blobs, prefix, manifest).read(cancel, &mut loader)?;
    loader.flush_pending()?;
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
    loader.finish(optime)?;
    Ok(stats)
}
