//! Decoding rows into domain entities, and the JSON text encodings of list columns.

use rewind_domain::cluster::{Cluster, ClusterState, ClusterType};
use rewind_domain::group::{Group, Organization};
use rewind_domain::pit_gap::{PitGap, PitGapCause};
use rewind_domain::restore_job::{RestoreJob, RestoreJobState, RestoreProgress};
use rewind_domain::restore_request::{DeliveryType, PitTarget};
use rewind_domain::schedule::{BackupSchedule, PolicyItem};
use rewind_domain::snapshot::{RetentionUnit, Snapshot, SnapshotStatus, SnapshotType};
use rewind_domain::{ClusterName, ObjectId, Timestamp};
use serde_json::{Value, json};

use crate::{
    AccessToken, ApiKey, BearerGrant, Claimed, Release, ServiceAccount, ServiceAccountSecret,
    StoreError,
};

/// A column of a table: its position in `SELECT *` (the table's definition order; columns
/// added later are appended, so positions never move) and its name, for error messages.
/// Positions instead of names: looking a name up costs a scan of every column per value.
pub type Column = (usize, &'static str);

/// A result row of either database, read by column position. Every column rewind stores is
/// `TEXT` or `BIGINT`, so these four reads are all the decoders need.
pub trait RowAccess {
    /// A non-null text column.
    fn text_at(&self, index: usize) -> Result<String, StoreError>;
    /// A nullable text column.
    fn optional_text_at(&self, index: usize) -> Result<Option<String>, StoreError>;
    /// A non-null integer column.
    fn number_at(&self, index: usize) -> Result<i64, StoreError>;
    /// A nullable integer column.
    fn optional_number_at(&self, index: usize) -> Result<Option<i64>, StoreError>;
}

/// A decoder from a row to a value.
pub type Decode<T> = fn(&dyn RowAccess) -> Result<T, StoreError>;

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

fn text(row: &dyn RowAccess, (index, _): Column) -> Result<String, StoreError> {
    row.text_at(index)
}

fn optional_text(row: &dyn RowAccess, (index, _): Column) -> Result<Option<String>, StoreError> {
    row.optional_text_at(index)
}

fn number(row: &dyn RowAccess, (index, _): Column) -> Result<i64, StoreError> {
    row.number_at(index)
}

fn optional_number(row: &dyn RowAccess, (index, _): Column) -> Result<Option<i64>, StoreError> {
    row.optional_number_at(index)
}

fn id(row: &dyn RowAccess, (index, column): Column) -> Result<ObjectId, StoreError> {
    text(row, (index, column))?
        .parse()
        .map_err(|_| corrupt(column))
}

fn optional_id(
    row: &dyn RowAccess,
    (index, column): Column,
) -> Result<Option<ObjectId>, StoreError> {
    optional_text(row, (index, column))?
        .map(|value| value.parse().map_err(|_| corrupt(column)))
        .transpose()
}

fn name(row: &dyn RowAccess, (index, column): Column) -> Result<ClusterName, StoreError> {
    ClusterName::parse(&text(row, (index, column))?).map_err(|_| corrupt(column))
}

fn json_column(row: &dyn RowAccess, (index, column): Column) -> Result<Value, StoreError> {
    serde_json::from_str(&text(row, (index, column))?).map_err(|_| corrupt(column))
}

fn i32_of(value: i64, column: &str) -> Result<i32, StoreError> {
    i32::try_from(value).map_err(|_| corrupt(column))
}

/// The `pit_utc_seconds`, `pit_oplog_ts` and `pit_oplog_inc` columns of a restore job.
pub fn pit_columns(pit: Option<PitTarget>) -> (Option<i64>, Option<i64>, Option<i64>) {
    match pit {
        None => (None, None, None),
        Some(PitTarget::UtcSeconds(seconds)) => (Some(i64::from(seconds)), None, None),
        Some(PitTarget::Oplog { ts, inc }) => (None, Some(i64::from(ts)), Some(i64::from(inc))),
    }
}

/// The attempt refund, `retry_at` and `last_error` a release writes: a shutdown gives the
/// attempt back and may be claimed at once; a retry keeps the attempt and waits.
pub fn release_columns(release: Release<'_>) -> (i64, i64, Option<String>) {
    match release {
        Release::Shutdown => (1, 0, None),
        Release::NotReady { retry_at } => (1, retry_at.millis(), None),
        Release::Retry { retry_at, error } => (0, retry_at.millis(), Some(error.to_owned())),
    }
}

/// Encodes a list of strings.
pub fn encode_strings(items: &[String]) -> String {
    Value::from(items.to_vec()).to_string()
}

fn decode_strings(value: &Value, column: &str) -> Result<Vec<String>, StoreError> {
    value
        .as_array()
        .ok_or_else(|| corrupt(column))?
        .iter()
        .map(|item| {
            item.as_str()
                .map(str::to_owned)
                .ok_or_else(|| corrupt(column))
        })
        .collect()
}

/// Encodes project role pairs.
pub fn encode_group_roles(roles: &[(ObjectId, String)]) -> String {
    Value::from(
        roles
            .iter()
            .map(|(group, role)| json!([group.to_string(), role]))
            .collect::<Vec<_>>(),
    )
    .to_string()
}

fn decode_group_roles(value: &Value, column: &str) -> Result<Vec<(ObjectId, String)>, StoreError> {
    let pairs = value.as_array().ok_or_else(|| corrupt(column))?;
    let mut roles = Vec::with_capacity(pairs.len());
    for pair in pairs {
        let group = pair
            .get(0)
            .and_then(Value::as_str)
            .and_then(|text| text.parse().ok());
        let role = pair.get(1).and_then(Value::as_str);
        match (group, role) {
            (Some(group), Some(role)) => roles.push((group, role.to_owned())),
            _ => return Err(corrupt(column)),
        }
    }
    Ok(roles)
}

/// Encodes schedule policy items.
pub fn encode_policy_items(items: &[PolicyItem]) -> String {
    Value::from(
        items
            .iter()
            .map(|item| {
                json!({
                    "id": item.id.to_string(),
                    "frequencyType": item.frequency_type,
                    "frequencyInterval": item.frequency_interval,
                    "retentionUnit": item.retention_unit.as_lower_str(),
                    "retentionValue": item.retention_value,
                })
            })
            .collect::<Vec<_>>(),
    )
    .to_string()
}

fn decode_policy_items(value: &Value) -> Result<Vec<PolicyItem>, StoreError> {
    let column = "policy_items";
    let items = value.as_array().ok_or_else(|| corrupt(column))?;
    items
        .iter()
        .map(|item| {
            let get_str = |key: &str| {
                item.get(key)
                    .and_then(Value::as_str)
                    .ok_or_else(|| corrupt(column))
            };
            let get_i32 = |key: &str| {
                item.get(key)
                    .and_then(Value::as_i64)
                    .and_then(|number| i32::try_from(number).ok())
                    .ok_or_else(|| corrupt(column))
            };
            Ok(PolicyItem {
                id: get_str("id")?.parse().map_err(|_| corrupt(column))?,
                frequency_type: get_str("frequencyType")?.to_owned(),
                frequency_interval: get_i32("frequencyInterval")?,
                retention_unit: RetentionUnit::parse(get_str("retentionUnit")?)
                    .ok_or_else(|| corrupt(column))?,
                retention_value: get_i32("retentionValue")?,
            })
        })
        .collect()
}

/// Encodes service account secrets.
pub fn encode_secrets(secrets: &[ServiceAccountSecret]) -> String {
    Value::from(
        secrets
            .iter()
            .map(|secret| {
                json!({
                    "id": secret.id.to_string(),
                    "sha256": secret.secret_sha256,
                    "masked": secret.masked,
                    "createdAt": secret.created_at.millis(),
                    "expiresAt": secret.expires_at.millis(),
                })
            })
            .collect::<Vec<_>>(),
    )
    .to_string()
}

fn decode_secrets(value: &Value) -> Result<Vec<ServiceAccountSecret>, StoreError> {
    let column = "secrets";
    let secrets = value.as_array().ok_or_else(|| corrupt(column))?;
    secrets
        .iter()
        .map(|secret| {
            let get_str = |key: &str| {
                secret
                    .get(key)
                    .and_then(Value::as_str)
                    .ok_or_else(|| corrupt(column))
            };
            let get_i64 = |key: &str| {
                secret
                    .get(key)
                    .and_then(Value::as_i64)
                    .ok_or_else(|| corrupt(column))
            };
            Ok(ServiceAccountSecret {
                id: get_str("id")?.parse().map_err(|_| corrupt(column))?,
                secret_sha256: get_str("sha256")?.to_owned(),
                masked: get_str("masked")?.to_owned(),
                created_at: Timestamp::from_millis(get_i64("createdAt")?),
                expires_at: Timestamp::from_millis(get_i64("expiresAt")?),
            })
        })
        .collect()
}

/// Decodes an `orgs` row.
pub fn organization(row: &dyn RowAccess) -> Result<Organization, StoreError> {
    Ok(Organization {
        id: id(row, (0, "id"))?,
        name: text(row, (1, "name"))?,
        created_at: Timestamp::from_millis(number(row, (2, "created_at"))?),
    })
}

/// Decodes a `groups` row.
pub fn group(row: &dyn RowAccess) -> Result<Group, StoreError> {
    Ok(Group {
        id: id(row, (0, "id"))?,
        org_id: id(row, (1, "org_id"))?,
        name: text(row, (2, "name"))?,
        created_at: Timestamp::from_millis(number(row, (3, "created_at"))?),
    })
}

/// Decodes a `clusters` row.
pub fn cluster(row: &dyn RowAccess) -> Result<Cluster, StoreError> {
    Ok(Cluster {
        id: id(row, (0, "id"))?,
        group_id: id(row, (1, "group_id"))?,
        name: name(row, (2, "name"))?,
        cluster_type: ClusterType::parse(&text(row, (3, "cluster_type"))?)
            .ok_or_else(|| corrupt("cluster_type"))?,
        backup_enabled: number(row, (4, "backup_enabled"))? != 0,
        pit_enabled: number(row, (5, "pit_enabled"))? != 0,
        paused: number(row, (6, "paused"))? != 0,
        state: ClusterState::parse(&text(row, (7, "state"))?).ok_or_else(|| corrupt("state"))?,
        created_at: Timestamp::from_millis(number(row, (8, "created_at"))?),
        spec: json_column(row, (9, "spec"))?,
        address: optional_text(row, (11, "host_address"))?,
    })
}

/// Decodes a `schedules` row.
pub fn schedule(row: &dyn RowAccess) -> Result<BackupSchedule, StoreError> {
    let values = |column: Column| -> Result<Vec<Value>, StoreError> {
        json_column(row, column)?
            .as_array()
            .cloned()
            .ok_or_else(|| corrupt(column.1))
    };
    Ok(BackupSchedule {
        cluster_id: id(row, (0, "cluster_id"))?,
        reference_hour_of_day: i32_of(
            number(row, (1, "reference_hour_of_day"))?,
            "reference_hour_of_day",
        )?,
        reference_minute_of_hour: i32_of(
            number(row, (2, "reference_minute_of_hour"))?,
            "reference_minute_of_hour",
        )?,
        restore_window_days: i32_of(
            number(row, (3, "restore_window_days"))?,
            "restore_window_days",
        )?,
        policy_id: id(row, (4, "policy_id"))?,
        policy_items: decode_policy_items(&json_column(row, (5, "policy_items"))?)?,
        auto_export_enabled: number(row, (6, "auto_export_enabled"))? != 0,
        use_org_and_group_names_in_export_prefix: number(
            row,
            (7, "use_org_and_group_names_in_export_prefix"),
        )? != 0,
        auto_copy_settings_enabled: number(row, (8, "auto_copy_settings_enabled"))? != 0,
        copy_policy_items_enabled: number(row, (9, "copy_policy_items_enabled"))? != 0,
        copy_settings: values((10, "copy_settings"))?,
        extra_retention_settings: values((11, "extra_retention_settings"))?,
    })
}

/// Decodes a `snapshots` row.
pub fn snapshot(row: &dyn RowAccess) -> Result<Snapshot, StoreError> {
    let policy_items = decode_strings(&json_column(row, (13, "policy_items"))?, "policy_items")?
        .iter()
        .map(|text| text.parse().map_err(|_| corrupt("policy_items")))
        .collect::<Result<_, _>>()?;
    Ok(Snapshot {
        id: id(row, (0, "id"))?,
        group_id: id(row, (1, "group_id"))?,
        cluster_id: id(row, (2, "cluster_id"))?,
        cluster_name: name(row, (3, "cluster_name"))?,
        status: SnapshotStatus::parse(&text(row, (4, "status"))?)
            .ok_or_else(|| corrupt("status"))?,
        snapshot_type: SnapshotType::parse(&text(row, (5, "snapshot_type"))?)
            .ok_or_else(|| corrupt("snapshot_type"))?,
        frequency_type: text(row, (6, "frequency_type"))?,
        description: optional_text(row, (7, "description"))?,
        requested_at: Timestamp::from_millis(number(row, (8, "requested_at"))?),
        created_at: optional_number(row, (9, "created_at"))?.map(Timestamp::from_millis),
        expires_at: Timestamp::from_millis(number(row, (10, "expires_at"))?),
        storage_size_bytes: number(row, (11, "storage_size_bytes"))?,
        mongod_version: optional_text(row, (12, "mongod_version"))?,
        policy_items,
        failure_reason: optional_text(row, (14, "failure_reason"))?,
        deleted_at: optional_number(row, (15, "deleted_at"))?.map(Timestamp::from_millis),
    })
}

/// Decodes a `snapshots` row just claimed, with the attempt the claim counted.
pub fn claimed_snapshot(row: &dyn RowAccess) -> Result<Claimed<Snapshot>, StoreError> {
    let attempt = number(row, (18, "attempts"))?;
    Ok(Claimed {
        job: snapshot(row)?,
        attempt: u32::try_from(attempt).map_err(|_| corrupt("attempts"))?,
    })
}

/// Decodes a `restore_jobs` row.
pub fn restore_job(row: &dyn RowAccess) -> Result<RestoreJob, StoreError> {
    let pit = match (
        optional_number(row, (7, "pit_utc_seconds"))?,
        optional_number(row, (8, "pit_oplog_ts"))?,
        optional_number(row, (9, "pit_oplog_inc"))?,
    ) {
        (Some(seconds), _, _) => Some(PitTarget::UtcSeconds(i32_of(seconds, "pit_utc_seconds")?)),
        (None, Some(ts), Some(inc)) => Some(PitTarget::Oplog {
            ts: i32_of(ts, "pit_oplog_ts")?,
            inc: i32_of(inc, "pit_oplog_inc")?,
        }),
        _ => None,
    };
    let target_cluster_name = optional_text(row, (6, "target_cluster_name"))?
        .map(|text| ClusterName::parse(&text).map_err(|_| corrupt("target_cluster_name")))
        .transpose()?;
    Ok(RestoreJob {
        id: id(row, (0, "id"))?,
        group_id: id(row, (1, "group_id"))?,
        cluster_name: name(row, (2, "cluster_name"))?,
        delivery_type: DeliveryType::parse(&text(row, (3, "delivery_type"))?)
            .ok_or_else(|| corrupt("delivery_type"))?,
        snapshot_id: optional_id(row, (4, "snapshot_id"))?,
        target_group_id: optional_id(row, (5, "target_group_id"))?,
        target_cluster_name,
        pit,
        state: RestoreJobState::parse(&text(row, (10, "state"))?)
            .ok_or_else(|| corrupt("state"))?,
        created_at: Timestamp::from_millis(number(row, (11, "created_at"))?),
        snapshot_taken_at: optional_number(row, (13, "snapshot_taken_at"))?
            .map(Timestamp::from_millis),
        finished_at: optional_number(row, (14, "finished_at"))?.map(Timestamp::from_millis),
        expires_at: optional_number(row, (15, "expires_at"))?.map(Timestamp::from_millis),
        delivery_urls: decode_strings(&json_column(row, (16, "delivery_urls"))?, "delivery_urls")?,
        failure_reason: optional_text(row, (17, "failure_reason"))?,
        progress: optional_text(row, (23, "progress"))?
            .map(|text| serde_json::from_str(&text).map_err(|_| corrupt("progress")))
            .transpose()?,
    })
}

/// Encodes a job's progress.
pub fn encode_progress(progress: &RestoreProgress) -> String {
    serde_json::to_string(progress).unwrap_or_default()
}

/// Decodes a `restore_jobs` row with when its one complete download happened.
pub fn restore_job_with_download(
    row: &dyn RowAccess,
) -> Result<(RestoreJob, Option<Timestamp>), StoreError> {
    Ok((
        restore_job(row)?,
        optional_number(row, (25, "downloaded_at"))?.map(Timestamp::from_millis),
    ))
}

/// Decodes the cluster id of a `deleted_cluster_backups` row.
pub fn deleted_cluster(row: &dyn RowAccess) -> Result<ObjectId, StoreError> {
    text(row, (0, "cluster_id"))?
        .parse()
        .map_err(|_| corrupt("cluster_id"))
}

/// Decodes the file name of a `restore_job_downloads` row.
pub fn downloaded_file(row: &dyn RowAccess) -> Result<String, StoreError> {
    text(row, (0, "file"))
}

/// How many files a download job's links serve: its `delivery_urls` (column 0).
pub fn delivery_file_count(row: &dyn RowAccess) -> Result<i64, StoreError> {
    let urls = decode_strings(&json_column(row, (0, "delivery_urls"))?, "delivery_urls")?;
    Ok(i64::try_from(urls.len()).unwrap_or(i64::MAX))
}

/// Decodes a `restore_jobs` row just claimed, with the attempt the claim counted.
pub fn claimed_restore_job(row: &dyn RowAccess) -> Result<Claimed<RestoreJob>, StoreError> {
    let attempt = number(row, (20, "attempts"))?;
    Ok(Claimed {
        job: restore_job(row)?,
        attempt: u32::try_from(attempt).map_err(|_| corrupt("attempts"))?,
    })
}

/// Decodes an `api_keys` row.
pub fn api_key(row: &dyn RowAccess) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: id(row, (0, "id"))?,
        org_id: id(row, (1, "org_id"))?,
        public_key: text(row, (2, "public_key"))?,
        description: text(row, (3, "description"))?,
        ha1_md5: text(row, (4, "ha1_md5"))?,
        ha1_sha256: text(row, (5, "ha1_sha256"))?,
        private_key_suffix: text(row, (6, "private_key_suffix"))?,
        org_roles: decode_strings(&json_column(row, (7, "org_roles"))?, "org_roles")?,
        group_roles: decode_group_roles(&json_column(row, (8, "group_roles"))?, "group_roles")?,
        created_at: Timestamp::from_millis(number(row, (9, "created_at"))?),
    })
}

