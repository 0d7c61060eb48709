//! The body of `POST .../backup/restoreJobs`, validated field by field in the order Atlas
//! documents: shape and types first, then the rules of each delivery type.

use serde_json::Value;

use crate::fields::{BodyReader, invalid};
use crate::names::ClusterName;
use crate::{DomainError, ObjectId};

/// The earliest instant Atlas accepts for `oplogTs` and `pointInTimeUTCSeconds` (2008-01-01Z).
pub const EARLIEST_RESTORE_SECONDS: i32 = 1_199_145_600;

const WRITABLE: &[&str] = &[
    "deliveryType",
    "snapshotId",
    "targetClusterName",
    "targetGroupId",
    "pointInTimeUTCSeconds",
    "oplogTs",
    "oplogInc",
];
const READ_ONLY: &[&str] = &[
    "id",
    "cancelled",
    "components",
    "deliveryUrl",
    "desiredTimestamp",
    "expired",
    "expiresAt",
    "failed",
    "finishedAt",
    "links",
    "privateDownloadDeliveryUrls",
    "timestamp",
];

/// How a restore job delivers the snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryType {
    /// Into a target cluster, replacing its data.
    Automated,
    /// As an expiring link to the snapshot's data.
    Download,
    /// Into a target cluster, replayed to a point in time.
    PointInTime,
}

impl DeliveryType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Automated => "automated",
            Self::Download => "download",
            Self::PointInTime => "pointInTime",
        }
    }

    /// Parses the wire name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "automated" => Some(Self::Automated),
            "download" => Some(Self::Download),
            "pointInTime" => Some(Self::PointInTime),
            _ => None,
        }
    }
}

/// The instant a pointInTime restore replays to, inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PitTarget {
    /// Every operation whose `ts` seconds are at most this value.
    UtcSeconds(i32),
    /// Every operation whose optime is at most `(ts, inc)`.
    Oplog { ts: i32, inc: i32 },
}

impl PitTarget {
    /// The target as an optime `(seconds, increment)`, inclusive upper bound.
    pub fn optime(self) -> (i64, i64) {
        match self {
            Self::UtcSeconds(seconds) => (i64::from(seconds), i64::from(u32::MAX)),
            Self::Oplog { ts, inc } => (i64::from(ts), i64::from(inc)),
        }
    }

    /// The wall-clock second of the target.
    pub fn seconds(self) -> i64 {
        self.optime().0
    }
}

/// The restore target cluster named in the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreTarget {
    /// The target project.
    pub group_id: ObjectId,
    /// The target cluster.
    pub cluster_name: ClusterName,
}

/// A restore request that passed every rule that needs no stored state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreRequest {
    /// How to deliver.
    pub delivery_type: DeliveryType,
    /// The snapshot to restore; always present for automated and download.
    pub snapshot_id: Option<ObjectId>,
    /// The target; present for automated and pointInTime.
    pub target: Option<RestoreTarget>,
    /// The replay target; present for pointInTime.
    pub pit: Option<PitTarget>,
}

impl RestoreRequest {
    /// Validates a request body. `source_cluster` names the path's cluster for errors.
    pub fn parse(body: &Value, source_cluster: &str) -> Result<Self, DomainError> {
        let reader = BodyReader::new(body, WRITABLE, READ_ONLY)?;

        let delivery_text =
            reader
                .string("deliveryType")?
                .ok_or_else(|| DomainError::MissingAttribute {
                    field: "deliveryType".to_owned(),
                })?;
        let delivery_type =
            DeliveryType::parse(delivery_text).ok_or_else(|| DomainError::InvalidEnumValue {
                field: "deliveryType".to_owned(),
                value: delivery_text.to_owned(),
            })?;

        let snapshot_id = match reader.string("snapshotId")? {
            None => None,
            Some(text) => Some(
                text.parse::<ObjectId>()
                    .map_err(|_| invalid("snapshotId", "must match ^([a-f0-9]{24})$"))?,
            ),
        };
        let target_cluster = match reader.string("targetClusterName")? {
            None => None,
            Some(text) => Some(ClusterName::parse(text).map_err(|_| {
                invalid(
                    "targetClusterName",
                    "must be 1 to 64 characters matching ^[a-zA-Z0-9][a-zA-Z0-9-]*$",
                )
            })?),
        };
        let target_group = match reader.string("targetGroupId")? {
            None => None,
            Some(text) => Some(
                text.parse::<ObjectId>()
                    .map_err(|_| invalid("targetGroupId", "must match ^([a-f0-9]{24})$"))?,
            ),
        };
        // The oplog pair is checked first so the seed's own example (`oplogTs: 42`) is
        // reported against `oplogTs`, the field its documentation is about.
        let oplog_ts = reader.int32_at_least("oplogTs", EARLIEST_RESTORE_SECONDS)?;
        let oplog_inc = reader.int32_at_least("oplogInc", 1)?;
        let utc_seconds =
            reader.int32_at_least("pointInTimeUTCSeconds", EARLIEST_RESTORE_SECONDS)?;

        let needs_target = matches!(
            delivery_type,
            DeliveryType::Automated | DeliveryType::PointInTime
        );
        let target = if needs_target {
            let cluster_name = target_cluster.ok_or_else(|| DomainError::MissingAttribute {
                field: "targetClusterName".to_owned(),
            })?;
            let group_id = target_group.ok_or_else(|| DomainError::MissingAttribute {
                field: "targetGroupId".to_owned(),
            })?;
            Some(RestoreTarget {
                group_id,
                cluster_name,
            })
        } else {
            // Download jobs have no target; Atlas does not echo one, so neither do we.
            None
        };

        if delivery_type != DeliveryType::PointInTime && snapshot_id.is_none() {
            return Err(DomainError::SnapshotNotFound {
                snapshot_id: "(none: snapshotId is required)".to_owned(),
                cluster: source_cluster.to_owned(),
            });
        }

        let pit = if delivery_type == DeliveryType::PointInTime {
            Some(pit_target(utc_seconds, oplog_ts, oplog_inc)?)
        } else {
            // Terraform and the CLI may send PIT fields with other types; Atlas ignores them.
            None
        };

        Ok(Self {
            delivery_type,
            snapshot_id,
            target,
            pit,
        })
    }
}

