//! Progress reports passed to the caller's callback (for job status, throughput and ETA).

/// Which operation a [`Progress`] report is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Taking a snapshot (items = documents).
    Snapshot,
    /// Building a restore directory (items = documents).
    Restore,
    /// Replaying oplog entries (items = entries; bytes = their BSON size).
    Replay,
}

/// A progress report: counts done so far and the totals expected (totals are estimates for
/// a replay, whose last slice is only partly applied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The operation.
    pub phase: Phase,
    /// Bytes processed so far (uncompressed BSON).
    pub done_bytes: u64,
    /// Bytes expected in total.
    pub total_bytes: u64,
    /// Items processed so far.
    pub done_items: u64,
    /// Items expected in total.
    pub total_items: u64,
}

impl Progress {
    pub(crate) fn new(phase: Phase, total_bytes: u64, total_items: u64) -> Self {
        Self {
            phase,
            done_bytes: 0,
            total_bytes,
            done_items: 0,
            total_items,
        }
    }
}
