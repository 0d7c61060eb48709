//! `/flexClusters/{name}/backup/...`: rewind hosts dedicated clusters only. The Atlas CLI asks
//! the flex API first and falls back to the cluster API on exactly these error codes.

use axum::Extension;
use axum::extract::{Path, State};
use rewind_domain::DomainError;
use rewind_domain::access::{Principal, ProjectAction};

use super::{ApiResult, authorized_cluster};
use crate::AppState;

/// Answers 400 `CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API` for an existing cluster and 404
/// `CLUSTER_NOT_FOUND` otherwise.
pub async fn refuse(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((group_text, name, _rest)): Path<(String, String, String)>,
) -> ApiResult {
    let (_, cluster) =
        authorized_cluster(&app, &principal, &group_text, &name, ProjectAction::Read).await?;
    Err(DomainError::NonFlexClusterInFlexApi {
        name: cluster.name.to_string(),
    }
    .into())
}
