//! Reading a snapshot back: namespaces and documents in order, every chunk verified, with
//! chunks fetched, checked and decompressed ahead of the consumer by background threads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use bson::RawDocument;

use crate::blob::BlobStore;
use crate::chunk::{Documents, documents, read_chunk};
use crate::error::{BackupError, Result};
use crate::layout;
use crate::manifest::{ChunkRef, Manifest, NamespaceEntry};

/// Receives a snapshot's content from [`SnapshotReader::read`].
pub trait SnapshotVisitor {
    /// Called once per namespace (empty ones included), before its documents.
    fn namespace(&mut self, entry: &NamespaceEntry) -> Result<()>;
    /// Called for every document of `entry`, in `_id` order, with its exact stored bytes.
    fn document(&mut self, entry: &NamespaceEntry, doc: &RawDocument) -> Result<()>;
    /// Called with the documents of each chunk, in order; returns how many there were. The
    /// default calls [`SnapshotVisitor::document`] for each; override it to handle a whole
    /// chunk at once.
    fn chunk_documents(&mut self, entry: &NamespaceEntry, docs: Documents<'_>) -> Result<u64> {
        let mut count = 0;
        for doc in docs {
            self.document(entry, doc?)?;
            count += 1;
        }
        Ok(count)
    }
    /// Called after the last document of each chunk.
    fn chunk_done(&mut self, chunk: &ChunkRef) -> Result<()> {
        let _ = chunk;
        Ok(())
    }
}

/// Streams one snapshot out of a repository.
pub struct SnapshotReader<'a> {
    blobs: &'a dyn BlobStore,
    prefix: &'a str,
    manifest: &'a Manifest,
    workers: usize,
}

impl<'a> SnapshotReader<'a> {
    /// A reader of `manifest`'s snapshot in the repository at `prefix`.
    pub fn new(blobs: &'a dyn BlobStore, prefix: &'a str, manifest: &'a Manifest) -> Self {
        Self {
            blobs,
            prefix,
            manifest,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get().min(4)),
        }
    }

    /// Sets how many threads fetch chunks ahead (at least one).
    pub fn with_workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// Feeds every namespace and document to `visitor`, in manifest order. Stops at the first
    /// missing or corrupt chunk ([`crate::BlobError`] naming its key), at the first visitor
    /// error, or with [`BackupError::Cancelled`] when `cancel` is set (checked per chunk).
    pub fn read(&self, cancel: &AtomicBool, visitor: &mut dyn SnapshotVisitor) -> Result<()> {
        let chunks: Vec<&ChunkRef> = self
            .manifest
            .namespaces
            .iter()
            .flat_map(|n| &n.chunks)
            .collect();
        let k = self.workers.clamp(1, chunks.len().max(1));
        let (blobs, prefix) = (self.blobs, self.prefix);
        std::thread::scope(|s| {
            // Worker w fetches chunks w, w+k, w+2k, ... into its own one-slot channel; the
            // consumer takes them round-robin, which restores the order and bounds the
            // read-ahead to two chunks per worker.
            let mut slots = Vec::with_capacity(k);
            for w in 0..k {
                let (tx, rx) = mpsc::sync_channel::<Result<Vec<u8>>>(1);
                slots.push(rx);
                let chunks = &chunks;
                s.spawn(move || {
                    for chunk in chunks.iter().skip(w).step_by(k) {
                        let r = read_chunk(blobs, prefix, chunk);
                        let failed = r.is_err();
                        if tx.send(r).is_err() || failed {
                            break;
                        }
                    }
                });
            }
            let mut n = 0usize;
            for entry in &self.manifest.namespaces {
                check(cancel)?;
                visitor.namespace(entry)?;
                for chunk in &entry.chunks {
                    check(cancel)?;
                    let data = slots[n % k]
                        .recv()
                        .map_err(|_| BackupError::Format("chunk reader stopped".into()))??;
                    n += 1;
                    let key = layout::chunk_key(prefix, &chunk.hash);
                    let docs = visitor.chunk_documents(entry, documents(&data, &key))?;
                    if docs != chunk.docs {
                        return Err(BackupError::Format(format!(
                            "chunk {key} holds {docs} documents, the manifest says {}",
                            chunk.docs
                        )));
                    }
                    visitor.chunk_done(chunk)?;
                }
            }
            Ok(())
        })
    }
}

fn check(cancel: &AtomicBool) -> Result<()> {
    if cancel.load(Ordering::Relaxed) {
        Err(BackupError::Cancelled)
    } else {
        Ok(())
    }
}
