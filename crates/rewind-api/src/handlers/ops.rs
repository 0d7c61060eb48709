//! Operational endpoints: health, readiness and our OpenAPI document.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::json_response;
use crate::AppState;
use crate::openapi;

/// `GET /healthz`: the process is serving.
pub async fn healthz() -> Response {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

/// `GET /readyz`: the metadata store answers.
pub async fn readyz(State(app): State<AppState>) -> Response {
    match app.store.state_counts().await {
        Ok(_) => json_response(StatusCode::OK, &json!({"status": "ready"})),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"status": "unavailable"}),
            )
        }
    }
}

/// `GET /api/atlas/v2/openapi.json`: the operations rewind serves.
pub async fn openapi_document() -> Response {
    json_response(StatusCode::OK, &openapi::document())
}
