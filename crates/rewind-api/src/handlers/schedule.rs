//! Backup schedules: `GET/PATCH/DELETE .../backup/schedule`.

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rewind_domain::access::{Principal, ProjectAction};
use rewind_domain::cluster::Cluster;
use rewind_domain::schedule::BackupSchedule;
use rewind_domain::{DomainError, Timestamp};

use super::{ApiResult, authorized_group, cluster_of, json_response};
use crate::AppState;
use crate::error::ApiError;
use crate::extract;
use crate::negotiate::ApiVersion;
use crate::views;

async fn load(
    app: &AppState,
    principal: &Principal,
    group_text: &str,
    cluster_text: &str,
    action: ProjectAction,
) -> Result<(Cluster, BackupSchedule), ApiError> {
    let group = authorized_group(app, principal, group_text, action).await?;
    let cluster = cluster_of(app, group.id, cluster_text).await?;
    let schedule = app
        .store
        .get_schedule(cluster.id)
        .await?
        .filter(|_| cluster.backup_enabled)
        .ok_or_else(|| DomainError::BackupNotEnabled {
            name: cluster.name.to_string(),
        })?;
    Ok((cluster, schedule))
}

/// A 200 with the schedule in the shape of the negotiated version.
fn schedule_response(
    app: &AppState,
    cluster: &Cluster,
    schedule: &BackupSchedule,
    version: ApiVersion,
) -> axum::response::Response {
    let body = views::schedule(
        &app.links,
        cluster,
        schedule,
        version.is_2024_or_later(),
        Timestamp::now(),
    );
    json_response(StatusCode::OK, &body)
}

/// `GET .../backup/schedule`.
pub async fn get_one(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(version): Extension<ApiVersion>,
    Path((group_text, cluster_text)): Path<(String, String)>,
) -> ApiResult {
    let (cluster, schedule) = load(
        &app,
        &principal,
        &group_text,
        &cluster_text,
        ProjectAction::Read,
    )
    .await?;
    Ok(schedule_response(&app, &cluster, &schedule, version))
}

/// `PATCH .../backup/schedule`.
pub async fn update(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(version): Extension<ApiVersion>,
    Path((group_text, cluster_text)): Path<(String, String)>,
    body: Body,
) -> ApiResult {
    let (cluster, schedule) = load(
        &app,
        &principal,
        &group_text,
        &cluster_text,
        ProjectAction::ManageBackups,
    )
    .await?;
    let body = extract::json_body(body, false).await?;
    let patched = schedule.patched(&body, version.is_2024_or_later())?;
    app.store.put_schedule(&patched).await?;
    Ok(schedule_response(&app, &cluster, &patched, version))
}

/// `DELETE .../backup/schedule`: removes every policy item and returns the emptied schedule.
pub async fn clear(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(version): Extension<ApiVersion>,
    Path((group_text, cluster_text)): Path<(String, String)>,
) -> ApiResult {
    let (cluster, schedule) = load(
        &app,
        &principal,
        &group_text,
        &cluster_text,
        ProjectAction::ManageBackups,
    )
    .await?;
    let cleared = schedule.cleared();
    app.store.put_schedule(&cleared).await?;
    Ok(schedule_response(&app, &cluster, &cleared, version))
}
