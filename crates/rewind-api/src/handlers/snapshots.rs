//! Snapshots: take on demand, list, read, change retention, delete; and the sharded-cluster
//! variants.

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use rewind_domain::access::{Principal, ProjectAction};
use rewind_domain::cluster::{Cluster, ClusterType};
use rewind_domain::fields::BodyReader;
use rewind_domain::snapshot::{Retention, RetentionUnit, Snapshot};
use rewind_domain::{DomainError, ObjectId, Timestamp};
use rewind_store::StoreError;
use serde_json::{Value, json};

use super::{
    ApiResult, authorized_cluster, authorized_group, cluster_of, json_response, list_response,
    no_content,
};
use crate::AppState;
use crate::extract::{self, ListQuery};
use crate::views;

/// Retention of an on-demand snapshot when the request gives none (the CLI's default).
const DEFAULT_RETENTION_DAYS: i32 = 1;

async fn snapshot_of(
    app: &AppState,
    cluster: &Cluster,
    snapshot_text: &str,
) -> Result<Snapshot, crate::error::ApiError> {
    let snapshot_id = extract::snapshot_id(snapshot_text)?;
    let live = app
        .store
        .get_snapshot(cluster.id, snapshot_id)
        .await?
        .filter(|snapshot| snapshot.deleted_at.is_none());
    live.ok_or_else(|| {
        DomainError::SnapshotNotFound {
            snapshot_id: snapshot_text.to_owned(),
            cluster: cluster.name.to_string(),
        }
        .into()
    })
}

fn replica_set_view(app: &AppState, cluster: &Cluster, snapshot: &Snapshot) -> Value {
    let names = cluster.replica_set_names();
    views::snapshot(
        &app.links,
        snapshot,
        names.first().map_or("", String::as_str),
    )
}

/// The sharded view of a snapshot of a sharded cluster: one member per shard.
fn sharded_view(app: &AppState, cluster: &Cluster, snapshot: &Snapshot) -> Value {
    let mut body = replica_set_view(app, cluster, snapshot);
    if let Value::Object(object) = &mut body {
        object.remove("replicaSetName");
        object.remove("cloudProvider");
        object.remove("copyRegions");
        object.insert("configServerType".into(), json!("EMBEDDED"));
        let names = cluster.replica_set_names();
        let member_ids: Vec<ObjectId> = (0..names.len())
            .map(|shard| member_snapshot_id(snapshot.id, shard))
            .collect();
        let members: Vec<Value> = names
            .iter()
            .zip(&member_ids)
            .map(|(name, id)| json!({"cloudProvider": "AWS", "id": id, "replicaSetName": name}))
            .collect();
        object.insert("members".into(), Value::Array(members));
        object.insert("snapshotIds".into(), json!(member_ids));
        object.insert("type".into(), json!("shardedCluster"));
        let mut sorted: Vec<(String, Value)> = std::mem::take(object).into_iter().collect();
        sorted.sort_by(|left, right| left.0.cmp(&right.0));
        object.extend(sorted);
    }
    body
}

/// The id of one shard's part of a sharded snapshot: derived from the snapshot id and the
/// shard index, so it is stable without being stored and distinct per shard.
fn member_snapshot_id(snapshot_id: ObjectId, shard: usize) -> ObjectId {
    use sha2::Digest;
    let digest = sha2::Sha256::new()
        .chain_update(snapshot_id.bytes())
        .chain_update(shard.to_be_bytes())
        .finalize();
    let mut bytes = [0u8; 12];
    bytes.copy_from_slice(&digest[..12]);
    ObjectId::from_bytes(bytes)
}

