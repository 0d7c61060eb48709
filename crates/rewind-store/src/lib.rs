//! The metadata store of rewind: organizations, projects, clusters, schedules, snapshots,
//! restore jobs and credentials.
//!
//! [`MetadataStore`] is the one interface the API and the workers use. [`SqliteStore`] is the
//! embedded default; a PostgreSQL implementation shares the same SQL and conformance suite
//! ([`conformance`]). Timestamps are stored as integer milliseconds and JSON as text so both
//! dialects agree.

pub mod conformance;
mod error;
mod model;
mod postgres;
mod rows;
mod schema;
mod sql;
mod sqlite;
mod traits;

pub use error::StoreError;
pub use model::{
    AccessToken, ApiKey, BearerGrant, Claimed, DownloadLink, Lease, Page, Release, RestoreGuard,
    RestoreOutcome, ServiceAccount, ServiceAccountSecret,
};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use traits::{BackupStore, CredentialStore, MetadataStore, ProjectStore, RestoreRunStore};
