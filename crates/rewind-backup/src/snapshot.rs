//! Taking and deleting snapshots.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, mpsc};

use rewind_engine::ReadView;

use crate::blob::BlobStore;
use crate::chunk::{ChunkingOptions, compress, sha256_hex};
use crate::error::{BackupError, Result};
use crate::layout;
use crate::manifest::{
    ChunkRef, MANIFEST_FORMAT, Manifest, NamespaceEntry, Totals, list_snapshots, load_manifest,
    store_manifest, validate_snapshot_id,
};
use crate::progress::{Phase, Progress};

/// Tunables of [`take_snapshot_with`].
#[derive(Clone, Copy, Debug)]
pub struct SnapshotOptions {
    /// Chunk sizes and compression.
    pub chunking: ChunkingOptions,
    /// Threads hashing, compressing and uploading chunks (the caller's thread reads).
    pub workers: usize,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        Self {
            chunking: ChunkingOptions::default(),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get().min(4)),
        }
    }
}

/// What a snapshot cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    /// Sum of the documents' BSON sizes.
    pub logical_bytes: u64,
    /// Sum of the compressed sizes of every chunk referenced (shared ones included).
    pub compressed_bytes: u64,
    /// Bytes newly written by this run (chunks not already stored, plus the manifest).
    pub stored_bytes: u64,
    /// Chunks referenced.
    pub chunks: u64,
    /// Chunks this run wrote.
    pub chunks_written: u64,
    /// Chunks already stored (by an earlier snapshot or an interrupted run) and reused.
    pub chunks_reused: u64,
}

/// A completed snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// Its manifest, as stored.
    pub manifest: Manifest,
    /// What it cost.
    pub stats: SnapshotStats,
}

/// [`take_snapshot_with`] with default options.
pub fn take_snapshot(
    view: &ReadView,
    blobs: &dyn BlobStore,
    prefix: &str,
    snapshot_id: &str,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(Progress),
) -> Result<Snapshot> {
    let opts = SnapshotOptions::default();
    take_snapshot_with(view, blobs, prefix, snapshot_id, &opts, cancel, progress)
}

struct Job {
    seq: usize,
    data: Vec<u8>,
    docs: u64,
}

struct Stored {
    seq: usize,
    chunk: ChunkRef,
    written: bool,
}

