//! Point-in-time replay of captured oplog slices onto a restored engine, and the bounds of
//! Atlas's point-in-time targets.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use bson::{RawDocument, Timestamp};
use rewind_engine::{Engine, EngineError};

use crate::blob::BlobStore;
use crate::chunk::documents;
use crate::error::{BackupError, Result};
use crate::oplog::{OplogGap, OplogSlice, entry_ts, read_slice_into};
use crate::progress::{Phase, Progress};

/// Most entries applied per engine transaction (each commit is an fsync).
pub const REPLAY_BATCH: usize = 20_000;

/// Most bytes of entries applied per engine transaction (bounds the write-ahead log).
pub const REPLAY_BATCH_BYTES: usize = 32 << 20;

/// An Atlas point-in-time restore target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PitTarget {
    /// `pointInTimeUTCSeconds`: every operation of that second and before.
    UtcSeconds(u32),
    /// `oplogTs` + `oplogInc`: every operation up to and including that optime.
    Oplog(Timestamp),
}

impl PitTarget {
    /// Reads the target from the Atlas request fields: exactly one of
    /// `pointInTimeUTCSeconds` or the pair `oplogTs`/`oplogInc`, each within `u32`.
    pub fn from_atlas(
        point_in_time_utc_seconds: Option<i64>,
        oplog_ts: Option<i64>,
        oplog_inc: Option<i64>,
    ) -> Result<Self> {
        let field = |name: &str, v: i64| {
            u32::try_from(v).map_err(|_| {
                BackupError::InvalidTarget(format!("{name} must be between 0 and {}", u32::MAX))
            })
        };
        match (point_in_time_utc_seconds, oplog_ts, oplog_inc) {
            (Some(s), None, None) => Ok(Self::UtcSeconds(field("pointInTimeUTCSeconds", s)?)),
            (None, Some(t), Some(i)) => Ok(Self::Oplog(Timestamp {
                time: field("oplogTs", t)?,
                increment: field("oplogInc", i)?,
            })),
            (None, Some(_), None) | (None, None, Some(_)) => Err(BackupError::InvalidTarget(
                "oplogTs and oplogInc must be given together".into(),
            )),
            (None, None, None) => Err(BackupError::InvalidTarget(
                "give pointInTimeUTCSeconds or oplogTs and oplogInc".into(),
            )),
            _ => Err(BackupError::InvalidTarget(
                "give either pointInTimeUTCSeconds or oplogTs and oplogInc, not both".into(),
            )),
        }
    }

    /// The inclusive optime bound: every entry with `ts <= bound` is replayed. A UTC second
    /// includes all its operations (`increment = u32::MAX`).
    pub fn bound(self) -> Timestamp {
        match self {
            Self::UtcSeconds(time) => Timestamp {
                time,
                increment: u32::MAX,
            },
            Self::Oplog(ts) => ts,
        }
    }
}

/// The first range inside `(from, to]` that no slice covers, if any.
pub fn first_gap(slices: &[OplogSlice], from: Timestamp, to: Timestamp) -> Option<OplogGap> {
    let mut spans: Vec<(Timestamp, Timestamp)> = slices.iter().map(|s| (s.lower(), s.to)).collect();
    spans.sort();
    let mut cursor = from;
    for (lower, upper) in spans {
        if cursor >= to {
            return None;
        }
        if lower > cursor {
            return Some(OplogGap {
                from: cursor,
                to: lower.min(to),
            });
        }
        cursor = cursor.max(upper);
    }
    (cursor < to).then_some(OplogGap { from: cursor, to })
}

/// Whether the slices hold every entry in `(from, to]` without a gap.
pub fn covers(slices: &[OplogSlice], from: Timestamp, to: Timestamp) -> bool {
    first_gap(slices, from, to).is_none()
}

/// What a replay applied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Entries applied.
    pub applied: u64,
    /// Optime of the last entry applied.
    pub last_applied: Option<Timestamp>,
    /// Engine transactions committed (none for entries merged into the restore, see
    /// [`crate::restore_to_point`]).
    pub batches: u64,
    /// Entries merged into the restore instead of applied to an engine (of `applied`).
    pub merged: u64,
}

/// Applies every captured entry with `after < ts <= up_to` (inclusive of `up_to`) to
/// `engine`, in optime order, up to [`REPLAY_BATCH`] entries (or [`REPLAY_BATCH_BYTES`])
/// per transaction, through the engine's idempotent `replay_oplog_entry`: the engine ends at
/// the optime of the last entry applied, and does not log the entries again. `after` is
/// normally the restored snapshot's optime.
///
/// Slices are fetched, verified and decompressed on a second thread while the entries of the
/// previous one are applied; a transaction may span slices.
///
/// Fails with [`BackupError::Gap`] before applying anything if `slices` do not cover the
/// whole range; with [`BackupError::Cancelled`] after any batch (what was applied stays
/// applied: the engine is then at `last_applied`, which a caller can resume from).
pub fn replay_oplog(
    engine: &Engine,
    blobs: &dyn BlobStore,
    slices: &[OplogSlice],
    after: Timestamp,
    up_to: Timestamp,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(Progress),
) -> Result<ReplayStats> {
    let mut stats = ReplayStats::default();
    let Some(relevant) = relevant_slices(slices, after, up_to)? else {
        return Ok(stats);
    };
    let mut report = Progress::new(Phase::Replay, 0, relevant.iter().map(|s| s.count).sum());
    check(cancel)?;
    with_feed(blobs, &relevant, after, up_to, |feed| {
        while apply_batch(engine, feed, &mut stats, &mut report)? {
            progress(report);
            check(cancel)?;
        }
        Ok(stats)
    })
}

