//! Why a dump was refused.
//!
//! The writers return `std::io::Result`, because most failures are the
//! sink's or the source's I/O. Failures that are the input's fault are a
//! [`DumpError`] wrapped in an `io::Error` of kind `InvalidData`; callers
//! that care can get it back with `err.get_ref()` and `downcast_ref`.

use std::io;

/// An input the writers refuse because its output would not restore.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// A database or collection name that cannot be laid out safely.
    #[error("invalid namespace {db:?}.{collection:?}: {reason}")]
    InvalidName {
        /// The database name as given.
        db: String,
        /// The collection name as given.
        collection: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two namespaces would be written to the same place.
    #[error("namespace {0} appears twice in the dump")]
    Duplicate(String),
    /// More than one oplog namespace was given.
    #[error("a dump holds at most one oplog")]
    MultipleOplogs,
    /// A document that is not a framed BSON document mongorestore would read.
    #[error("invalid document in {namespace}: {reason}")]
    InvalidDocument {
        /// `db.collection` of the offending document.
        namespace: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The source produced a different number of bytes than it announced.
    #[error("{namespace}: source announced {expected} bytes of documents but produced {actual}")]
    SizeChanged {
        /// `db.collection` whose data changed.
        namespace: String,
        /// Bytes announced by `DumpSource::data_size`.
        expected: u64,
        /// Bytes produced (so far) by `DumpSource::for_each_document`.
        actual: u64,
    },
    /// A server version mongorestore cannot parse (it wants `X.Y.Z`).
    #[error("server version {0:?} is not of the form X.Y.Z")]
    InvalidServerVersion(String),
    /// Collection options or an index specification could not be rendered.
    #[error("cannot render metadata of {namespace}: {reason}")]
    Metadata {
        /// `db.collection` whose metadata failed.
        namespace: String,
        /// What went wrong.
        reason: String,
    },
}

impl From<DumpError> for io::Error {
    fn from(err: DumpError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, err)
    }
}
