//! Protocol limits and the server identity advertised to drivers.
//!
//! The values mirror a MongoDB 8.0 `mongod`, because drivers size their
//! batches and pick their code paths from what `hello` reports.

/// Size of the standard message header (four little-endian `int32`s).
pub const HEADER_LEN: usize = 16;

/// Largest message accepted or sent, as advertised in `hello.maxMessageSizeBytes`.
pub const MAX_MESSAGE_SIZE: usize = 48_000_000;

/// Largest user document, as advertised in `hello.maxBsonObjectSize`.
pub const MAX_BSON_OBJECT_SIZE: usize = 16 * 1024 * 1024;

/// Largest document accepted inside a message: `mongod` allows 16 KiB of
/// command overhead on top of [`MAX_BSON_OBJECT_SIZE`] so that a command
/// wrapping a maximum-size user document still fits.
pub const MAX_COMMAND_DOCUMENT_SIZE: usize = MAX_BSON_OBJECT_SIZE + 16 * 1024;

/// Largest write batch, as advertised in `hello.maxWriteBatchSize`.
pub const MAX_WRITE_BATCH_SIZE: i32 = 100_000;

/// Oldest wire version spoken.
pub const MIN_WIRE_VERSION: i32 = 0;

/// Newest wire version spoken: 25 is MongoDB 8.0.
pub const MAX_WIRE_VERSION: i32 = 25;

/// Server version reported by `buildInfo` and `serverStatus`; agrees with
/// [`MAX_WIRE_VERSION`].
pub const SERVER_VERSION: &str = "8.0.4";

/// `featureCompatibilityVersion` matching [`SERVER_VERSION`].
pub const FEATURE_COMPATIBILITY_VERSION: &str = "8.0";

/// Session timeout advertised in `hello.logicalSessionTimeoutMinutes`; its
/// presence is what makes drivers use sessions and retryable writes.
pub const LOGICAL_SESSION_TIMEOUT_MINUTES: i32 = 30;