/// Snapshots everything `view` sees into the repository at `prefix` as snapshot
/// `snapshot_id`: chunks first (content-addressed, so chunks already stored are skipped),
/// the manifest last. Checks `cancel` before every chunk (`Err(Cancelled)`). Running it again
/// after a crash or cancellation redoes only the chunks not yet stored.
///
/// Must not run concurrently with [`delete_snapshot`] on the same prefix: a chunk this run
/// reuses could be deleted under it.
pub fn take_snapshot_with(
    view: &ReadView,
    blobs: &dyn BlobStore,
    prefix: &str,
    snapshot_id: &str,
    opts: &SnapshotOptions,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(Progress),
) -> Result<Snapshot> {
    validate_snapshot_id(snapshot_id)?;
    let workers = opts.workers.max(1);
    let level = opts.chunking.zstd_level;
    let (job_tx, job_rx) = mpsc::sync_channel::<Job>(workers);
    let job_rx = Mutex::new(job_rx);
    let (done_tx, done_rx) = mpsc::channel::<Result<Stored>>();
    let (layout, stored) = std::thread::scope(|s| {
        for _ in 0..workers {
            let done_tx = done_tx.clone();
            let job_rx = &job_rx;
            s.spawn(move || {
                loop {
                    // The lock is held only while waiting for the next job.
                    let job = job_rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    let Ok(job) = job else { break };
                    if done_tx
                        .send(store_chunk(blobs, prefix, job, level))
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        let mut reader = Reader {
            view,
            opts: &opts.chunking,
            cancel,
            progress,
            job_tx,
            done_rx: &done_rx,
            stored: Vec::new(),
            seq: 0,
            report: Progress::new(Phase::Snapshot, 0, 0),
        };
        let outcome = reader.read_all();
        let Reader {
            job_tx, mut stored, ..
        } = reader;
        drop(job_tx);
        // Wait for the workers, keeping the first error.
        let mut first_err = outcome.as_ref().err().map(|_| ());
        let mut worker_err = None;
        for r in done_rx.iter() {
            match r {
                Ok(s) => stored.push(s),
                Err(e) if first_err.is_none() => {
                    first_err = Some(());
                    worker_err = Some(e);
                }
                Err(_) => {}
            }
        }
        match (outcome, worker_err) {
            (Err(e), _) | (Ok(_), Some(e)) => Err(e),
            (Ok(layout), None) => Ok((layout, stored)),
        }
    })?;
    assemble(blobs, prefix, snapshot_id, view, layout, stored)
}

/// One namespace as read: its catalog entry and the sequence numbers of its chunks.
struct NsLayout {
    entry: NamespaceEntry,
    seqs: Vec<usize>,
}

/// The reading side of a snapshot: packs documents into chunks and hands them to workers.
struct Reader<'a, 'p> {
    view: &'a ReadView,
    opts: &'a ChunkingOptions,
    cancel: &'a AtomicBool,
    progress: &'a mut (dyn FnMut(Progress) + 'p),
    job_tx: mpsc::SyncSender<Job>,
    done_rx: &'a mpsc::Receiver<Result<Stored>>,
    stored: Vec<Stored>,
    seq: usize,
    report: Progress,
}

impl Reader<'_, '_> {
    fn read_all(&mut self) -> Result<Vec<NsLayout>> {
        let view = self.view;
        let infos: Vec<_> = view.collections().cloned().collect();
        for info in &infos {
            let st = view.stats(&info.ns())?;
            self.report.total_bytes += st.size_bytes;
            self.report.total_items += st.count;
        }
        let mut out = Vec::with_capacity(infos.len());
        for info in infos {
            let ns = info.ns();
            let mut ns_layout = NsLayout {
                entry: NamespaceEntry {
                    ns: ns.clone(),
                    uuid: info.uuid.clone(),
                    options: info.options.clone(),
                    indexes: info.indexes.iter().map(|i| i.spec.clone()).collect(),
                    documents: 0,
                    bytes: 0,
                    chunks: Vec::new(),
                },
                seqs: Vec::new(),
            };
            let mut buf = Vec::with_capacity(self.opts.target_bytes);
            let mut docs = 0u64;
            let mut failed = None;
            view.for_each(&ns, |doc| {
                let bytes = doc.as_bytes();
                buf.extend_from_slice(bytes);
                docs += 1;
                ns_layout.entry.documents += 1;
                ns_layout.entry.bytes += bytes.len() as u64;
                if self.opts.ends_after(buf.len(), bytes) {
                    let data =
                        std::mem::replace(&mut buf, Vec::with_capacity(self.opts.target_bytes));
                    match self.submit(data, std::mem::take(&mut docs)) {
                        Ok(seq) => ns_layout.seqs.push(seq),
                        Err(e) => {
                            failed = Some(e);
                            return Ok(false);
                        }
                    }
                }
                Ok(true)
            })?;
            if let Some(e) = failed {
                return Err(e);
            }
            if !buf.is_empty() {
                ns_layout.seqs.push(self.submit(buf, docs)?);
            }
            out.push(ns_layout);
        }
        Ok(out)
    }

    /// Queues one chunk; fails on cancellation or on a worker's earlier failure.
    fn submit(&mut self, data: Vec<u8>, docs: u64) -> Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(BackupError::Cancelled);
        }
        while let Ok(r) = self.done_rx.try_recv() {
            self.stored.push(r?);
        }
        let seq = self.seq;
        self.seq += 1;
        self.report.done_bytes += data.len() as u64;
        self.report.done_items += docs;
        if self.job_tx.send(Job { seq, data, docs }).is_err() {
            // Every worker is gone, which happens only after one reported an error.
            return Err(self
                .done_rx
                .try_iter()
                .find_map(Result::err)
                .unwrap_or_else(|| BackupError::Format("snapshot workers stopped".into())));
        }
        (self.progress)(self.report);
        Ok(seq)
    }
}

/// Hashes a chunk and stores it compressed unless an object with that address exists.
fn store_chunk(blobs: &dyn BlobStore, prefix: &str, job: Job, level: i32) -> Result<Stored> {
    let hash = sha256_hex(&job.data);
    let key = layout::chunk_key(prefix, &hash);
    let (stored_size, written) = match blobs.size(&key)? {
        Some(size) => (size, false),
        None => {
            let packed = compress(&job.data, level)?;
            blobs.put(&key, &packed)?;
            (packed.len() as u64, true)
        }
    };
    Ok(Stored {
        seq: job.seq,
        chunk: ChunkRef {
            hash,
            size: job.data.len() as u64,
            stored_size,
            docs: job.docs,
        },
        written,
    })
}

/// Builds the manifest from the namespaces read and the chunks stored, then writes it.
fn assemble(
    blobs: &dyn BlobStore,
    prefix: &str,
    snapshot_id: &str,
    view: &ReadView,
    layout: Vec<NsLayout>,
    stored: Vec<Stored>,
) -> Result<Snapshot> {
    let mut stats = SnapshotStats::default();
    let mut by_seq = BTreeMap::new();
    for s in stored {
        if s.written {
            stats.chunks_written += 1;
            stats.stored_bytes += s.chunk.stored_size;
        } else {
            stats.chunks_reused += 1;
        }
        by_seq.insert(s.seq, s.chunk);
    }
    let mut totals = Totals::default();
    let mut namespaces = Vec::with_capacity(layout.len());
    for NsLayout { mut entry, seqs } in layout {
        for seq in seqs {
            let chunk = by_seq
                .remove(&seq)
                .ok_or_else(|| BackupError::Format("a snapshot chunk was lost".into()))?;
            totals.chunks += 1;
            totals.stored_bytes += chunk.stored_size;
            entry.chunks.push(chunk);
        }
        totals.namespaces += 1;
        totals.documents += entry.documents;
        totals.logical_bytes += entry.bytes;
        namespaces.push(entry);
    }
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        snapshot_id: snapshot_id.into(),
        optime: view.optime(),
        namespaces,
        totals,
    };
    store_manifest(blobs, prefix, &manifest)?;
    stats.stored_bytes += blobs
        .size(&layout::manifest_key(prefix, snapshot_id))?
        .unwrap_or(0);
    stats.logical_bytes = manifest.totals.logical_bytes;
    stats.compressed_bytes = manifest.totals.stored_bytes;
    stats.chunks = manifest.totals.chunks;
    Ok(Snapshot { manifest, stats })
}

