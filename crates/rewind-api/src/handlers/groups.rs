//! Organizations and projects.

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use rewind_domain::access::{Principal, ProjectAction};
use rewind_domain::fields::{BodyReader, invalid};
use rewind_domain::group::Group;
use rewind_domain::names::valid_display_name;
use rewind_domain::{DomainError, ObjectId, Timestamp};
use rewind_store::{Page, StoreError};

use super::{ApiResult, authorized_group, json_response, list_response, no_content, page_of};
use crate::AppState;
use crate::extract::{self, ListQuery};
use crate::views;

/// `GET /api/atlas/v2/orgs`: the caller's organization.
pub async fn list_orgs(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    uri: Uri,
) -> ApiResult {
    let query = ListQuery::parse(uri.query())?;
    let org = app.store.get_org(principal.org_id).await?;
    let all: Vec<_> = org
        .iter()
        .map(|org| views::organization(&app.links, org))
        .collect();
    let total = all.len() as u64;
    let page: Vec<_> = page_of(&all, &query).cloned().collect();
    Ok(list_response(&app, &uri, &query, page, total))
}

/// `GET /api/atlas/v2/orgs/{orgId}`.
pub async fn get_org(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(org_text): Path<String>,
) -> ApiResult {
    let org_id = extract::org_id(&org_text)?;
    let org = app
        .store
        .get_org(org_id)
        .await?
        .ok_or_else(|| DomainError::OrgNotFound {
            org_id: org_text.clone(),
        })?;
    principal.check_org_member(org.id)?;
    Ok(json_response(
        StatusCode::OK,
        &views::organization(&app.links, &org),
    ))
}

/// `GET /api/atlas/v2/groups`: projects of the caller's organization it can read.
pub async fn list_groups(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    uri: Uri,
) -> ApiResult {
    let query = ListQuery::parse(uri.query())?;
    let (groups, _) = app
        .store
        .list_groups(&[principal.org_id], Page::ALL)
        .await?;
    let visible: Vec<Group> = groups
        .into_iter()
        .filter(|group| {
            principal
                .check_project(group.org_id, group.id, ProjectAction::Read)
                .is_ok()
        })
        .collect();
    let total = visible.len() as u64;
    let mut results = Vec::new();
    for group in page_of(&visible, &query) {
        let (_, clusters) = app
            .store
            .list_clusters(
                group.id,
                Page {
                    offset: 0,
                    limit: 0,
                },
            )
            .await?;
        results.push(views::group(&app.links, group, clusters));
    }
    Ok(list_response(&app, &uri, &query, results, total))
}

/// `POST /api/atlas/v2/groups`: `{name, orgId?, withDefaultAlertsSettings?, ...}`.
pub async fn create_group(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: Body,
) -> ApiResult {
    let body = extract::json_body(body, false).await?;
    let reader = BodyReader::new(
        &body,
        &[
            "name",
            "orgId",
            "withDefaultAlertsSettings",
            "regionUsageRestrictions",
            "tags",
            "projectOwnerId",
        ],
        &["id", "created", "clusterCount", "links"],
    )?;
    let name = reader
        .string("name")?
        .ok_or_else(|| DomainError::MissingAttribute {
            field: "name".into(),
        })?;
    if !valid_display_name(name) {
        return Err(invalid(
            "name",
            "must be 1 to 64 letters, digits, spaces, dashes, underscores, dots or parentheses",
        )
        .into());
    }
    let org_id = match reader.string("orgId")? {
        Some(text) => text
            .parse::<ObjectId>()
            .map_err(|_| invalid("orgId", "must match ^([a-f0-9]{24})$"))?,
        None => principal.org_id,
    };
    reader.bool("withDefaultAlertsSettings")?;
    if app.store.get_org(org_id).await?.is_none() {
        return Err(DomainError::OrgNotFound {
            org_id: org_id.to_string(),
        }
        .into());
    }
    principal.check_group_creator(org_id)?;
    let group = Group {
        id: ObjectId::generate(),
        org_id,
        name: name.to_owned(),
        created_at: Timestamp::now(),
    };
    match app.store.create_group(&group).await {
        Ok(()) => {}
        Err(StoreError::AlreadyExists(_)) => {
            return Err(DomainError::GroupNameTaken {
                name: name.to_owned(),
            }
            .into());
        }
        Err(other) => return Err(other.into()),
    }
    tracing::info!(group.id = %group.id, "project created");
    Ok(json_response(
        StatusCode::OK,
        &views::group(&app.links, &group, 0),
    ))
}

/// `GET /api/atlas/v2/groups/{groupId}`.
pub async fn get_group(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(group_text): Path<String>,
) -> ApiResult {
    let group = authorized_group(&app, &principal, &group_text, ProjectAction::Read).await?;
    let (_, clusters) = app
        .store
        .list_clusters(
            group.id,
            Page {
                offset: 0,
                limit: 0,
            },
        )
        .await?;
    Ok(json_response(
        StatusCode::OK,
        &views::group(&app.links, &group, clusters),
    ))
}

/// `DELETE /api/atlas/v2/groups/{groupId}`: only a project without clusters.
pub async fn delete_group(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(group_text): Path<String>,
) -> ApiResult {
    let group = authorized_group(&app, &principal, &group_text, ProjectAction::Own).await?;
    match app.store.delete_group(group.id).await {
        Ok(_) => Ok(no_content()),
        Err(StoreError::Conflict(_)) => Err(DomainError::GroupHasClusters {
            group_id: group.id.to_string(),
        }
        .into()),
        Err(other) => Err(other.into()),
    }
}