/// Decodes `client_id, org_id, org_roles, group_roles` of a service account and
/// `expires_at` of its token, in that order.
pub fn bearer_grant(row: &dyn RowAccess) -> Result<BearerGrant, StoreError> {
    Ok(BearerGrant {
        client_id: text(row, (0, "client_id"))?,
        org_id: id(row, (1, "org_id"))?,
        org_roles: decode_strings(&json_column(row, (2, "org_roles"))?, "org_roles")?,
        group_roles: decode_group_roles(&json_column(row, (3, "group_roles"))?, "group_roles")?,
        expires_at: Timestamp::from_millis(number(row, (4, "expires_at"))?),
    })
}

/// Decodes a `service_accounts` row.
pub fn service_account(row: &dyn RowAccess) -> Result<ServiceAccount, StoreError> {
    Ok(ServiceAccount {
        client_id: text(row, (0, "client_id"))?,
        org_id: id(row, (1, "org_id"))?,
        name: text(row, (2, "name"))?,
        description: text(row, (3, "description"))?,
        org_roles: decode_strings(&json_column(row, (4, "org_roles"))?, "org_roles")?,
        group_roles: decode_group_roles(&json_column(row, (5, "group_roles"))?, "group_roles")?,
        secrets: decode_secrets(&json_column(row, (6, "secrets"))?)?,
        created_at: Timestamp::from_millis(number(row, (7, "created_at"))?),
    })
}

