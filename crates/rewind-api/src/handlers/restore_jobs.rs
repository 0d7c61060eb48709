//! Restore jobs: `POST/GET .../backup/restoreJobs`, `GET/DELETE .../restoreJobs/{id}`.

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use rewind_domain::access::{Principal, ProjectAction};
use rewind_domain::restore_job::{
    MAX_ACTIVE_DOWNLOADS_PER_GROUP, RestoreContext, RestoreJobState, plan_restore,
};
use rewind_domain::restore_request::{DeliveryType, PitTarget, RestoreRequest};
use rewind_domain::{DomainError, Timestamp};
use rewind_store::{RestoreGuard, StoreError};

use super::{
    ApiResult, authorized_cluster, authorized_group, cluster_of, json_bytes_response,
    json_response, list_response, no_content,
};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{self, ListQuery};
use crate::views;

/// `POST .../restoreJobs`: validates every rule, then records a queued job (200).
///
/// Order: path, project and Project Owner role, body shape, source cluster, target project
/// and role, target cluster, snapshot, then the rules that need stored state. Nothing is
/// written until every check passed; the final insert re-checks the races atomically.
pub async fn create(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((group_text, cluster_text)): Path<(String, String)>,
    body: Body,
) -> ApiResult {
    let group = authorized_group(&app, &principal, &group_text, ProjectAction::Own).await?;
    let body = extract::json_body(body, false).await?;
    let request = RestoreRequest::parse(&body, &cluster_text)?;
    let source = cluster_of(&app, group.id, &cluster_text).await?;

    let mut target_cluster = None;
    if let Some(target) = &request.target {
        let target_group = app.store.get_group(target.group_id).await?.ok_or_else(|| {
            DomainError::GroupNotFound {
                group_id: target.group_id.to_string(),
            }
        })?;
        if target_group.id != group.id {
            principal.check_restore_target(target_group.org_id, target_group.id)?;
        }
        target_cluster = app
            .store
            .get_cluster(target_group.id, &target.cluster_name)
            .await?;
    }
    let snapshot = match request.snapshot_id {
        Some(snapshot_id) => app.store.get_snapshot(source.id, snapshot_id).await?,
        None => None,
    };
    let (pit_base_snapshot, pit_gap) = match request.pit {
        Some(pit) => {
            // A snapshot captured within the target second holds only operations that the
            // target includes (UTC seconds are inclusive); an oplog target is exact, so only
            // snapshots strictly before its second qualify until snapshots record optimes.
            let limit = match pit {
                PitTarget::UtcSeconds(seconds) => {
                    Timestamp::from_secs(i64::from(seconds)).plus_millis(999)
                }
                PitTarget::Oplog { ts, .. } => Timestamp::from_secs(i64::from(ts)).plus_millis(-1),
            };
            // The target needs every operation up to the end of its second.
            let needed_until = Timestamp::from_secs(pit.seconds()).plus_millis(999);
            (
                app.store
                    .latest_completed_snapshot(source.id, limit)
                    .await?,
                app.store.pit_gap_at(source.id, needed_until, limit).await?,
            )
        }
        None => (None, None),
    };
    let (active_downloads_of_snapshot, active_downloads_in_group) =
        match (&snapshot, request.delivery_type) {
            (Some(snapshot), DeliveryType::Download) => {
                app.store.active_downloads(group.id, snapshot.id).await?
            }
            _ => (0, 0),
        };
    let source_schedule = app.store.get_schedule(source.id).await?;
    let mut context = RestoreContext {
        group_id: group.id,
        source: &source,
        source_schedule: source_schedule.as_ref(),
        snapshot: snapshot.as_ref(),
        pit_base_snapshot: pit_base_snapshot.as_ref(),
        pit_gap: pit_gap.as_ref(),
        target: target_cluster.as_ref(),
        target_restoring: false,
        active_downloads_of_snapshot,
        active_downloads_in_group,
        now: Timestamp::now(),
    };
    // Whether the target is already restoring is re-checked atomically by the insert's guard,
    // so an accepted request need not ask first. A refused one asks, and is planned again, so
    // that a busy target is reported in its place among the rules (before the point-in-time
    // ones), exactly as if it had been known from the start.
    let job = match plan_restore(&request, &context) {
        Ok(job) => job,
        Err(error) => {
            let Some(target) = &request.target else {
                return Err(error.into());
            };
            context.target_restoring = app
                .store
                .target_restoring(target.group_id, &target.cluster_name)
                .await?;
            plan_restore(&request, &context)?
        }
    };

    let guard = RestoreGuard {
        target: request
            .target
            .as_ref()
            .map(|target| (target.group_id, target.cluster_name.clone())),
        download_snapshot: (job.delivery_type == DeliveryType::Download)
            .then_some(job.snapshot_id)
            .flatten(),
        max_group_downloads: (job.delivery_type == DeliveryType::Download)
            .then_some(MAX_ACTIVE_DOWNLOADS_PER_GROUP),
    };
    match app.store.insert_restore_job(&job, &guard).await {
        Ok(()) => {}
        Err(StoreError::Conflict(what)) => return Err(race_error(&what, &job, &request).into()),
        Err(other) => return Err(other.into()),
    }
    tracing::info!(restore_job.id = %job.id, delivery_type = job.delivery_type.as_str(), "restore job queued");
    Ok(json_response(
        StatusCode::OK,
        &views::restore_job(&app.links, &job),
    ))
}

