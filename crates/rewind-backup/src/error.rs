//! The crate's error type. Every message is fit to show a user as a job's failure reason:
//! it names the backup object involved by its key, never a local path or internal detail.

use bson::Timestamp;
use rewind_engine::EngineError;

/// Result alias used across the crate.
pub type Result<T, E = BackupError> = std::result::Result<T, E>;

/// A failure of the blob store holding the backups.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The object does not exist.
    #[error("backup object {key} is missing")]
    NotFound {
        /// The object's key.
        key: String,
    },
    /// The object exists but its bytes fail verification (checksum, header, decoding).
    #[error("backup object {key} is corrupt: {detail}")]
    Corrupt {
        /// The object's key.
        key: String,
        /// What failed, e.g. `checksum mismatch`.
        detail: String,
    },
    /// The storage failed to read or write the object.
    #[error("storage error on backup object {key}: {error}")]
    Io {
        /// The object's key (or key prefix, for listings).
        key: String,
        /// The underlying error; its message carries no path.
        error: std::io::Error,
    },
    /// The key is not a valid object key (see [`crate::validate_key`]).
    #[error("invalid backup object key {key:?}")]
    InvalidKey {
        /// The rejected key.
        key: String,
    },
    /// The location names a kind of store this build does not support.
    #[error("unsupported backup storage location {location}: {reason}")]
    Unsupported {
        /// The location as given.
        location: String,
        /// Why it is not supported.
        reason: String,
    },
}

/// Everything that can make a backup, restore or replay fail.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The blob store failed or holds a missing or corrupt object.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// The storage engine failed.
    #[error("storage engine error: {0}")]
    Engine(#[from] EngineError),
    /// The job was cancelled through its cancel flag.
    #[error("the operation was cancelled")]
    Cancelled,
    /// Oplog entries in `(from, to)` were lost (truncated before capture) or never captured,
    /// so no point in that range, or after it from an earlier base, can be restored.
    #[error(
        "the captured oplog has a gap between {from} and {to}: entries in that range are not available"
    )]
    Gap {
        /// Last optime known to be captured before the gap.
        from: Timestamp,
        /// First optime known to be available after the gap.
        to: Timestamp,
    },
    /// Applying a captured oplog entry failed.
    #[error("replaying the oplog entry at {ts} failed: {source}")]
    Replay {
        /// The entry's optime.
        ts: Timestamp,
        /// The engine's error.
        source: EngineError,
    },
    /// A backup object decoded but does not hold what it should (bad manifest, bad chunk).
    #[error("invalid backup data: {0}")]
    Format(String),
    /// The requested restore point or snapshot id is not acceptable.
    #[error("invalid restore target: {0}")]
    InvalidTarget(String),
}
