//! Point-in-time restores in one pass, when the captured oplog allows it.
//!
//! Replaying entries one at a time onto a restored engine costs SQLite statements per entry
//! (read the old document, write the new one and its changed index entries): ~8 µs each.
//! But a capture nearly always holds inserts, replacements and deletes of whole documents,
//! and their net effect on a document is its last entry's: that document, or its absence.
//! Those final states, kept per collection in `_id` key order, are merged into the snapshot's
//! `_id`-ordered documents as they stream into the bulk loader (see [`crate::restore`]); the
//! index entries and unique checks then follow from the final documents alone.
//!
//! Any other entry (a command, an update with operators or a `$v: 2` diff, an `_id` change,
//! a write to a collection the snapshot does not hold, an invalid `_id`), or final states
//! past [`NET_CHANGES_MAX_BYTES`], ends the merge there: the entries before it are merged
//! into the snapshot all the same, and [`crate::replay_oplog`] applies the rest from it
//! (reading again only the slice that entry is in).

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::AtomicBool;

use bson::{RawDocument, RawDocumentBuf, Timestamp};
use rewind_engine::{Engine, EngineError, EngineOptions, OplogFields, SimpleWrite};

use crate::blob::BlobStore;
use crate::error::{BackupError, Result};
use crate::manifest::Manifest;
use crate::oplog::OplogSlice;
use crate::progress::Progress;
use crate::replay::{ReplayStats, for_each_entry, replay_oplog};
use crate::restore::{RestoreStats, restore_with};

/// Most bytes of final states held in memory for a one-pass restore: documents, keys and
/// [`STATE_OVERHEAD`] per document.
pub const NET_CHANGES_MAX_BYTES: usize = 512 << 20;

/// What a final state costs beyond its key and document: the map's node share and the
/// document's allocation.
const STATE_OVERHEAD: usize = 64;

/// The final state of each document the oplog touched, by collection (as the snapshot names
/// it) and `_id` key: the document, or `None` where it ends deleted.
pub(crate) type Changes = HashMap<String, BTreeMap<Vec<u8>, Option<RawDocumentBuf>>>;

/// What a capture did between a snapshot and a target, as far as it can be merged.
pub(crate) struct NetChanges {
    pub(crate) changes: Changes,
    /// The entries merged: every one of the range when `complete`, else those before the
    /// first the merge cannot take.
    pub(crate) stats: ReplayStats,
    pub(crate) complete: bool,
}

/// Builds a new engine directory at `target_dir` holding the snapshot `manifest` with every
/// captured entry in `(manifest optime, up_to]` applied: the end state of [`crate::restore_into`]
/// followed by [`replay_oplog`], in one pass where the entries allow it (module notes).
#[allow(clippy::too_many_arguments)]
pub fn restore_to_point(
    blobs: &dyn BlobStore,
    prefix: &str,
    manifest: &Manifest,
    slices: &[OplogSlice],
    up_to: Timestamp,
    target_dir: &Path,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(Progress),
) -> Result<(RestoreStats, ReplayStats)> {
    let after = manifest.optime.unwrap_or(Timestamp {
        time: 0,
        increment: 0,
    });
    let net = net_changes(blobs, manifest, slices, after, up_to, cancel)?;
    let merged_to = net.stats.last_applied.or(manifest.optime);
    let stats = restore_with(
        blobs,
        prefix,
        manifest,
        target_dir,
        net.changes,
        merged_to,
        cancel,
        progress,
    )?;
    // Every entry net_changes took was merged, none applied to an engine.
    let merged = ReplayStats {
        merged: net.stats.applied,
        ..net.stats
    };
    if net.complete {
        return Ok((stats, merged));
    }
    // The rest, from the first entry the merge could not take, through the general path.
    let engine = Engine::open(target_dir, EngineOptions::default())?;
    let resume = merged.last_applied.unwrap_or(after);
    let rest = replay_oplog(&engine, blobs, slices, resume, up_to, cancel, progress)?;
    let replayed = ReplayStats {
        applied: merged.applied + rest.applied,
        last_applied: rest.last_applied.or(merged.last_applied),
        batches: rest.batches,
        merged: merged.merged,
    };
    Ok((stats, replayed))
}

/// The net effect of the entries in `(after, up_to]`, up to the first that needs the general
/// path or would hold more than [`NET_CHANGES_MAX_BYTES`] of final states.
pub(crate) fn net_changes(
    blobs: &dyn BlobStore,
    manifest: &Manifest,
    slices: &[OplogSlice],
    after: Timestamp,
    up_to: Timestamp,
    cancel: &AtomicBool,
) -> Result<NetChanges> {
    let mut net = NetChanges {
        changes: Changes::new(),
        stats: ReplayStats::default(),
        complete: true,
    };
    let mut held = 0usize;
    for_each_entry(blobs, slices, after, up_to, cancel, |ts, entry| {
        let Some((ns, key, doc)) = net_change(manifest, entry)? else {
            net.complete = false;
            return Ok(false);
        };
        if let Some(ns) = ns {
            let size = |key: &[u8], doc: &Option<RawDocumentBuf>| {
                key.len() + STATE_OVERHEAD + doc.as_ref().map_or(0, |d| d.as_bytes().len())
            };
            let added = size(&key, &doc);
            let state = net.changes.entry(ns).or_default().entry(key);
            let replaced = match &state {
                Entry::Occupied(old) => size(old.key(), old.get()),
                Entry::Vacant(_) => 0,
            };
            // Checked before the entry is taken: the replay starts from the one refused.
            if held + added - replaced > NET_CHANGES_MAX_BYTES {
                net.complete = false;
                return Ok(false);
            }
            held = held + added - replaced;
            // The key's final state so far, whether or not it had one.
            *state.or_insert(None) = doc;
        }
        net.stats.applied += 1;
        net.stats.last_applied = Some(ts);
        Ok(true)
    })?;
    Ok(net)
}

/// One entry's effect: the collection (`None` for an entry that changes nothing), the `_id`
/// key and the document's final state.
type NetChange = (Option<String>, Vec<u8>, Option<RawDocumentBuf>);

/// The effect of `entry`; `None` when it needs the general path (see
/// [`OplogFields::simple_write`], the rule the engine's own fast replay follows), or when it
/// writes to a collection the snapshot does not hold.
fn net_change(manifest: &Manifest, entry: &RawDocument) -> Result<Option<NetChange>> {
    let invalid = |e: EngineError| BackupError::Format(format!("invalid oplog entry: {e}"));
    let f = OplogFields::parse(entry).map_err(invalid)?;
    // By UUID first, then by name, as the engine's replay resolves it.
    let target =
        f.ui.and_then(|ui| manifest.namespaces.iter().find(|n| n.uuid.bytes == ui))
            .or_else(|| {
                f.ns.and_then(|ns| manifest.namespaces.iter().find(|n| n.ns == ns))
            })
            .map(|n| n.ns.clone());
    Ok(match f.simple_write().map_err(invalid)? {
        Some(SimpleWrite::Noop) => Some((None, Vec::new(), None)),
        Some(SimpleWrite::Put { key, doc }) => {
            target.map(|ns| (Some(ns), key, Some(doc.to_owned())))
        }
        // A delete in a collection the snapshot does not hold deletes nothing.
        Some(SimpleWrite::Delete { key }) => Some((target, key, None)),
        None => None,
    })
}
