//! The HTTP edge's one error type and the table that maps every lower-layer error to Atlas's
//! `errorCode`, status and body.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rewind_domain::DomainError;
use rewind_store::StoreError;
use serde_json::{Value, json};

/// An error rendered as Atlas's `ApiError`: `{detail, error, errorCode, parameters, reason}`
/// with an `X-Error-Code` header and `Content-Type: application/json`.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Atlas error code.
    pub code: &'static str,
    /// Human-readable description.
    pub detail: String,
    /// Values substituted into `detail`.
    pub parameters: Vec<Value>,
    /// The request field at fault, reported in `badRequestDetail`.
    pub field: Option<String>,
    /// Extra headers (the Digest challenges on a 401).
    pub challenges: Vec<String>,
}

impl ApiError {
    /// A new error without parameters.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            parameters: Vec::new(),
            field: None,
            challenges: Vec::new(),
        }
    }

    /// Adds the values substituted into `detail`.
    pub fn with_parameters(mut self, parameters: Vec<Value>) -> Self {
        self.parameters = parameters;
        self
    }

    /// A 500 whose cause is logged here and never sent to the client.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNEXPECTED_ERROR",
            "Unexpected error.",
        )
    }

    /// 404 for a path that names no resource.
    pub fn resource_not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_FOUND",
            format!("Cannot find resource {path}."),
        )
        .with_parameters(vec![json!(path)])
    }

    /// 400 for a bad query parameter.
    pub fn invalid_query_parameter(name: &str, rule: &str) -> Self {
        let mut error = Self::new(
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY_PARAMETER",
            format!("Invalid query parameter {name}: {rule}."),
        )
        .with_parameters(vec![json!(name)]);
        error.field = Some(name.to_owned());
        error
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut body = json!({
            "detail": self.detail,
            "error": self.status.as_u16(),
            "errorCode": self.code,
            "parameters": self.parameters,
            "reason": self.status.canonical_reason().unwrap_or("Error"),
        });
        if let Some(field) = &self.field {
            body["badRequestDetail"] =
                json!({"fields": [{"field": field, "description": self.detail}]});
        }
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body().to_string();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Ok(code) = HeaderValue::from_str(self.code) {
            headers.insert("x-error-code", code);
        }
        for challenge in &self.challenges {
            if let Ok(value) = HeaderValue::from_str(challenge) {
                headers.append(header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        Self::internal(&error)
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        use DomainError as E;
        use StatusCode as S;
        let (status, code, parameters): (StatusCode, &'static str, Vec<Value>) = match &error {
            E::OrgNotFound { org_id } => (S::NOT_FOUND, "ORG_NOT_FOUND", vec![json!(org_id)]),
            E::GroupNotFound { group_id } => {
                (S::NOT_FOUND, "GROUP_NOT_FOUND", vec![json!(group_id)])
            }
            E::InvalidGroupId { value } => (S::NOT_FOUND, "INVALID_GROUP_ID", vec![json!(value)]),
            E::GroupNameTaken { name } => (S::CONFLICT, "GROUP_ALREADY_EXISTS", vec![json!(name)]),
            E::GroupHasClusters { group_id } => (
                S::CONFLICT,
                "CANNOT_CLOSE_GROUP_ACTIVE_ATLAS_CLUSTERS",
                vec![json!(group_id)],
            ),
            E::ClusterNotFound { name, group_id } => (
                S::NOT_FOUND,
                "CLUSTER_NOT_FOUND",
                vec![json!(name), json!(group_id)],
            ),
            E::ClusterNameTaken { name, group_id } => (
                S::BAD_REQUEST,
                "DUPLICATE_CLUSTER_NAME",
                vec![json!(name), json!(group_id)],
            ),
            E::NonFlexClusterInFlexApi { name } => (
                S::BAD_REQUEST,
                "CANNOT_USE_NON_FLEX_CLUSTER_IN_FLEX_API",
                vec![json!(name)],
            ),
            E::ClusterRestoreInProgress { name } => (
                S::BAD_REQUEST,
                "CLUSTER_RESTORE_IN_PROGRESS_CANNOT_UPDATE",
                vec![json!(name)],
            ),
            E::ClusterPaused { name } => (
                S::BAD_REQUEST,
                "CLUSTER_PAUSED_CANNOT_RESTORE",
                vec![json!(name)],
            ),
            E::BackupNotEnabled { name } => {
                (S::BAD_REQUEST, "BACKUP_JOB_NOT_FOUND", vec![json!(name)])
            }
            E::SnapshotNotFound {
                snapshot_id,
                cluster,
            } => (
                S::NOT_FOUND,
                "SNAPSHOT_NOT_FOUND",
                vec![json!(snapshot_id), json!(cluster)],
            ),
            E::InvalidSnapshotId { value } => {
                (S::NOT_FOUND, "INVALID_SNAPSHOT_ID", vec![json!(value)])
            }
            E::SnapshotIncomplete { snapshot_id } => (
                S::CONFLICT,
                "CANNOT_START_RESTORE_JOB_FOR_INCOMPLETE_CLUSTER_SNAPSHOT",
                vec![json!(snapshot_id)],
            ),
            E::DownloadOfIncompleteSnapshot { snapshot_id } => (
                S::CONFLICT,
                "CANNOT_DOWNLOAD_INCOMPLETE_SNAPSHOT",
                vec![json!(snapshot_id)],
            ),
            E::SnapshotDeleted { snapshot_id } => (
                S::CONFLICT,
                "CANNOT_START_RESTORE_JOB_FOR_DELETED_SNAPSHOT",
                vec![json!(snapshot_id)],
            ),
            E::SnapshotInProgressCannotDelete { snapshot_id } => (
                S::BAD_REQUEST,
                "CANNOT_DELETE_IN_PROGRESS_SNAPSHOT",
                vec![json!(snapshot_id)],
            ),
            E::SnapshotInProgressCannotModify { snapshot_id } => (
                S::BAD_REQUEST,
                "CANNOT_MODIFY_IN_PROGRESS_SNAPSHOT_RETENTION",
                vec![json!(snapshot_id)],
            ),
            E::UnfinishedOnDemandSnapshot {
                cluster,
                snapshot_id,
            } => (
                S::BAD_REQUEST,
                "UNFINISHED_ON_DEMAND_SNAPSHOT",
                vec![json!(cluster), json!(snapshot_id)],
            ),
            E::RestoreJobNotFound { job_id, cluster } => (
                S::NOT_FOUND,
                "RESTORE_JOB_NOT_FOUND",
                vec![json!(job_id), json!(cluster)],
            ),
            E::InvalidJobId { value } => (S::NOT_FOUND, "INVALID_JOB_ID", vec![json!(value)]),
            E::CannotCancelAutomatedRestore { job_id, .. } => (
                S::BAD_REQUEST,
                "CANNOT_CANCEL_AUTOMATED_RESTORE",
                vec![json!(job_id)],
            ),
            E::RestoreJobNotCancellable { job_id, state } => (
                S::BAD_REQUEST,
                "CANNOT_CANCEL_FINISHED_RESTORE_JOB",
                vec![json!(job_id), json!(state)],
            ),
            E::DownloadAlreadyActive { snapshot_id } => (
                S::BAD_REQUEST,
                "CANNOT_DOWNLOAD_SNAPSHOT_CONCURRENTLY",
                vec![json!(snapshot_id)],
            ),
            E::TooManyDownloads { group_id, limit } => (
                S::BAD_REQUEST,
                "TOO_MANY_SNAPSHOT_DOWNLOADS",
                vec![json!(group_id), json!(limit)],
            ),
            E::PitNotEnabled { cluster } => (
                S::BAD_REQUEST,
                "PIT_RESTORE_NOT_ENABLED",
                vec![json!(cluster)],
            ),
            E::InvalidPitRestoreTime { field, .. } => (
                S::BAD_REQUEST,
                "INVALID_PIT_RESTORE_TIME",
                vec![json!(field)],
            ),
            E::NoSnapshotBeforePit { requested } => (
                S::NOT_FOUND,
                "UNABLE_T0_FIND_SNAPSHOT_PRIOR_TO_PIT_RESTORE_OPTIME",
                vec![json!(requested)],
            ),
            E::MissingAttribute { field } => {
                (S::BAD_REQUEST, "MISSING_ATTRIBUTE", vec![json!(field)])
            }
            E::UnknownAttribute { field } => {
                (S::BAD_REQUEST, "INVALID_ATTRIBUTE", vec![json!(field)])
            }
            E::AttributeReadOnly { field } => {
                (S::BAD_REQUEST, "ATTRIBUTE_READ_ONLY", vec![json!(field)])
            }
            E::WrongJsonType { field } => {
                (S::BAD_REQUEST, "INVALID_JSON_ATTRIBUTE", vec![json!(field)])
            }
            E::MalformedJson { .. } => (S::BAD_REQUEST, "MALFORMED_JSON", vec![]),
            E::InvalidEnumValue { field, value } => (
                S::BAD_REQUEST,
                "INVALID_ENUM_VALUE",
                vec![json!(value), json!(field)],
            ),
            E::Validation { field, rule } => (
                S::BAD_REQUEST,
                "VALIDATION_ERROR",
                vec![json!(field), json!(rule)],
            ),
            E::Unauthorized => (S::UNAUTHORIZED, "USER_UNAUTHORIZED", vec![]),
            E::CannotRestoreToTarget { target_group_id } => (
                S::FORBIDDEN,
                "CANNOT_RESTORE_TO_TARGET",
                vec![json!(target_group_id)],
            ),
            E::ResourceNotFound { resource } => {
                (S::NOT_FOUND, "RESOURCE_NOT_FOUND", vec![json!(resource)])
            }
        };
        let detail = match &error {
            // The Display text of these carries the reason after a fixed sentence.
            E::MalformedJson { reason } => format!("Received JSON is malformed: {reason}."),
            other => other.to_string(),
        };
        let field = error.field().map(str::to_owned);
        let mut api_error = Self::new(status, code, detail).with_parameters(parameters);
        if status == StatusCode::BAD_REQUEST {
            api_error.field = field;
        }
        api_error
    }
}
