//! Cluster records: what a client created and what rewind reports about it.

use serde_json::Value;

use crate::names::ClusterName;
use crate::{ObjectId, Timestamp};

/// The MongoDB version rewind's clusters report.
pub const MONGODB_VERSION: &str = "8.0.4";
/// The major version matching [`MONGODB_VERSION`].
pub const MONGODB_MAJOR_VERSION: &str = "8.0";

/// Topology of a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterType {
    /// One replica set.
    ReplicaSet,
    /// Several shards, one replica set each.
    Sharded,
}

impl ClusterType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReplicaSet => "REPLICASET",
            Self::Sharded => "SHARDED",
        }
    }

    /// Parses the wire name (`GEOSHARDED` counts as sharded).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "REPLICASET" => Some(Self::ReplicaSet),
            "SHARDED" | "GEOSHARDED" => Some(Self::Sharded),
            _ => None,
        }
    }
}

/// Lifecycle state of a cluster, as `stateName` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterState {
    /// Being provisioned.
    Creating,
    /// Serving.
    Idle,
    /// Applying a change (including a restore into it).
    Updating,
    /// Being deleted.
    Deleting,
}

impl ClusterState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "CREATING",
            Self::Idle => "IDLE",
            Self::Updating => "UPDATING",
            Self::Deleting => "DELETING",
        }
    }

    /// Parses the wire name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "CREATING" => Some(Self::Creating),
            "IDLE" => Some(Self::Idle),
            "UPDATING" => Some(Self::Updating),
            "DELETING" => Some(Self::Deleting),
            _ => None,
        }
    }
}

/// A cluster record.
#[derive(Clone, Debug, PartialEq)]
pub struct Cluster {
    /// Unique id.
    pub id: ObjectId,
    /// The owning project.
    pub group_id: ObjectId,
    /// Name, unique within the project.
    pub name: ClusterName,
    /// Topology.
    pub cluster_type: ClusterType,
    /// Whether Cloud Backup is on.
    pub backup_enabled: bool,
    /// Whether continuous cloud backup (point-in-time restore) is on.
    pub pit_enabled: bool,
    /// Whether the cluster is paused.
    pub paused: bool,
    /// Lifecycle state.
    pub state: ClusterState,
    /// When it was created.
    pub created_at: Timestamp,
    /// The client's description of the cluster (replicationSpecs, tags, …), recorded and echoed
    /// as sent, without the fields rewind owns.
    pub spec: Value,
    /// `host:port` where the cluster's replica set answers drivers, once a replica serves it.
    pub address: Option<String>,
}

impl Cluster {
    /// The URI drivers connect with (`connectionStrings.standard`), once the cluster is served.
    pub fn mongodb_uri(&self) -> Option<String> {
        let address = self.address.as_deref()?;
        let set = self.replica_set_names().into_iter().next()?;
        Some(format!("mongodb://{address}/?replicaSet={set}"))
    }

    /// Names of the replica sets that make up the cluster: one per replication spec for a
    /// sharded cluster, one for a replica set. Atlas derives them from the cluster name.
    pub fn replica_set_names(&self) -> Vec<String> {
        let shards = match self.cluster_type {
            ClusterType::ReplicaSet => 1,
            ClusterType::Sharded => self
                .spec
                .get("replicationSpecs")
                .and_then(Value::as_array)
                .map_or(1, |specs| specs.len().max(1)),
        };
        (0..shards)
            .map(|shard| replica_set_name(self.name.as_str(), shard))
            .collect()
    }
}

/// The name of shard `shard`'s replica set (shard 0 for a replica-set cluster), as Atlas
/// derives it from the cluster's name.
pub fn replica_set_name(cluster_name: &str, shard: usize) -> String {
    format!("atlas-{}-shard-{shard}", cluster_name.to_lowercase())
}
