//! Who may do what: roles of API keys and service accounts, and the checks built on them.

use crate::{DomainError, ObjectId};

/// Organization roles rewind knows.
pub const ORG_ROLES: &[&str] = &[
    "ORG_OWNER",
    "ORG_MEMBER",
    "ORG_GROUP_CREATOR",
    "ORG_BILLING_ADMIN",
    "ORG_BILLING_READ_ONLY",
    "ORG_READ_ONLY",
];

/// Project roles rewind knows.
pub const GROUP_ROLES: &[&str] = &[
    "GROUP_OWNER",
    "GROUP_CLUSTER_MANAGER",
    "GROUP_BACKUP_MANAGER",
    "GROUP_DATA_ACCESS_ADMIN",
    "GROUP_DATA_ACCESS_READ_WRITE",
    "GROUP_DATA_ACCESS_READ_ONLY",
    "GROUP_READ_ONLY",
    "GROUP_SEARCH_INDEX_EDITOR",
    "GROUP_STREAM_PROCESSING_OWNER",
    "GROUP_OBSERVABILITY_VIEWER",
];

/// What a project operation needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProjectAction {
    /// Any read.
    Read,
    /// Change clusters.
    ManageClusters,
    /// Take, change or delete snapshots, change schedules, cancel downloads.
    ManageBackups,
    /// Create a restore job, delete the project: Project Owner.
    Own,
}

/// The authenticated caller: an API key or a service account with its roles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// API key public key or service account client id, for logs.
    pub name: String,
    /// The organization the credential belongs to.
    pub org_id: ObjectId,
    /// Roles in that organization.
    pub org_roles: Vec<String>,
    /// Roles per project.
    pub group_roles: Vec<(ObjectId, String)>,
}

impl Principal {
    fn has_org_role(&self, org_id: ObjectId, role: &str) -> bool {
        self.org_id == org_id && self.org_roles.iter().any(|held| held == role)
    }

    fn group_roles(&self, group_id: ObjectId) -> impl Iterator<Item = &str> {
        self.group_roles
            .iter()
            .filter(move |(group, _)| *group == group_id)
            .map(|(_, role)| role.as_str())
    }

    /// Whether the caller may act on the organization's own resources (keys, accounts).
    pub fn check_org_owner(&self, org_id: ObjectId) -> Result<(), DomainError> {
        if self.has_org_role(org_id, "ORG_OWNER") {
            Ok(())
        } else {
            Err(DomainError::Unauthorized)
        }
    }

    /// Whether the caller may read the organization.
    pub fn check_org_member(&self, org_id: ObjectId) -> Result<(), DomainError> {
        if self.org_id == org_id && !self.org_roles.is_empty() {
            Ok(())
        } else {
            Err(DomainError::Unauthorized)
        }
    }

    /// Whether the caller may create projects in the organization.
    pub fn check_group_creator(&self, org_id: ObjectId) -> Result<(), DomainError> {
        if self.has_org_role(org_id, "ORG_OWNER") || self.has_org_role(org_id, "ORG_GROUP_CREATOR")
        {
            Ok(())
        } else {
            Err(DomainError::Unauthorized)
        }
    }

    /// Whether the caller may perform `action` in project `group_id` owned by `org_id`.
    pub fn check_project(
        &self,
        org_id: ObjectId,
        group_id: ObjectId,
        action: ProjectAction,
    ) -> Result<(), DomainError> {
        if self.has_org_role(org_id, "ORG_OWNER") {
            return Ok(());
        }
        let org_reader = self.has_org_role(org_id, "ORG_READ_ONLY");
        let allowed = match action {
            ProjectAction::Read => org_reader || self.group_roles(group_id).next().is_some(),
            ProjectAction::ManageClusters => self
                .group_roles(group_id)
                .any(|role| matches!(role, "GROUP_OWNER" | "GROUP_CLUSTER_MANAGER")),
            ProjectAction::ManageBackups => self
                .group_roles(group_id)
                .any(|role| matches!(role, "GROUP_OWNER" | "GROUP_BACKUP_MANAGER")),
            ProjectAction::Own => self.group_roles(group_id).any(|role| role == "GROUP_OWNER"),
        };
        if allowed {
            Ok(())
        } else {
            Err(DomainError::Unauthorized)
        }
    }

    /// Whether the caller may restore into a project other than the source's.
    pub fn check_restore_target(
        &self,
        org_id: ObjectId,
        group_id: ObjectId,
    ) -> Result<(), DomainError> {
        self.check_project(org_id, group_id, ProjectAction::Own)
            .map_err(|_| DomainError::CannotRestoreToTarget {
                target_group_id: group_id.to_string(),
            })
    }
}

/// Validates a list of role names against the known roles of one kind.
pub fn validate_roles(field: &str, roles: &[String], known: &[&str]) -> Result<(), DomainError> {
    for role in roles {
        if !known.contains(&role.as_str()) {
            return Err(DomainError::InvalidEnumValue {
                field: field.to_owned(),
                value: role.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_owner_owns_every_project_of_its_org_only() {
        let org = ObjectId::generate();
        let other_org = ObjectId::generate();
        let group = ObjectId::generate();
        let owner = Principal {
            name: "k".into(),
            org_id: org,
            org_roles: vec!["ORG_OWNER".into()],
            group_roles: vec![],
        };
        assert!(owner.check_project(org, group, ProjectAction::Own).is_ok());
        assert!(
            owner
                .check_project(other_org, group, ProjectAction::Read)
                .is_err()
        );
    }

    #[test]
    fn read_only_member_cannot_restore() {
        let org = ObjectId::generate();
        let group = ObjectId::generate();
        let reader = Principal {
            name: "k".into(),
            org_id: org,
            org_roles: vec!["ORG_MEMBER".into()],
            group_roles: vec![(group, "GROUP_READ_ONLY".into())],
        };
        assert!(
            reader
                .check_project(org, group, ProjectAction::Read)
                .is_ok()
        );
        assert_eq!(
            reader.check_project(org, group, ProjectAction::Own),
            Err(DomainError::Unauthorized)
        );
        assert!(matches!(
            reader.check_restore_target(org, group),
            Err(DomainError::CannotRestoreToTarget { .. })
        ));
    }
}
