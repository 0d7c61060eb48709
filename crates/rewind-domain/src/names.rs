//! Human-readable names with Atlas's patterns.

use std::fmt;

/// A cluster name: 1 to 64 characters matching `^[a-zA-Z0-9][a-zA-Z0-9-]*$`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterName(String);

/// Why a string is not a [`ClusterName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 1 to 64 characters matching ^[a-zA-Z0-9][a-zA-Z0-9-]*$")]
pub struct InvalidClusterName;

impl ClusterName {
    /// Validates `name` against Atlas's pattern and length.
    pub fn parse(name: &str) -> Result<Self, InvalidClusterName> {
        let mut chars = name.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '-');
        if first_ok && rest_ok && name.len() <= 64 {
            Ok(Self(name.to_owned()))
        } else {
            Err(InvalidClusterName)
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClusterName({})", self.0)
    }
}

/// Validates a project or organization name: 1 to 64 characters, printable, no leading or
/// trailing space (Atlas's project names allow spaces, dashes, underscores and dots).
pub fn valid_display_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= 64
        && name.trim() == name
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.' | '(' | ')'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names_follow_the_atlas_pattern() {
        assert!(ClusterName::parse("Cluster0").is_ok());
        assert!(ClusterName::parse("a-b-c").is_ok());
        assert!(ClusterName::parse(&"a".repeat(64)).is_ok());
        assert!(ClusterName::parse(&"a".repeat(65)).is_err());
        assert!(ClusterName::parse("").is_err());
        assert!(ClusterName::parse("-abc").is_err());
        assert!(ClusterName::parse("a_b").is_err());
        assert!(ClusterName::parse("ab c").is_err());
    }
}