/// `POST .../snapshots`: queues an on-demand snapshot (200, `queued`).
pub async fn take(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((group_text, cluster_text)): Path<(String, String)>,
    body: Body,
) -> ApiResult {
    let group =
        authorized_group(&app, &principal, &group_text, ProjectAction::ManageBackups).await?;
    let body = extract::json_body(body, true).await?;
    let reader = BodyReader::new(&body, &["description", "retentionInDays"], &["links"])?;
    let description = reader.string("description")?.map(str::to_owned);
    let retention = reader
        .int32_at_least("retentionInDays", 1)?
        .unwrap_or(DEFAULT_RETENTION_DAYS);
    let cluster = cluster_of(&app, group.id, &cluster_text).await?;
    if !cluster.backup_enabled {
        return Err(DomainError::BackupNotEnabled {
            name: cluster.name.to_string(),
        }
        .into());
    }
    let snapshot = Snapshot::on_demand(
        group.id,
        cluster.id,
        cluster.name.clone(),
        description,
        retention,
        Timestamp::now(),
    );
    match app.store.insert_on_demand_snapshot(&snapshot).await {
        Ok(()) => {}
        Err(StoreError::Conflict(unfinished)) => {
            return Err(DomainError::UnfinishedOnDemandSnapshot {
                cluster: cluster.name.to_string(),
                snapshot_id: unfinished,
            }
            .into());
        }
        Err(other) => return Err(other.into()),
    }
    tracing::info!(snapshot.id = %snapshot.id, "on-demand snapshot queued");
    // `DiskBackupSnapshot` is discriminated by `type`: a sharded cluster's snapshot says so.
    let view = match cluster.cluster_type {
        ClusterType::Sharded => sharded_view(&app, &cluster, &snapshot),
        ClusterType::ReplicaSet => replica_set_view(&app, &cluster, &snapshot),
    };
    Ok(json_response(StatusCode::OK, &view))
}

/// `GET .../snapshots`: newest first.
pub async fn list(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((group_text, cluster_text)): Path<(String, String)>,
    uri: Uri,
) -> ApiResult {
    let query = ListQuery::parse(uri.query())?;
    let (_, cluster) = authorized_cluster(
        &app,
        &principal,
        &group_text,
        &cluster_text,
        ProjectAction::Read,
    )
    .await?;
    let (snapshots, total) = app.store.list_snapshots(cluster.id, query.page()).await?;
    let results = snapshots
        .iter()
        .map(|snapshot| replica_set_view(&app, &cluster, snapshot))
        .collect();
    Ok(list_response(&app, &uri, &query, results, total))
}

/// `GET .../snapshots/{snapshotId}`.
pub async fn get_one(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((group_text, cluster_text, snapshot_text)): Path<(String, String, String)>,
) -> ApiResult {
    let (_, cluster) = authorized_cluster(
        &app,
        &principal,
        &group_text,
        &cluster_text,
        ProjectAction::Read,
    )
    .await?;
    let snapshot = snapshot_of(&app, &cluster, &snapshot_text).await?;
    Ok(json_response(
        StatusCode::OK,
        &replica_set_view(&app, &cluster, &snapshot),
    ))
}

/// `PATCH .../snapshots/{snapshotId}`: `{retentionUnit, retentionValue}` moves the expiry.
pub async fn update(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((group_text, cluster_text, snapshot_text)): Path<(String, String, String)>,
    body: Body,
) -> ApiResult {
    let group =
        authorized_group(&app, &principal, &group_text, ProjectAction::ManageBackups).await?;
    let body = extract::json_body(body, false).await?;
    let reader = BodyReader::new(&body, &["retentionUnit", "retentionValue"], &["links"])?;
    let unit_text =
        reader
            .string("retentionUnit")?
            .ok_or_else(|| DomainError::MissingAttribute {
                field: "retentionUnit".into(),
            })?;
    let unit = (unit_text == unit_text.to_ascii_uppercase())
        .then(|| RetentionUnit::parse(unit_text))
        .flatten()
        .ok_or_else(|| DomainError::InvalidEnumValue {
            field: "retentionUnit".into(),
            value: unit_text.to_owned(),
        })?;
    let value = reader.int32_at_least("retentionValue", 1)?.ok_or_else(|| {
        DomainError::MissingAttribute {
            field: "retentionValue".into(),
        }
    })?;
    let cluster = cluster_of(&app, group.id, &cluster_text).await?;
    let mut snapshot = snapshot_of(&app, &cluster, &snapshot_text).await?;
    let expires_at = snapshot.expiry_with(Retention { unit, value })?;
    app.store
        .set_snapshot_expiry(snapshot.id, expires_at)
        .await?;
    snapshot.expires_at = expires_at;
    Ok(json_response(
        StatusCode::OK,
        &replica_set_view(&app, &cluster, &snapshot),
    ))
}