/// The slices holding entries of `(after, up_to]`, in order; `None` for an empty range;
/// [`BackupError::Gap`] if they do not cover it.
fn relevant_slices(
    slices: &[OplogSlice],
    after: Timestamp,
    up_to: Timestamp,
) -> Result<Option<Vec<&OplogSlice>>> {
    if up_to <= after {
        return Ok(None);
    }
    if let Some(gap) = first_gap(slices, after, up_to) {
        return Err(gap.into());
    }
    let mut relevant: Vec<&OplogSlice> = slices
        .iter()
        .filter(|s| s.to > after && s.from <= up_to)
        .collect();
    relevant.sort_by_key(|s| (s.from, s.to));
    Ok(Some(relevant))
}

/// Runs `f` on a [`Feed`] of the entries of `relevant` in `(after, up_to]`, the next slice
/// read, verified and decompressed on a second thread while the last one's entries are used.
fn with_feed<T>(
    blobs: &dyn BlobStore,
    relevant: &[&OplogSlice],
    after: Timestamp,
    up_to: Timestamp,
    f: impl FnOnce(&mut Feed<'_>) -> Result<T>,
) -> Result<T> {
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::sync_channel::<Result<(usize, Vec<u8>)>>(1);
        // Used slices' buffers go back to be decompressed into again: fresh memory costs
        // more to fault in than the decompression itself.
        let (recycle, recycled) = mpsc::sync_channel::<Vec<u8>>(2);
        s.spawn(move || {
            for (n, slice) in relevant.iter().enumerate() {
                let mut data = recycled.try_recv().unwrap_or_default();
                let r = read_slice_into(blobs, slice, &mut data).map(|()| (n, data));
                let failed = r.is_err();
                if tx.send(r).is_err() || failed {
                    break;
                }
            }
        });
        f(&mut Feed {
            rx,
            recycle,
            slices: relevant,
            slice: 0,
            data: Vec::new(),
            pos: 0,
            entry: 0..0,
            last: after,
            up_to,
            done: false,
        })
    })
}

/// Calls `f` with every captured entry with `after < ts <= up_to`, in optime order, until it
/// returns `false`; slices are fetched, verified and decompressed on a second thread. Fails
/// with [`BackupError::Gap`] before calling `f` if `slices` do not cover the range, with
/// [`BackupError::Cancelled`] when `cancel` is set (checked every 1,000 entries).
pub(crate) fn for_each_entry(
    blobs: &dyn BlobStore,
    slices: &[OplogSlice],
    after: Timestamp,
    up_to: Timestamp,
    cancel: &AtomicBool,
    mut f: impl FnMut(Timestamp, &RawDocument) -> Result<bool>,
) -> Result<()> {
    let Some(relevant) = relevant_slices(slices, after, up_to)? else {
        return Ok(());
    };
    with_feed(blobs, &relevant, after, up_to, |feed| {
        let mut seen = 0u64;
        while let Some(ts) = feed.advance()? {
            if seen.is_multiple_of(1000) {
                check(cancel)?;
            }
            seen += 1;
            if !f(ts, feed.entry()?)? {
                break;
            }
        }
        Ok(())
    })
}

/// The entries to apply, in order, from the slices the reader thread sends. Overlapping
/// slices (a capture re-run) are fine: entries at or before the last one are skipped.
struct Feed<'a> {
    rx: mpsc::Receiver<Result<(usize, Vec<u8>)>>,
    recycle: mpsc::SyncSender<Vec<u8>>,
    slices: &'a [&'a OplogSlice],
    slice: usize,
    data: Vec<u8>,
    pos: usize,
    entry: std::ops::Range<usize>,
    last: Timestamp,
    up_to: Timestamp,
    done: bool,
}

