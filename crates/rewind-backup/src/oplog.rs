//! Oplog capture into slices, their listing and pruning, and gap detection.

use bson::{RawDocument, Timestamp};
use rewind_engine::Engine;

use crate::blob::BlobStore;
use crate::chunk::{compress, decompress_into, documents};
use crate::error::{BackupError, BlobError, Result};
use crate::layout::{self, parse_ts_name, ts_name};

/// Entries read from the engine per query while filling a slice.
const PAGE: usize = 1000;

/// One captured run of oplog entries, stored as one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OplogSlice {
    /// The optime the capture started after (exclusive), `None` for "from the oldest entry
    /// then in the oplog". Slice `b` continues slice `a` without a gap when
    /// `b.after == Some(a.to)`.
    pub after: Option<Timestamp>,
    /// Optime of the first entry.
    pub from: Timestamp,
    /// Optime of the last entry.
    pub to: Timestamp,
    /// Number of entries.
    pub count: u64,
    /// The object's key.
    pub key: String,
}

impl OplogSlice {
    /// The exclusive lower bound of what this slice covers without a gap: `after`, or just
    /// before `from` when the capture start was not recorded.
    pub(crate) fn lower(&self) -> Timestamp {
        self.after.unwrap_or_else(|| predecessor(self.from))
    }
}

fn predecessor(ts: Timestamp) -> Timestamp {
    match (ts.time, ts.increment) {
        (_, i) if i > 0 => Timestamp {
            time: ts.time,
            increment: i - 1,
        },
        (0, _) => ts,
        (t, _) => Timestamp {
            time: t - 1,
            increment: u32::MAX,
        },
    }
}

/// Oplog entries that can no longer be captured: everything in `(from, to)` may have been
/// removed by oplog truncation before it was captured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OplogGap {
    /// The last captured optime.
    pub from: Timestamp,
    /// The oldest optime still available.
    pub to: Timestamp,
}

impl From<OplogGap> for BackupError {
    fn from(g: OplogGap) -> Self {
        BackupError::Gap {
            from: g.from,
            to: g.to,
        }
    }
}

/// Size bounds of one slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaptureLimits {
    /// At most this many entries.
    pub max_entries: usize,
    /// Stop adding entries once this many bytes of BSON are in.
    pub max_bytes: usize,
    /// zstd compression level.
    pub zstd_level: i32,
}

impl Default for CaptureLimits {
    fn default() -> Self {
        Self {
            max_entries: 100_000,
            max_bytes: 16 << 20,
            zstd_level: 3,
        }
    }
}

/// Whether entries after `last_captured` were lost, given the oldest optime still in the
/// oplog: the oplog is trimmed from its oldest end, so nothing was lost while the last
/// captured entry itself is still there (`oldest <= last_captured`).
pub fn detect_gap(last_captured: Option<Timestamp>, oldest: Option<Timestamp>) -> Option<OplogGap> {
    match (last_captured, oldest) {
        (Some(from), Some(to)) if to > from => Some(OplogGap { from, to }),
        _ => None,
    }
}

/// [`detect_gap`] against the engine's current oplog.
pub fn check_oplog_gap(
    engine: &Engine,
    last_captured: Option<Timestamp>,
) -> Result<Option<OplogGap>> {
    Ok(detect_gap(last_captured, engine.oldest_optime()?))
}

/// [`capture_oplog_with`] with default limits.
pub fn capture_oplog(
    engine: &Engine,
    blobs: &dyn BlobStore,
    prefix: &str,
    after: Option<Timestamp>,
) -> Result<Option<OplogSlice>> {
    capture_oplog_with(engine, blobs, prefix, after, &CaptureLimits::default())
}

/// Stores the engine's oplog entries after `after` (all of them for `None`), up to `limits`,
/// as one slice; `Ok(None)` when there is nothing new. Call it again with the returned
/// slice's `to` to continue. Fails with [`BackupError::Gap`] when entries after `after` were
/// truncated from the oplog before capture: record the gap, then continue with `None` (a
/// new timeline that earlier snapshots cannot replay across).
///
/// An engine built by [`crate::restore_into`] starts with an empty oplog, so capturing after
/// the restored snapshot's optime reports a gap too (the engine cannot show that nothing
/// was lost): after a restore, start a new timeline with `None` and a new snapshot.
pub fn capture_oplog_with(
    engine: &Engine,
    blobs: &dyn BlobStore,
    prefix: &str,
    after: Option<Timestamp>,
    limits: &CaptureLimits,
) -> Result<Option<OplogSlice>> {
    let mut buf = Vec::new();
    let mut count = 0usize;
    let mut range: Option<(Timestamp, Timestamp)> = None;
    let mut cursor = after;
    'pages: while count < limits.max_entries.max(1) {
        let want = PAGE.min(limits.max_entries.max(1) - count);
        let page = engine.oplog_range(cursor, None, want)?;
        for entry in &page {
            let ts = entry_ts(entry, "the engine's oplog")?;
            range = Some((range.map_or(ts, |r| r.0), ts));
            cursor = Some(ts);
            buf.extend_from_slice(entry.as_bytes());
            count += 1;
            if buf.len() >= limits.max_bytes {
                break 'pages;
            }
        }
        if page.len() < want {
            break;
        }
    }
    // Checked after reading: truncation only removes the oldest entries, so if `after` is
    // still present now, nothing after it was missing when the entries above were read.
    if let Some(gap) = check_oplog_gap(engine, after)? {
        return Err(gap.into());
    }
    let Some((from, to)) = range else {
        return Ok(None);
    };
    let key = layout::join(
        &layout::oplog_prefix(prefix),
        &format!(
            "{}_{}_n{count}_a{}.oplog",
            ts_name(from),
            ts_name(to),
            after.map_or_else(|| "none".to_string(), ts_name)
        ),
    );
    blobs.put(&key, &compress(&buf, limits.zstd_level)?)?;
    Ok(Some(OplogSlice {
        after,
        from,
        to,
        count: count as u64,
        key,
    }))
}