/// `pointInTimeUTCSeconds` xor (`oplogTs` and `oplogInc`).
fn pit_target(
    utc_seconds: Option<i32>,
    oplog_ts: Option<i32>,
    oplog_inc: Option<i32>,
) -> Result<PitTarget, DomainError> {
    let pit_error = |field: &str, reason: &str| DomainError::InvalidPitRestoreTime {
        field: field.to_owned(),
        reason: reason.to_owned(),
    };
    match (utc_seconds, oplog_ts, oplog_inc) {
        (Some(seconds), None, None) => Ok(PitTarget::UtcSeconds(seconds)),
        (None, Some(ts), Some(inc)) => Ok(PitTarget::Oplog { ts, inc }),
        (None, None, None) => Err(pit_error(
            "pointInTimeUTCSeconds",
            "pointInTimeUTCSeconds or oplogTs and oplogInc is required for a pointInTime restore.",
        )),
        (Some(_), _, _) => Err(pit_error(
            "pointInTimeUTCSeconds",
            "pointInTimeUTCSeconds cannot be combined with oplogTs or oplogInc.",
        )),
        (None, Some(_), None) => Err(pit_error("oplogInc", "oplogTs requires oplogInc.")),
        (None, None, Some(_)) => Err(pit_error("oplogTs", "oplogInc requires oplogTs.")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field_of(body: Value) -> (String, Option<String>) {
        let error = RestoreRequest::parse(&body, "Cluster0").expect_err("must be refused");
        (format!("{error:?}"), error.field().map(str::to_owned))
    }

    #[test]
    fn the_seed_example_is_refused_for_its_oplog_ts() {
        let seed = json!({
            "deliveryType": "automated", "oplogInc": 1, "oplogTs": 42,
            "pointInTimeUTCSeconds": 42, "snapshotId": "32b6e34b3d91647abb20e7b8",
            "targetClusterName": "string", "targetGroupId": "32b6e34b3d91647abb20e7b8"
        });
        let (_, field) = field_of(seed);
        assert_eq!(field.as_deref(), Some("oplogTs"));
    }

    #[test]
    fn automated_needs_targets_and_snapshot() {
        let (_, field) = field_of(
            json!({"deliveryType": "automated", "snapshotId": "32b6e34b3d91647abb20e7b8", "targetGroupId": "32b6e34b3d91647abb20e7b8"}),
        );
        assert_eq!(field.as_deref(), Some("targetClusterName"));
        let (debug, _) = field_of(
            json!({"deliveryType": "automated", "targetClusterName": "a", "targetGroupId": "32b6e34b3d91647abb20e7b8"}),
        );
        assert!(debug.starts_with("SnapshotNotFound"));
    }

    #[test]
    fn point_in_time_takes_one_form_of_time() {
        let base = json!({"deliveryType": "pointInTime", "targetClusterName": "a", "targetGroupId": "32b6e34b3d91647abb20e7b8"});
        let with = |extra: Value| {
            let mut body = base.clone();
            body.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            body
        };
        assert_eq!(
            field_of(with(json!({}))).1.as_deref(),
            Some("pointInTimeUTCSeconds")
        );
        assert_eq!(
            field_of(with(json!({"oplogTs": 1_700_000_000})))
                .1
                .as_deref(),
            Some("oplogInc")
        );
        assert_eq!(
            field_of(with(json!({"oplogInc": 3}))).1.as_deref(),
            Some("oplogTs")
        );
        assert_eq!(
            field_of(with(json!({"pointInTimeUTCSeconds": 1_700_000_000, "oplogTs": 1_700_000_000, "oplogInc": 1}))).1.as_deref(),
            Some("pointInTimeUTCSeconds")
        );
        let ok =
            RestoreRequest::parse(&with(json!({"oplogTs": 1_700_000_000, "oplogInc": 2})), "c")
                .unwrap();
        assert_eq!(
            ok.pit,
            Some(PitTarget::Oplog {
                ts: 1_700_000_000,
                inc: 2
            })
        );
    }
}
