//! Request handlers, one module per resource family, and the loading helpers they share.

pub mod access;
pub mod clusters;
pub mod downloads;
pub mod flex;
pub mod groups;
pub mod ops;
pub mod restore_jobs;
pub mod schedule;
pub mod snapshots;

use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rewind_domain::access::{Principal, ProjectAction};
use rewind_domain::cluster::Cluster;
use rewind_domain::group::Group;
use rewind_domain::{DomainError, ObjectId};
use serde::Serialize;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{self, ListQuery};
use crate::views::{Link, Links};

/// Handler result.
pub type ApiResult = Result<Response, ApiError>;

/// Room for a typical resource's JSON, so that serializing one does not grow its buffer
/// several times over.
const JSON_CAPACITY: usize = 2048;

/// A JSON response; the version middleware replaces the content type with the dated one.
pub fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let mut bytes = Vec::with_capacity(JSON_CAPACITY);
    if let Err(error) = serde_json::to_writer(&mut bytes, body) {
        return ApiError::internal(&error).into_response();
    }
    let mut response = (status, bytes).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A JSON response from an already rendered body.
pub fn json_bytes_response(status: StatusCode, body: axum::body::Bytes) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A 204 with no body.
pub fn no_content() -> Response {
    no_content_with(StatusCode::NO_CONTENT)
}

/// An empty response with `status` (202 for an accepted deletion).
pub fn no_content_with(status: StatusCode) -> Response {
    status.into_response()
}

/// A 200 with a paginated list of `results` out of `total`, linked under the request's path.
pub fn list_response<T: Serialize>(
    app: &AppState,
    uri: &Uri,
    query: &ListQuery,
    results: Vec<T>,
    total: u64,
) -> Response {
    json_response(
        StatusCode::OK,
        &list_body(&app.links, uri.path(), query, results, total),
    )
}

/// One page of a listing that was filtered in memory.
pub fn page_of<'a, T>(
    items: &'a [T],
    query: &ListQuery,
) -> impl Iterator<Item = &'a T> + use<'a, T> {
    let offset = usize::try_from(query.page().offset).unwrap_or(usize::MAX);
    let limit = usize::try_from(query.items_per_page).unwrap_or(usize::MAX);
    items.iter().skip(offset).take(limit)
}

/// A paginated list body (`Paginated*View`): `links` (`self`, and `next`/`previous` when
/// they exist), `results` and, unless `includeCount=false`, `totalCount`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListBody<T> {
    links: Vec<Link>,
    results: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_count: Option<u64>,
}

fn list_body<T>(
    links: &Links,
    path: &str,
    query: &ListQuery,
    results: Vec<T>,
    total: u64,
) -> ListBody<T> {
    let link = |page: u64, rel: &'static str| {
        let path = format!(
            "{path}?includeCount={}&pageNum={page}&itemsPerPage={}",
            query.include_count, query.items_per_page
        );
        Link::new(links.url(&path), rel)
    };
    let mut list_links = vec![link(query.page_num, "self")];
    let shown_so_far = (query.page_num - 1) * query.items_per_page + results.len() as u64;
    if shown_so_far < total {
        list_links.push(link(query.page_num + 1, "next"));
    }
    if query.page_num > 1 {
        list_links.push(link(query.page_num - 1, "previous"));
    }
    ListBody {
        links: list_links,
        results,
        total_count: query.include_count.then_some(total),
    }
}

/// Loads a project the caller may perform `action` in.
pub async fn authorized_group(
    app: &AppState,
    principal: &Principal,
    group_text: &str,
    action: ProjectAction,
) -> Result<Group, ApiError> {
    let group_id = extract::group_id(group_text)?;
    let group = app
        .store
        .get_group(group_id)
        .await?
        .ok_or_else(|| DomainError::GroupNotFound {
            group_id: group_id.to_string(),
        })?;
    principal.check_project(group.org_id, group.id, action)?;
    Ok(group)
}

/// Loads a project the caller may perform `action` in, and one of its clusters.
pub async fn authorized_cluster(
    app: &AppState,
    principal: &Principal,
    group_text: &str,
    cluster_text: &str,
    action: ProjectAction,
) -> Result<(Group, Cluster), ApiError> {
    let group = authorized_group(app, principal, group_text, action).await?;
    let cluster = cluster_of(app, group.id, cluster_text).await?;
    Ok((group, cluster))
}

/// Loads a cluster of a project.
pub async fn cluster_of(
    app: &AppState,
    group_id: ObjectId,
    name_text: &str,
) -> Result<Cluster, ApiError> {
    let name = extract::cluster_name(name_text, group_id)?;
    app.store
        .get_cluster(group_id, &name)
        .await?
        .ok_or_else(|| {
            DomainError::ClusterNotFound {
                name: name_text.to_owned(),
                group_id: group_id.to_string(),
            }
            .into()
        })
}
