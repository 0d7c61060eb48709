//! Organizations and projects (Atlas calls projects "groups").

use crate::{ObjectId, Timestamp};

/// An organization: owns projects, API keys and service accounts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Organization {
    /// Unique id.
    pub id: ObjectId,
    /// Display name.
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
}

/// A project, the unit that owns clusters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// Unique id.
    pub id: ObjectId,
    /// The owning organization.
    pub org_id: ObjectId,
    /// Display name, unique within the organization.
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
}
