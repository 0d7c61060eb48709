//! Clusters (`ClusterDescription20240805`). In this release a cluster is a record: rewind
//! records and echoes what clients describe and reports `connectionStrings` empty.

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use rewind_domain::access::{Principal, ProjectAction};
use rewind_domain::cluster::{Cluster, ClusterState, ClusterType};
use rewind_domain::fields::{invalid, wrong_type};
use rewind_domain::schedule::BackupSchedule;
use rewind_domain::{ClusterName, DomainError, ObjectId, Timestamp};
use rewind_store::StoreError;
use serde_json::{Map, Value};

use super::{ApiResult, authorized_cluster, authorized_group, json_response, list_response};
use crate::AppState;
use crate::extract::{self, ListQuery};
use crate::views;

/// Fields the server owns; a client may not set them.
const READ_ONLY: &[&str] = &[
    "id",
    "groupId",
    "createDate",
    "stateName",
    "connectionStrings",
    "mongoDBVersion",
    "links",
    "featureCompatibilityVersion",
    "featureCompatibilityVersionExpirationDate",
];
/// Fields rewind acts on; everything else a client sends is recorded and echoed.
const OWNED: &[&str] = &[
    "name",
    "clusterType",
    "backupEnabled",
    "pitEnabled",
    "paused",
    "mongoDBMajorVersion",
];

/// The settings of a create or update body that rewind acts on.
struct ClusterSettings {
    name: Option<ClusterName>,
    cluster_type: Option<ClusterType>,
    backup_enabled: Option<bool>,
    pit_enabled: Option<bool>,
    paused: Option<bool>,
    recorded: Map<String, Value>,
}

fn parse_settings(body: &Value) -> Result<ClusterSettings, DomainError> {
    let Value::Object(object) = body else {
        return Err(DomainError::MalformedJson {
            reason: "the request body must be a JSON object".into(),
        });
    };
    if let Some(field) = object.keys().find(|key| READ_ONLY.contains(&key.as_str())) {
        return Err(DomainError::AttributeReadOnly {
            field: field.clone(),
        });
    }
    let flag = |field: &str| match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(value)) => Ok(Some(*value)),
        Some(_) => Err(wrong_type(field)),
    };
    let name = match object.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(ClusterName::parse(text).map_err(|_| {
            invalid(
                "name",
                "must be 1 to 64 characters matching ^[a-zA-Z0-9][a-zA-Z0-9-]*$",
            )
        })?),
        Some(_) => return Err(wrong_type("name")),
    };
    let cluster_type = match object.get("clusterType") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => {
            Some(
                ClusterType::parse(text).ok_or_else(|| DomainError::InvalidEnumValue {
                    field: "clusterType".into(),
                    value: text.clone(),
                })?,
            )
        }
        Some(_) => return Err(wrong_type("clusterType")),
    };
    match object.get("mongoDBMajorVersion") {
        None | Some(Value::Null) | Some(Value::String(_)) => {}
        Some(_) => return Err(wrong_type("mongoDBMajorVersion")),
    }
    validate_replication_specs(object.get("replicationSpecs"))?;
    let recorded = object
        .iter()
        .filter(|(key, _)| !OWNED.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    Ok(ClusterSettings {
        name,
        cluster_type,
        backup_enabled: flag("backupEnabled")?,
        pit_enabled: flag("pitEnabled")?,
        paused: flag("paused")?,
        recorded,
    })
}

