//! The domain of rewind: identifiers, entities, validation rules and state machines.
//!
//! Nothing in this crate knows about HTTP or SQL. The API crate maps [`DomainError`] to Atlas
//! error codes, and the store crate persists the entities defined here.

pub mod access;
pub mod cluster;
pub mod error;
pub mod fields;
pub mod group;
pub mod ids;
pub mod names;
pub mod pit_gap;
pub mod restore_job;
pub mod restore_request;
pub mod schedule;
pub mod snapshot;
pub mod timestamp;

pub use error::DomainError;
pub use ids::ObjectId;
pub use names::ClusterName;
pub use timestamp::Timestamp;
