//! Point-in-time replay of captured oplog slices onto a restored engine, and the bounds of
//! Atlas's point-in-time targets.

use std::sync::atomic::{AtomicBool, Ordering};

use bson::{RawDocument, Timestamp};
use rewind_engine::Engine;

use crate::blob::BlobStore;
use crate::chunk::documents;
use crate::error::{BackupError, Result};
use crate::oplog::{OplogGap, OplogSlice, entry_ts, read_slice};
use crate::progress::{Phase, Progress};

/// Entries applied per engine transaction.
pub const REPLAY_BATCH: usize = 1000;

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
    /// Engine transactions committed.
    pub batches: u64,
}

/// Applies every captured entry with `after < ts <= up_to` (inclusive of `up_to`) to
/// `engine`, in optime order, [`REPLAY_BATCH`] entries per transaction, through the engine's
/// idempotent `apply_oplog_entry`. `after` is normally the restored snapshot's optime.
///
/// Fails with [`BackupError::Gap`] before applying anything if `slices` do not cover the
/// whole range; with [`BackupError::Cancelled`] between batches (what was applied stays
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
    if up_to <= after {
        return Ok(stats);
    }
    if let Some(gap) = first_gap(slices, after, up_to) {
        return Err(gap.into());
    }
    let mut relevant: Vec<&OplogSlice> = slices
        .iter()
        .filter(|s| s.to > after && s.from <= up_to)
        .collect();
    relevant.sort_by_key(|s| (s.from, s.to));
    let mut report = Progress::new(Phase::Replay, 0, relevant.iter().map(|s| s.count).sum());
    // Overlapping slices (a capture re-run) are fine: entries at or before `last` are skipped.
    let mut last = after;
    for slice in relevant {
        check(cancel)?;
        let data = read_slice(blobs, slice)?;
        let mut batch: Vec<(Timestamp, &RawDocument)> = Vec::with_capacity(REPLAY_BATCH);
        let mut reached_end = false;
        for entry in documents(&data, &slice.key) {
            let entry = entry?;
            let ts = entry_ts(entry, &slice.key)?;
            if ts <= last {
                continue;
            }
            if ts > up_to {
                reached_end = true;
                break;
            }
            last = ts;
            batch.push((ts, entry));
            if batch.len() == REPLAY_BATCH {
                apply_batch(engine, &batch, &mut stats, &mut report)?;
                progress(report);
                batch.clear();
                check(cancel)?;
            }
        }
        if !batch.is_empty() {
            apply_batch(engine, &batch, &mut stats, &mut report)?;
            progress(report);
        }
        if reached_end {
            break;
        }
    }
    Ok(stats)
}

fn apply_batch(
    engine: &Engine,
    batch: &[(Timestamp, &RawDocument)],
    stats: &mut ReplayStats,
    report: &mut Progress,
) -> Result<()> {
    let mut failed_at = None;
    engine
        .write(|txn| {
            for (ts, entry) in batch {
                failed_at = Some(*ts);
                txn.apply_oplog_entry(entry)?;
            }
            Ok(())
        })
        .map_err(|source| match failed_at {
            Some(ts) => BackupError::Replay { ts, source },
            None => BackupError::Engine(source),
        })?;
    stats.applied += batch.len() as u64;
    stats.batches += 1;
    stats.last_applied = batch.last().map(|(ts, _)| *ts);
    report.done_items += batch.len() as u64;
    report.done_bytes += batch
        .iter()
        .map(|(_, e)| e.as_bytes().len() as u64)
        .sum::<u64>();
    Ok(())
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