/// Checks the shape clients send: `replicationSpecs[].regionConfigs[]` objects with string
/// provider and region names, an integer priority and `electableSpecs.nodeCount`.
fn validate_replication_specs(specs: Option<&Value>) -> Result<(), DomainError> {
    let Some(specs) = specs.filter(|value| !value.is_null()) else {
        return Ok(());
    };
    let specs = specs
        .as_array()
        .ok_or_else(|| wrong_type("replicationSpecs"))?;
    for (spec_index, spec) in specs.iter().enumerate() {
        let at = |rest: &str| format!("replicationSpecs[{spec_index}]{rest}");
        let spec = spec.as_object().ok_or_else(|| wrong_type(&at("")))?;
        let Some(regions) = spec.get("regionConfigs").filter(|value| !value.is_null()) else {
            continue;
        };
        let regions = regions
            .as_array()
            .ok_or_else(|| wrong_type(&at(".regionConfigs")))?;
        for (region_index, region) in regions.iter().enumerate() {
            let field = |name: &str| at(&format!(".regionConfigs[{region_index}].{name}"));
            let region = region.as_object().ok_or_else(|| wrong_type(&field("")))?;
            for name in ["providerName", "regionName", "backingProviderName"] {
                if region
                    .get(name)
                    .is_some_and(|value| !value.is_string() && !value.is_null())
                {
                    return Err(wrong_type(&field(name)));
                }
            }
            if let Some(priority) = region.get("priority").filter(|value| !value.is_null()) {
                let priority = priority
                    .as_i64()
                    .ok_or_else(|| wrong_type(&field("priority")))?;
                if !(0..=7).contains(&priority) {
                    return Err(invalid(&field("priority"), "must be between 0 and 7"));
                }
            }
            if let Some(nodes) = region
                .get("electableSpecs")
                .and_then(|specs| specs.get("nodeCount"))
                .filter(|value| !value.is_null())
            {
                let nodes = nodes
                    .as_i64()
                    .ok_or_else(|| wrong_type(&field("electableSpecs.nodeCount")))?;
                if !(0..=50).contains(&nodes) {
                    return Err(invalid(
                        &field("electableSpecs.nodeCount"),
                        "must be between 0 and 50",
                    ));
                }
            }
        }
    }
    Ok(())
}

fn check_pit_needs_backup(backup_enabled: bool, pit_enabled: bool) -> Result<(), DomainError> {
    if pit_enabled && !backup_enabled {
        return Err(invalid("pitEnabled", "requires backupEnabled to be true"));
    }
    Ok(())
}

/// `GET .../clusters`.
pub async fn list(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(group_text): Path<String>,
    uri: Uri,
) -> ApiResult {
    let query = ListQuery::parse(uri.query())?;
    let group = authorized_group(&app, &principal, &group_text, ProjectAction::Read).await?;
    let (clusters, total) = app.store.list_clusters(group.id, query.page()).await?;
    let results = clusters
        .iter()
        .map(|cluster| views::cluster(&app.links, cluster))
        .collect();
    Ok(list_response(&app, &uri, &query, results, total))
}

/// `POST .../clusters`: records the cluster (201) and gives it Atlas's default backup schedule
/// when backup is on.
pub async fn create(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(group_text): Path<String>,
    body: Body,
) -> ApiResult {
    let group =
        authorized_group(&app, &principal, &group_text, ProjectAction::ManageClusters).await?;
    let body = extract::json_body(body, false).await?;
    let settings = parse_settings(&body)?;
    let name = settings.name.ok_or_else(|| DomainError::MissingAttribute {
        field: "name".into(),
    })?;
    let backup_enabled = settings.backup_enabled.unwrap_or(false);
    let pit_enabled = settings.pit_enabled.unwrap_or(false);
    check_pit_needs_backup(backup_enabled, pit_enabled)?;
    let now = Timestamp::now();
    let cluster = Cluster {
        id: ObjectId::generate(),
        group_id: group.id,
        name: name.clone(),
        cluster_type: settings.cluster_type.unwrap_or(ClusterType::ReplicaSet),
        backup_enabled,
        pit_enabled,
        paused: settings.paused.unwrap_or(false),
        // IDLE once a replica serves it (see the binary's cluster hosting).
        state: ClusterState::Creating,
        created_at: now,
        spec: Value::Object(settings.recorded),
        address: None,
    };
    let schedule = backup_enabled.then(|| BackupSchedule::atlas_default(cluster.id, now));
    match app.store.create_cluster(&cluster, schedule.as_ref()).await {
        Ok(()) => {}
        Err(StoreError::AlreadyExists(_)) => {
            return Err(DomainError::ClusterNameTaken {
                name: name.to_string(),
                group_id: group.id.to_string(),
            }
            .into());
        }
        Err(other) => return Err(other.into()),
    }
    tracing::info!(cluster.id = %cluster.id, cluster.name = %cluster.name, "cluster created");
    Ok(json_response(
        StatusCode::CREATED,
        &views::cluster(&app.links, &cluster),
    ))
}