/// Decodes a `restore_jobs` row followed by its project's organization id (position 18).
pub fn restore_job_with_org(row: &dyn RowAccess) -> Result<(RestoreJob, ObjectId), StoreError> {
    Ok((restore_job(row)?, id(row, (26, "owning_org_id"))?))
}

/// Decodes an `access_tokens` row.
pub fn access_token(row: &dyn RowAccess) -> Result<AccessToken, StoreError> {
    Ok(AccessToken {
        token_sha256: text(row, (0, "token_sha256"))?,
        client_id: text(row, (1, "client_id"))?,
        expires_at: Timestamp::from_millis(number(row, (2, "expires_at"))?),
    })
}

/// Decodes `kind, state, count`.
pub fn state_count(row: &dyn RowAccess) -> Result<(String, String, u64), StoreError> {
    Ok((
        text(row, (0, "kind"))?,
        text(row, (1, "state"))?,
        number(row, (2, "count"))?.max(0) as u64,
    ))
}

/// Decodes a `pit_gaps` row (cluster_id, from_at, closed_at, cause).
pub fn pit_gap(row: &dyn RowAccess) -> Result<PitGap, StoreError> {
    Ok(PitGap {
        cluster_id: id(row, (0, "cluster_id"))?,
        from: Timestamp::from_millis(number(row, (1, "from_at"))?),
        closed_at: optional_number(row, (2, "closed_at"))?.map(Timestamp::from_millis),
        cause: PitGapCause::parse(&text(row, (3, "cause"))?).ok_or_else(|| corrupt("cause"))?,
    })
}