async fn delete_snapshot(app: &AppState, cluster: &Cluster, snapshot: &Snapshot) -> ApiResult {
    if snapshot.status.is_unfinished() {
        return Err(DomainError::SnapshotInProgressCannotDelete {
            snapshot_id: snapshot.id.to_string(),
        }
        .into());
    }
    app.store
        .delete_snapshot(snapshot.id, Timestamp::now())
        .await?;
    tracing::info!(snapshot.id = %snapshot.id, cluster.name = %cluster.name, "snapshot deleted");
    Ok(no_content())
}

/// `DELETE .../snapshots/{snapshotId}`.
pub async fn delete(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((group_text, cluster_text, snapshot_text)): Path<(String, String, String)>,
) -> ApiResult {
    let (_, cluster) = authorized_cluster(
        &app,
        &principal,
        &group_text,
        &cluster_text,
        ProjectAction::ManageBackups,
    )
    .await?;
    let snapshot = snapshot_of(&app, &cluster, &snapshot_text).await?;
    delete_snapshot(&app, &cluster, &snapshot).await
}

/// Loads a snapshot through the sharded-cluster paths: only snapshots of sharded clusters.
async fn sharded_snapshot_of(
    app: &AppState,
    cluster: &Cluster,
    snapshot_text: &str,
) -> Result<Snapshot, crate::error::ApiError> {
    let snapshot = snapshot_of(app, cluster, snapshot_text).await?;
    if cluster.cluster_type != ClusterType::Sharded {
        return Err(DomainError::SnapshotNotFound {
            snapshot_id: snapshot_text.to_owned(),
            cluster: cluster.name.to_string(),
        }
        .into());
    }
    Ok(snapshot)
}

/// `GET .../snapshots/shardedClusters`: a sharded cluster's snapshots; none for a replica set.
pub async fn list_sharded(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((group_text, cluster_text)): Path<(String, String)>,
    uri: Uri,
) -> ApiResult {
    let query = ListQuery::parse(uri.query())?;
    let (_, cluster) = authorized_cluster(
        &app,
        &principal,
        &group_text,
        &cluster_text,
        ProjectAction::Read,
    )
    .await?;
    let (results, total) = if cluster.cluster_type == ClusterType::Sharded {
        let (snapshots, total) = app.store.list_snapshots(cluster.id, query.page()).await?;
        (
            snapshots
                .iter()
                .map(|snapshot| sharded_view(&app, &cluster, snapshot))
                .collect(),
            total,
        )
    } else {
        (Vec::new(), 0)
    };
    Ok(list_response(&app, &uri, &query, results, total))
}

/// `GET .../snapshots/shardedCluster/{snapshotId}`.
pub async fn get_sharded(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((group_text, cluster_text, snapshot_text)): Path<(String, String, String)>,
) -> ApiResult {
    let (_, cluster) = authorized_cluster(
        &app,
        &principal,
        &group_text,
        &cluster_text,
        ProjectAction::Read,
    )
    .await?;
    let snapshot = sharded_snapshot_of(&app, &cluster, &snapshot_text).await?;
    Ok(json_response(
        StatusCode::OK,
        &sharded_view(&app, &cluster, &snapshot),
    ))
}

/// `DELETE .../snapshots/shardedCluster/{snapshotId}`.
pub async fn delete_sharded(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((group_text, cluster_text, snapshot_text)): Path<(String, String, String)>,
) -> ApiResult {
    let (_, cluster) = authorized_cluster(
        &app,
        &principal,
        &group_text,
        &cluster_text,
        ProjectAction::ManageBackups,
    )
    .await?;
    let snapshot = sharded_snapshot_of(&app, &cluster, &snapshot_text).await?;
    delete_snapshot(&app, &cluster, &snapshot).await
}
