//! Errors of the storage layer.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write (a name or id already exists).
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// A compare-and-set found the row in another state, or a guarded insert found a conflict.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A row read back from the store could not be decoded (corruption or a bad migration).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// PostgreSQL failed.
    #[error("postgres error: {0}")]
    Postgres(#[from] sqlx::Error),
    /// The SQLite file is open in another process.
    #[error(
        "{path} is in use by another process: one process serves a SQLite store (replicas share PostgreSQL)"
    )]
    InUse {
        /// The database file.
        path: String,
    },
    /// A file of the store could not be opened.
    #[error("opening {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A blocking database task could not be joined (it panicked or was cancelled).
    #[error("database task failed: {0}")]
    Task(String),
}

impl StoreError {
    /// Maps a unique-constraint violation to [`StoreError::AlreadyExists`].
    pub(crate) fn from_insert(error: rusqlite::Error, what: &str) -> Self {
        if let rusqlite::Error::SqliteFailure(failure, _) = &error
            && matches!(
                failure.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            )
        {
            return Self::AlreadyExists(what.to_owned());
        }
        Self::Database(error)
    }

    /// Maps a PostgreSQL unique-constraint violation to [`StoreError::AlreadyExists`].
    pub(crate) fn from_pg_insert(error: sqlx::Error, what: &str) -> Self {
        if let sqlx::Error::Database(database_error) = &error
            && database_error.is_unique_violation()
        {
            return Self::AlreadyExists(what.to_owned());
        }
        Self::Postgres(error)
    }
}
