//! Entities rendered as Atlas renders them: field names, order, links and omitted fields.

use rewind_domain::cluster::{Cluster, MONGODB_MAJOR_VERSION, MONGODB_VERSION, replica_set_name};
use rewind_domain::group::{Group, Organization};
use rewind_domain::restore_job::{RestoreJob, RestoreJobState, RestoreProgress};
use rewind_domain::restore_request::{DeliveryType, PitTarget};
use rewind_domain::schedule::BackupSchedule;
use rewind_domain::snapshot::Snapshot;
use rewind_domain::{ClusterName, ObjectId, Timestamp};
use rewind_store::{ApiKey, ServiceAccount};
use serde::Serialize;
use serde_json::{Map, Value, json};

/// Builds absolute links under the service's public base URL.
#[derive(Clone, Debug)]
pub struct Links {
    base: String,
}

impl Links {
    /// `base` is the public URL clients reach the service at, without a trailing slash.
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// An absolute URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn link(&self, rel: &str, path: &str) -> Value {
        json!({"href": self.url(path), "rel": rel})
    }

    /// The `self` link.
    pub fn self_link(&self, path: &str) -> Value {
        self.link("self", path)
    }
}

/// `/api/atlas/v2/groups/{id}`.
pub fn group_path(group_id: ObjectId) -> String {
    format!("/api/atlas/v2/groups/{group_id}")
}

/// `/api/atlas/v2/groups/{id}/clusters/{name}`.
pub fn cluster_path(group_id: ObjectId, name: &str) -> String {
    format!("/api/atlas/v2/groups/{group_id}/clusters/{name}")
}

/// `.../clusters/{name}/backup`.
pub fn backup_path(group_id: ObjectId, name: &str) -> String {
    format!("{}/backup", cluster_path(group_id, name))
}

/// An organization.
pub fn organization(links: &Links, org: &Organization) -> Value {
    json!({
        "id": org.id,
        "isDeleted": false,
        "links": [links.self_link(&format!("/api/atlas/v2/orgs/{}", org.id))],
        "name": org.name,
    })
}

/// A project (`Group`).
pub fn group(links: &Links, group: &Group, cluster_count: u64) -> Value {
    json!({
        "clusterCount": cluster_count,
        "created": group.created_at,
        "id": group.id,
        "links": [links.self_link(&group_path(group.id))],
        "name": group.name,
        "orgId": group.org_id,
        "withDefaultAlertsSettings": true,
    })
}

/// A cluster (`ClusterDescription20240805`): the client's recorded description with the
/// fields rewind owns laid over it.
pub fn cluster(links: &Links, cluster: &Cluster) -> Value {
    let mut body = match &cluster.spec {
        Value::Object(object) => object.clone(),
        _ => Map::new(),
    };
    let path = cluster_path(cluster.group_id, cluster.name.as_str());
    let mut owned = json!({
        "backupEnabled": cluster.backup_enabled,
        "clusterType": cluster.cluster_type.as_str(),
        "connectionStrings": connection_strings(cluster.mongodb_uri().as_deref()),
        "createDate": cluster.created_at,
        "groupId": cluster.group_id,
        "id": cluster.id,
        "links": [
            links.self_link(&path),
            links.link("https://cloud.mongodb.com/restoreJobs", &format!("{path}/backup/restoreJobs")),
            links.link("https://cloud.mongodb.com/snapshots", &format!("{path}/backup/snapshots")),
        ],
        "mongoDBMajorVersion": MONGODB_MAJOR_VERSION,
        "mongoDBVersion": MONGODB_VERSION,
        "name": cluster.name.as_str(),
        "paused": cluster.paused,
        "pitEnabled": cluster.pit_enabled,
        "stateName": cluster.state.as_str(),
    });
    if let Some(owned) = owned.as_object_mut() {
        body.extend(std::mem::take(owned));
    }
    let mut sorted: Vec<(String, Value)> = body.into_iter().collect();
    sorted.sort_by(|left, right| left.0.cmp(&right.0));
    Value::Object(sorted.into_iter().collect())
}

/// `connectionStrings`: empty until the cluster is served by a live database.
fn connection_strings(mongodb_uri: Option<&str>) -> Value {
    match mongodb_uri {
        Some(uri) => json!({"standard": uri, "standardSrv": uri}),
        None => json!({}),
    }
}

/// A link as Atlas writes it.
#[derive(Serialize)]
pub struct Link {
    href: String,
    rel: &'static str,
}

impl Link {
    /// A link to `href` with relation `rel`.
    pub fn new(href: String, rel: &'static str) -> Self {
        Self { href, rel }
    }
}

/// `desiredTimestamp` of a pointInTime job: the target second, and the increment when the
/// target is an oplog optime (`time` is the extra key real Atlas sends).
#[derive(Serialize)]
pub struct DesiredTimestamp {
    date: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    increment: Option<i32>,
    time: i64,
}

/// One replica set's download link (`DiskBackupRestoreMember`); the link is shown while the
/// job's links serve.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Component<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    download_url: Option<&'a str>,
    replica_set_name: String,
}