impl Feed<'_> {
    /// Moves to the next entry to apply and returns its optime; `None` past `up_to` or at the
    /// end of the slices.
    fn advance(&mut self) -> Result<Option<Timestamp>> {
        while !self.done {
            if self.pos >= self.data.len() {
                match self.rx.recv() {
                    Ok(next) => {
                        let (slice, data) = next?;
                        let used = std::mem::replace(&mut self.data, data);
                        let _ = self.recycle.try_send(used);
                        self.slice = slice;
                    }
                    Err(_) => self.done = true,
                }
                self.pos = 0;
                continue;
            }
            let key = &self.slices[self.slice].key;
            let entry = documents(&self.data[self.pos..], key)
                .next()
                .unwrap_or_else(|| Err(BackupError::Format(format!("empty slice {key}"))))?;
            let ts = entry_ts(entry, key)?;
            self.entry = self.pos..self.pos + entry.as_bytes().len();
            self.pos = self.entry.end;
            if ts <= self.last {
                continue;
            }
            if ts > self.up_to {
                self.done = true;
                break;
            }
            self.last = ts;
            return Ok(Some(ts));
        }
        Ok(None)
    }

    /// The entry [`Feed::advance`] moved to.
    fn entry(&self) -> Result<&RawDocument> {
        RawDocument::from_bytes(&self.data[self.entry.clone()])
            .map_err(|e| BackupError::Format(format!("invalid oplog entry: {e}")))
    }
}

/// Applies the next batch in one transaction; `false` when there was nothing left.
fn apply_batch(
    engine: &Engine,
    feed: &mut Feed<'_>,
    stats: &mut ReplayStats,
    report: &mut Progress,
) -> Result<bool> {
    let (mut count, mut bytes, mut last) = (0usize, 0usize, None);
    // A failure to read the next entry is kept here: the engine's closure can only return
    // an engine error, and any error rolls the batch back.
    let mut feed_error = None;
    let outcome = engine.write(|txn| {
        while count < REPLAY_BATCH && bytes < REPLAY_BATCH_BYTES {
            let next = feed.advance().and_then(|ts| match ts {
                Some(ts) => feed.entry().map(|e| Some((ts, e))),
                None => Ok(None),
            });
            let (ts, entry) = match next {
                Ok(Some(next)) => next,
                Ok(None) => break,
                Err(e) => {
                    feed_error = Some(e);
                    return Err(EngineError::BadValue("oplog feed failed".into()));
                }
            };
            last = Some(ts);
            txn.replay_oplog_entry(entry)?;
            count += 1;
            bytes += entry.as_bytes().len();
        }
        Ok(())
    });
    if let Some(e) = feed_error {
        return Err(e);
    }
    outcome.map_err(|source| match last {
        Some(ts) => BackupError::Replay { ts, source },
        None => BackupError::Engine(source),
    })?;
    if count == 0 {
        return Ok(false);
    }
    stats.applied += count as u64;
    stats.batches += 1;
    stats.last_applied = last;
    report.done_items += count as u64;
    report.done_bytes += bytes as u64;
    Ok(true)
}

fn check(cancel: &AtomicBool) -> Result<()> {
    if cancel.load(Ordering::Relaxed) {
        Err(BackupError::Cancelled)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(time: u32, increment: u32) -> Timestamp {
        Timestamp { time, increment }
    }

    fn slice(after: Option<Timestamp>, from: Timestamp, to: Timestamp) -> OplogSlice {
        OplogSlice {
            after,
            from,
            to,
            count: 1,
            key: String::new(),
        }
    }

    #[test]
    fn targets_map_to_inclusive_bounds() {
        assert_eq!(
            PitTarget::from_atlas(Some(100), None, None)
                .unwrap()
                .bound(),
            ts(100, u32::MAX)
        );
        assert_eq!(
            PitTarget::from_atlas(None, Some(100), Some(7))
                .unwrap()
                .bound(),
            ts(100, 7)
        );
        for bad in [
            (None, None, None),
            (Some(1), Some(1), Some(1)),
            (None, Some(1), None),
            (Some(-1), None, None),
            (None, Some(1), Some(1 << 33)),
        ] {
            assert!(matches!(
                PitTarget::from_atlas(bad.0, bad.1, bad.2),
                Err(BackupError::InvalidTarget(_))
            ));
        }
    }

    #[test]
    fn coverage_needs_contiguous_slices() {
        let a = slice(Some(ts(10, 0)), ts(10, 1), ts(20, 0));
        let b = slice(Some(ts(20, 0)), ts(20, 1), ts(30, 0));
        let c = slice(Some(ts(31, 0)), ts(31, 1), ts(40, 0));
        let all = [c.clone(), a.clone(), b.clone()];
        assert!(covers(&all, ts(10, 0), ts(30, 0)));
        assert!(covers(&all, ts(15, 0), ts(25, 0)));
        assert!(covers(&all, ts(30, 0), ts(30, 0)));
        assert_eq!(
            first_gap(&all, ts(10, 0), ts(35, 0)),
            Some(OplogGap {
                from: ts(30, 0),
                to: ts(31, 0)
            })
        );
        assert_eq!(
            first_gap(&all, ts(5, 0), ts(15, 0)),
            Some(OplogGap {
                from: ts(5, 0),
                to: ts(10, 0)
            })
        );
        assert!(!covers(&all, ts(31, 0), ts(41, 0)));
        // A slice captured from the start covers from its first entry on.
        let first = slice(None, ts(10, 1), ts(20, 0));
        assert!(covers(std::slice::from_ref(&first), ts(10, 0), ts(20, 0)));
        assert!(!covers(&[first], ts(9, 0), ts(20, 0)));
        assert!(covers(&[], ts(9, 0), ts(9, 0)));
    }
}