/// The `ts` of an oplog entry.
pub(crate) fn entry_ts(entry: &RawDocument, source: &str) -> Result<Timestamp> {
    entry
        .get_timestamp("ts")
        .map_err(|_| BackupError::Format(format!("an oplog entry in {source} has no valid ts")))
}

fn parse_slice_key(dir: &str, key: &str) -> Option<OplogSlice> {
    let name = key.strip_prefix(dir)?.strip_suffix(".oplog")?;
    let mut parts = name.split('_');
    let from = parse_ts_name(parts.next()?)?;
    let to = parse_ts_name(parts.next()?)?;
    let count = parts.next()?.strip_prefix('n')?.parse().ok()?;
    let after = match parts.next()?.strip_prefix('a')? {
        "none" => None,
        a => Some(parse_ts_name(a)?),
    };
    if parts.next().is_some() || from > to {
        return None;
    }
    Some(OplogSlice {
        after,
        from,
        to,
        count,
        key: key.into(),
    })
}

/// Every slice under `prefix`, ordered by `from` (then `to`).
pub fn list_oplog_slices(blobs: &dyn BlobStore, prefix: &str) -> Result<Vec<OplogSlice>> {
    let dir = layout::oplog_prefix(prefix);
    let mut out = Vec::new();
    for key in blobs.list(&dir)? {
        let slice = parse_slice_key(&dir, &key).ok_or_else(|| {
            BackupError::Format(format!("unexpected object {key} among the oplog slices"))
        })?;
        out.push(slice);
    }
    out.sort_by_key(|s| (s.from, s.to));
    Ok(out)
}

/// Deletes every slice whose entries are all older than `before` (`to < before`), e.g.
/// `before` = the optime of the oldest snapshot kept. Returns how many were deleted.
pub fn prune_oplog_slices(blobs: &dyn BlobStore, prefix: &str, before: Timestamp) -> Result<u64> {
    let mut deleted = 0;
    for slice in list_oplog_slices(blobs, prefix)? {
        if slice.to < before {
            blobs.delete(&slice.key)?;
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// A slice's entries (concatenated BSON), checked against the range and count in its name.
pub fn read_slice(blobs: &dyn BlobStore, slice: &OplogSlice) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    read_slice_into(blobs, slice, &mut data)?;
    Ok(data)
}

/// [`read_slice`] into `data`, replacing its contents but reusing its memory.
pub(crate) fn read_slice_into(
    blobs: &dyn BlobStore,
    slice: &OplogSlice,
    data: &mut Vec<u8>,
) -> Result<()> {
    data.clear();
    decompress_into(&slice.key, &blobs.get(&slice.key)?, data)?;
    let mut count = 0u64;
    let mut range = None;
    for entry in documents(data, &slice.key) {
        let ts = entry_ts(entry?, &slice.key)?;
        range = Some((range.map_or(ts, |r: (Timestamp, Timestamp)| r.0), ts));
        count += 1;
    }
    if count != slice.count || range != Some((slice.from, slice.to)) {
        return Err(BlobError::Corrupt {
            key: slice.key.clone(),
            detail: "content does not match its name".into(),
        }
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(time: u32, increment: u32) -> Timestamp {
        Timestamp { time, increment }
    }

    #[test]
    fn gaps_are_detected_from_the_oldest_optime() {
        assert_eq!(detect_gap(None, Some(ts(5, 1))), None);
        assert_eq!(detect_gap(Some(ts(5, 1)), None), None);
        assert_eq!(detect_gap(Some(ts(5, 1)), Some(ts(5, 1))), None);
        assert_eq!(detect_gap(Some(ts(5, 2)), Some(ts(5, 1))), None);
        assert_eq!(
            detect_gap(Some(ts(5, 1)), Some(ts(6, 1))),
            Some(OplogGap {
                from: ts(5, 1),
                to: ts(6, 1)
            })
        );
    }

    #[test]
    fn slice_keys_round_trip() {
        let key =
            "p/oplog/0000000005.0000000001_0000000007.0000000002_n3_a0000000004.0000000009.oplog";
        let s = parse_slice_key("p/oplog/", key).unwrap();
        assert_eq!(
            (s.after, s.from, s.to, s.count),
            (Some(ts(4, 9)), ts(5, 1), ts(7, 2), 3)
        );
        let none = parse_slice_key(
            "p/oplog/",
            "p/oplog/0000000005.0000000001_0000000007.0000000002_n3_anone.oplog",
        );
        assert_eq!(none.unwrap().after, None);
        assert!(parse_slice_key("p/oplog/", "p/oplog/x.oplog").is_none());
        assert_eq!(predecessor(ts(5, 0)), ts(4, u32::MAX));
        assert_eq!(predecessor(ts(5, 3)), ts(5, 2));
    }
}