/// A restore job (`DiskBackupSnapshotRestoreJob`), in the field order of a real response.
/// A typed view rather than a JSON tree: it is the hottest response rewind serves.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreJobView<'a> {
    cancelled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    components: Option<Vec<Component<'a>>>,
    delivery_type: &'static str,
    delivery_url: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    desired_timestamp: Option<DesiredTimestamp>,
    expired: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<Timestamp>,
    failed: bool,
    /// rewind's own: why the job failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_at: Option<Timestamp>,
    id: ObjectId,
    links: Vec<Link>,
    #[serde(skip_serializing_if = "Option::is_none")]
    oplog_inc: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    oplog_ts: Option<i32>,
    #[serde(
        rename = "pointInTimeUTCSeconds",
        skip_serializing_if = "Option::is_none"
    )]
    point_in_time_utc_seconds: Option<i32>,
    /// rewind's own: how far the restore got (Atlas clients ignore unknown fields).
    #[serde(skip_serializing_if = "Option::is_none")]
    progress: Option<RestoreProgress>,
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot_id: Option<ObjectId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_cluster_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_deployment_item_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_group_id: Option<ObjectId>,
    #[serde(rename = "timestamp", skip_serializing_if = "Option::is_none")]
    snapshot_taken_at: Option<Timestamp>,
}

/// A restore job as Atlas renders it.
pub fn restore_job<'a>(links: &Links, job: &'a RestoreJob) -> RestoreJobView<'a> {
    let backup = backup_path(job.group_id, job.cluster_name.as_str());
    let link = |rel: &'static str, path: &str| Link {
        href: links.url(path),
        rel,
    };
    let mut job_links = vec![link("self", &format!("{backup}/restoreJobs/{}", job.id))];
    if let Some(snapshot_id) = job.snapshot_id {
        job_links.push(link(
            "https://cloud.mongodb.com/snapshot",
            &format!("{backup}/snapshots/{snapshot_id}"),
        ));
    }
    job_links.push(link(
        "https://cloud.mongodb.com/cluster",
        &cluster_path(job.group_id, job.cluster_name.as_str()),
    ));
    job_links.push(link(
        "https://cloud.mongodb.com/group",
        &group_path(job.group_id),
    ));
    let (oplog, utc_seconds) = match job.pit {
        Some(PitTarget::Oplog { ts, inc }) => (Some((ts, inc)), None),
        Some(PitTarget::UtcSeconds(seconds)) => (None, Some(seconds)),
        None => (None, None),
    };
    RestoreJobView {
        cancelled: job.state == RestoreJobState::Cancelled,
        components: (job.delivery_type == DeliveryType::Download).then(|| {
            let serving = job.state == RestoreJobState::Completed;
            // The worker lists links in the order of the source's replica sets.
            job.delivery_urls
                .iter()
                .enumerate()
                .map(|(shard, url)| Component {
                    download_url: serving.then_some(url.as_str()),
                    replica_set_name: replica_set_name(job.cluster_name.as_str(), shard),
                })
                .collect()
        }),
        delivery_type: job.delivery_type.as_str(),
        delivery_url: match job.state {
            RestoreJobState::Completed => &job.delivery_urls,
            _ => &[],
        },
        desired_timestamp: job.pit.map(|pit| {
            let seconds = pit.seconds();
            DesiredTimestamp {
                date: Timestamp::from_secs(seconds),
                increment: oplog.map(|(_, inc)| inc),
                time: seconds,
            }
        }),
        expired: job.state == RestoreJobState::Expired,
        expires_at: job.expires_at,
        failed: job.state == RestoreJobState::Failed,
        failure_reason: job.failure_reason.as_deref(),
        finished_at: job.finished_at,
        id: job.id,
        links: job_links,
        oplog_inc: oplog.map(|(_, inc)| inc),
        oplog_ts: oplog.map(|(ts, _)| ts),
        point_in_time_utc_seconds: utc_seconds,
        progress: job.progress,
        snapshot_id: job.snapshot_id,
        target_cluster_name: job.target_cluster_name.as_ref().map(ClusterName::as_str),
        target_deployment_item_name: job
            .target_cluster_name
            .as_ref()
            .map(|name| format!("atlas-{}", name.as_str().to_lowercase())),
        target_group_id: job.target_group_id,
        snapshot_taken_at: job.snapshot_taken_at,
    }
}