/// What [`delete_snapshot`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeleteStats {
    /// Chunks removed.
    pub chunks_deleted: u64,
    /// Their stored bytes.
    pub bytes_freed: u64,
}

/// Deletes snapshot `manifest` from the repository at `prefix`: its manifest first (so a
/// crash never leaves a manifest pointing at deleted chunks; retrying with the same
/// manifest finishes the job), then each of its chunks that neither `live_manifests` nor any
/// other manifest stored under `prefix` references.
///
/// Must not run concurrently with a snapshot of the same prefix (see [`take_snapshot_with`]).
pub fn delete_snapshot(
    blobs: &dyn BlobStore,
    prefix: &str,
    manifest: &Manifest,
    live_manifests: &[Manifest],
) -> Result<DeleteStats> {
    let id = manifest.snapshot_id.as_str();
    validate_snapshot_id(id)?;
    let mut others = Vec::new();
    for other in list_snapshots(blobs, prefix)? {
        if other != id {
            // An unreadable manifest could reference anything: refuse rather than guess.
            others.push(load_manifest(blobs, prefix, &other)?);
        }
    }
    let keep: HashSet<&str> = others
        .iter()
        .chain(live_manifests.iter().filter(|m| m.snapshot_id != id))
        .flat_map(Manifest::chunk_hashes)
        .collect();
    blobs.delete(&layout::manifest_key(prefix, id))?;
    let mut stats = DeleteStats::default();
    let mut seen = HashSet::new();
    for hash in manifest.chunk_hashes() {
        if keep.contains(hash) || !seen.insert(hash) {
            continue;
        }
        let key = layout::chunk_key(prefix, hash);
        if let Some(size) = blobs.size(&key)? {
            blobs.delete(&key)?;
            stats.chunks_deleted += 1;
            stats.bytes_freed += size;
        }
    }
    Ok(stats)
}