/// The error for a check that passed, then lost a race with a concurrent request.
fn race_error(
    what: &str,
    job: &rewind_domain::restore_job::RestoreJob,
    request: &RestoreRequest,
) -> DomainError {
    match what {
        "target" => DomainError::ClusterRestoreInProgress {
            name: request
                .target
                .as_ref()
                .map(|target| target.cluster_name.to_string())
                .unwrap_or_default(),
        },
        "snapshot download" => DomainError::DownloadAlreadyActive {
            snapshot_id: job.snapshot_id.map(|id| id.to_string()).unwrap_or_default(),
        },
        _ => DomainError::TooManyDownloads {
            group_id: job.group_id.to_string(),
            limit: MAX_ACTIVE_DOWNLOADS_PER_GROUP,
        },
    }
}

/// `GET .../restoreJobs`: newest first.
pub async fn list(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((group_text, cluster_text)): Path<(String, String)>,
    uri: Uri,
) -> ApiResult {
    let query = ListQuery::parse(uri.query())?;
    let (group, cluster) = authorized_cluster(
        &app,
        &principal,
        &group_text,
        &cluster_text,
        ProjectAction::Read,
    )
    .await?;
    let (jobs, total) = app
        .store
        .list_restore_jobs(group.id, &cluster.name, query.page())
        .await?;
    let results = jobs
        .iter()
        .map(|job| views::restore_job(&app.links, job))
        .collect();
    Ok(list_response(&app, &uri, &query, results, total))
}

/// `GET .../restoreJobs/{restoreJobId}`.
pub async fn get_one(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((group_text, cluster_text, job_text)): Path<(String, String, String)>,
) -> ApiResult {
    // Fast path: one query finds the job, its cluster and its project together.
    if let (Ok(group_id), Ok(cluster_name), Ok(job_id)) = (
        group_text.parse(),
        rewind_domain::ClusterName::parse(&cluster_text),
        job_text.parse(),
    ) && let Some((job, org_id)) = app
        .store
        .get_restore_job_with_org(group_id, &cluster_name, job_id)
        .await?
    {
        principal.check_project(org_id, group_id, ProjectAction::Read)?;
        let body = app
            .rendered_jobs
            .render(&app.links, &job)
            .map_err(|error| ApiError::internal(&error))?;
        return Ok(json_bytes_response(StatusCode::OK, body));
    }
    // Slow path: find which of project, cluster or job is missing, in that order.
    let (_, cluster) = authorized_cluster(
        &app,
        &principal,
        &group_text,
        &cluster_text,
        ProjectAction::Read,
    )
    .await?;
    extract::restore_job_id(&job_text)?;
    Err(DomainError::RestoreJobNotFound {
        job_id: job_text,
        cluster: cluster.name.to_string(),
    }
    .into())
}

/// `DELETE .../restoreJobs/{restoreJobId}`: cancels a download job (204) and revokes its
/// link; automated and pointInTime jobs cannot be cancelled.
pub async fn cancel(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((group_text, cluster_text, job_text)): Path<(String, String, String)>,
) -> ApiResult {
    let (group, cluster) = authorized_cluster(
        &app,
        &principal,
        &group_text,
        &cluster_text,
        ProjectAction::ManageBackups,
    )
    .await?;
    let job_id = extract::restore_job_id(&job_text)?;
    let job = app
        .store
        .get_restore_job(group.id, &cluster.name, job_id)
        .await?
        .ok_or_else(|| DomainError::RestoreJobNotFound {
            job_id: job_text.clone(),
            cluster: cluster_text.clone(),
        })?;
    job.check_cancellable()?;
    let cancellable = [
        RestoreJobState::Queued,
        RestoreJobState::InProgress,
        RestoreJobState::Completed,
    ];
    let cancelled = app
        .store
        .transition_restore_job(
            job.id,
            &cancellable,
            RestoreJobState::Cancelled,
            Timestamp::now(),
        )
        .await?;
    if !cancelled {
        // The job ended between the read and the compare-and-set: report the state it reached.
        let current = app
            .store
            .get_restore_job(group.id, &cluster.name, job_id)
            .await?;
        let state = current.map_or("deleted", |job| job.state.as_str());
        return Err(DomainError::RestoreJobNotCancellable {
            job_id: job_text,
            state: state.to_owned(),
        }
        .into());
    }
    tracing::info!(restore_job.id = %job.id, "download restore job cancelled");
    Ok(no_content())
}