/// A replica-set snapshot (`DiskBackupReplicaSet`), with the fields a snapshot shows in its
/// current state only, as Atlas does.
pub fn snapshot(links: &Links, snapshot: &Snapshot, replica_set_name: &str) -> Value {
    let path = backup_path(snapshot.group_id, snapshot.cluster_name.as_str());
    let mut body = Map::new();
    if snapshot.mongod_version.is_some() {
        body.insert("cloudProvider".into(), json!("AWS"));
    }
    body.insert("copyRegions".into(), json!([]));
    if let Some(created_at) = snapshot.created_at {
        body.insert("createdAt".into(), json!(created_at));
    }
    if let Some(description) = &snapshot.description {
        body.insert("description".into(), json!(description));
    }
    body.insert("expiresAt".into(), json!(snapshot.expires_at));
    body.insert("frequencyType".into(), json!(snapshot.frequency_type));
    body.insert("id".into(), json!(snapshot.id));
    body.insert(
        "links".into(),
        json!([
            links.self_link(&format!("{path}/snapshots/{}", snapshot.id)),
            links.link(
                "https://cloud.mongodb.com/cluster",
                &cluster_path(snapshot.group_id, snapshot.cluster_name.as_str())
            ),
        ]),
    );
    if let Some(version) = &snapshot.mongod_version {
        body.insert("mongodVersion".into(), json!(version));
    }
    body.insert("policyItems".into(), json!(snapshot.policy_items));
    body.insert("replicaSetName".into(), json!(replica_set_name));
    body.insert(
        "snapshotType".into(),
        json!(snapshot.snapshot_type.as_str()),
    );
    body.insert("status".into(), json!(snapshot.status.as_str()));
    body.insert(
        "storageSizeBytes".into(),
        json!(snapshot.storage_size_bytes),
    );
    body.insert("type".into(), json!("replicaSet"));
    Value::Object(body)
}

/// A backup schedule in the shape of the negotiated version.
pub fn schedule(
    links: &Links,
    cluster: &Cluster,
    schedule: &BackupSchedule,
    version_2024: bool,
    now: Timestamp,
) -> Value {
    let items: Vec<Value> = schedule
        .policy_items
        .iter()
        .map(|item| {
            json!({
                "frequencyInterval": item.frequency_interval,
                "frequencyType": item.frequency_type,
                "id": item.id,
                "retentionUnit": item.retention_unit.as_lower_str(),
                "retentionValue": item.retention_value,
            })
        })
        .collect();
    let mut body = Map::new();
    if version_2024 {
        body.insert(
            "autoCopySettingsEnabled".into(),
            json!(schedule.auto_copy_settings_enabled),
        );
    }
    body.insert(
        "autoExportEnabled".into(),
        json!(schedule.auto_export_enabled),
    );
    body.insert("clusterId".into(), json!(cluster.id));
    body.insert("clusterName".into(), json!(cluster.name.as_str()));
    body.insert(
        "copySettings".into(),
        json!(schedule.copy_settings_for(version_2024)),
    );
    body.insert(
        "extraRetentionSettings".into(),
        json!(schedule.extra_retention_settings),
    );
    body.insert(
        "links".into(),
        json!([links.self_link(&format!(
            "{}/schedule",
            backup_path(cluster.group_id, cluster.name.as_str())
        ))]),
    );
    if let Some(next) = schedule.next_snapshot(now) {
        body.insert("nextSnapshot".into(), json!(next));
    }
    body.insert(
        "policies".into(),
        json!([{"id": schedule.policy_id, "policyItems": items}]),
    );
    body.insert(
        "referenceHourOfDay".into(),
        json!(schedule.reference_hour_of_day),
    );
    body.insert(
        "referenceMinuteOfHour".into(),
        json!(schedule.reference_minute_of_hour),
    );
    body.insert(
        "restoreWindowDays".into(),
        json!(schedule.restore_window_days),
    );
    body.insert(
        "useOrgAndGroupNamesInExportPrefix".into(),
        json!(schedule.use_org_and_group_names_in_export_prefix),
    );
    Value::Object(body)
}

fn role_assignments(
    org_roles: &[String],
    group_roles: &[(ObjectId, String)],
    org_id: ObjectId,
) -> Vec<Value> {
    let mut roles: Vec<Value> = org_roles
        .iter()
        .map(|role| json!({"orgId": org_id, "roleName": role}))
        .collect();
    roles.extend(
        group_roles
            .iter()
            .map(|(group_id, role)| json!({"groupId": group_id, "roleName": role})),
    );
    roles
}

/// An API key (`ApiKeyUserDetails`); the private key is only ever shown masked here.
pub fn api_key(links: &Links, key: &ApiKey, private_key: Option<&str>) -> Value {
    let masked = format!("********-****-****-{}", key.private_key_suffix);
    json!({
        "desc": key.description,
        "id": key.id,
        "links": [links.self_link(&format!("/api/atlas/v2/orgs/{}/apiKeys/{}", key.org_id, key.id))],
        "privateKey": private_key.unwrap_or(&masked),
        "publicKey": key.public_key,
        "roles": role_assignments(&key.org_roles, &key.group_roles, key.org_id),
    })
}

/// A service account (`OrgServiceAccount`); a secret's value appears only when just created.
pub fn service_account(account: &ServiceAccount, new_secret: Option<&str>) -> Value {
    let secrets: Vec<Value> = account
        .secrets
        .iter()
        .map(|secret| {
            let mut body = json!({
                "createdAt": secret.created_at,
                "expiresAt": secret.expires_at,
                "id": secret.id,
                "maskedSecretValue": secret.masked,
            });
            if let Some(value) = new_secret {
                body["secret"] = json!(value);
            }
            body
        })
        .collect();
    json!({
        "clientId": account.client_id,
        "createdAt": account.created_at,
        "description": account.description,
        "name": account.name,
        "roles": account.org_roles,
        "secrets": secrets,
    })
}
