//! Settings shared by both output formats.

use crate::error::DumpError;
use crate::source::{DumpNamespace, NamespaceKind};

/// What the writers record about the dump itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpOptions {
    /// The MongoDB version the snapshot came from, `X.Y.Z` (a `-suffix` or
    /// `+suffix` is allowed). Recorded in the archive header and in
    /// `prelude.json`; mongorestore parses it and refuses an archive whose
    /// version does not parse, so it is checked before anything is written.
    pub server_version: String,
    /// The version recorded as the dumping tool's.
    pub tool_version: String,
    /// `concurrent_collections` of the archive header. The writers emit one
    /// namespace at a time, so 1 is the truthful value; mongorestore restores
    /// with the larger of this and its own `--numParallelCollections`.
    pub concurrent_collections: i32,
    /// Modification time of every tarball member, in seconds since the
    /// epoch. Fixed, so that the same snapshot gives the same bytes.
    pub mtime: u64,
}

impl DumpOptions {
    /// Options for a snapshot of a server at `server_version`, with this
    /// crate's version as the tool version, one concurrent collection and
    /// members dated at the epoch.
    pub fn new(server_version: impl Into<String>) -> Self {
        DumpOptions {
            server_version: server_version.into(),
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            concurrent_collections: 1,
            mtime: 0,
        }
    }

    /// Refuses what mongorestore would choke on: a server version it cannot
    /// parse, and time-series collections of servers from 8.3 on, whose
    /// layout (data no longer under `system.buckets.`) is not written here.
    pub(crate) fn check(&self, namespaces: &[DumpNamespace]) -> Result<(), DumpError> {
        let version = parse_version(&self.server_version)
            .ok_or_else(|| DumpError::InvalidServerVersion(self.server_version.clone()))?;
        let timeseries = namespaces
            .iter()
            .find(|ns| ns.kind == NamespaceKind::Timeseries);
        if let Some(ns) = timeseries
            && version >= [8, 3, 0]
        {
            return Err(DumpError::InvalidName {
                db: ns.db.clone(),
                collection: ns.collection.clone(),
                reason: "time-series collections are only written for servers before 8.3",
            });
        }
        Ok(())
    }
}

/// mongo-tools' `db.StrToVersion`: drop a `-` or `+` suffix, then exactly
/// three dot-separated integers.
fn parse_version(v: &str) -> Option<[u64; 3]> {
    let v = v.split(['-', '+']).next().unwrap_or(v);
    let mut parts = v.splitn(3, '.').map(|p| p.parse::<u64>().ok());
    let version = [parts.next()??, parts.next()??, parts.next()??];
    Some(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_like_mongo_tools() {
        assert_eq!(parse_version("7.0.16"), Some([7, 0, 16]));
        assert_eq!(parse_version("8.0.4-rc1"), Some([8, 0, 4]));
        assert_eq!(parse_version("8.0.4+build"), Some([8, 0, 4]));
        assert_eq!(parse_version("unknown"), None);
        assert_eq!(parse_version("8.0"), None);
        assert_eq!(parse_version("8.0.x"), None);
    }

    #[test]
    fn timeseries_needs_a_pre_8_3_server() {
        let mut ns = DumpNamespace::collection("db", "ts");
        ns.kind = NamespaceKind::Timeseries;
        assert!(
            DumpOptions::new("8.0.0")
                .check(std::slice::from_ref(&ns))
                .is_ok()
        );
        assert!(DumpOptions::new("8.3.0").check(&[ns]).is_err());
        assert!(DumpOptions::new("bogus").check(&[]).is_err());
    }
}