/// `GET .../clusters/{clusterName}`.
pub async fn get_one(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((group_text, name)): Path<(String, String)>,
) -> ApiResult {
    let (_, cluster) =
        authorized_cluster(&app, &principal, &group_text, &name, ProjectAction::Read).await?;
    Ok(json_response(
        StatusCode::OK,
        &views::cluster(&app.links, &cluster),
    ))
}

/// `PATCH .../clusters/{clusterName}`: changes settings; refused while a restore targets it.
pub async fn update(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((group_text, name)): Path<(String, String)>,
    body: Body,
) -> ApiResult {
    let (group, cluster) = authorized_cluster(
        &app,
        &principal,
        &group_text,
        &name,
        ProjectAction::ManageClusters,
    )
    .await?;
    let body = extract::json_body(body, false).await?;
    let settings = parse_settings(&body)?;
    if settings
        .name
        .as_ref()
        .is_some_and(|new_name| *new_name != cluster.name)
    {
        return Err(invalid("name", "cannot be changed").into());
    }
    if app.store.target_restoring(group.id, &cluster.name).await? {
        return Err(DomainError::ClusterRestoreInProgress {
            name: cluster.name.to_string(),
        }
        .into());
    }
    let mut updated = cluster.clone();
    if let Some(cluster_type) = settings.cluster_type {
        updated.cluster_type = cluster_type;
    }
    if let (Value::Object(spec), false) = (&mut updated.spec, settings.recorded.is_empty()) {
        spec.extend(settings.recorded);
    }
    // Each replica set is a running engine whose snapshots and restores are kept by name:
    // a cluster keeps the replica sets it was created with.
    if updated.replica_set_names() != cluster.replica_set_names() {
        let field = if updated.cluster_type == cluster.cluster_type {
            "replicationSpecs"
        } else {
            "clusterType"
        };
        return Err(invalid(
            field,
            "cannot change the cluster's replica sets; create a new cluster and restore a snapshot into it",
        )
        .into());
    }
    updated.backup_enabled = settings.backup_enabled.unwrap_or(cluster.backup_enabled);
    updated.pit_enabled = settings
        .pit_enabled
        .unwrap_or(cluster.pit_enabled && updated.backup_enabled);
    updated.paused = settings.paused.unwrap_or(cluster.paused);
    check_pit_needs_backup(updated.backup_enabled, updated.pit_enabled)?;
    let schedule = updated
        .backup_enabled
        .then(|| BackupSchedule::atlas_default(updated.id, Timestamp::now()));
    app.store
        .update_cluster(&updated, schedule.as_ref())
        .await?;
    Ok(json_response(
        StatusCode::OK,
        &views::cluster(&app.links, &updated),
    ))
}

/// `DELETE .../clusters/{clusterName}`: removes the cluster with its schedule and snapshots.
pub async fn delete(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((group_text, name)): Path<(String, String)>,
) -> ApiResult {
    let (_, cluster) = authorized_cluster(
        &app,
        &principal,
        &group_text,
        &name,
        ProjectAction::ManageClusters,
    )
    .await?;
    match app.store.delete_cluster(cluster.id).await {
        Ok(_) => {
            tracing::info!(cluster.id = %cluster.id, "cluster deleted");
            Ok(super::no_content_with(StatusCode::ACCEPTED))
        }
        Err(StoreError::Conflict(_)) => Err(DomainError::ClusterRestoreInProgress {
            name: cluster.name.to_string(),
        }
        .into()),
        Err(other) => Err(other.into()),
    }
}
