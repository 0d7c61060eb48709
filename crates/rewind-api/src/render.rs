//! `pretty=true` and `envelope=true`: applied once, after the handler, to any JSON body.

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extract::{parse_bool, query_pairs};

/// Responses larger than this are passed through untouched (none of ours come close).
const MAX_RENDERED_BYTES: usize = 64 * 1024 * 1024;

/// Middleware: validates `pretty`/`envelope` and rewrites the JSON body they ask for.
pub async fn render(request: Request, next: Next) -> Response {
    let mut pretty = false;
    let mut envelope = false;
    for (name, value) in query_pairs(request.uri().query()) {
        let target = match name.as_str() {
            "pretty" => &mut pretty,
            "envelope" => &mut envelope,
            _ => continue,
        };
        match parse_bool(&value) {
            Some(flag) => *target = flag,
            None => {
                return ApiError::invalid_query_parameter(&name, "must be true or false")
                    .into_response();
            }
        }
    }
    let response = next.run(request).await;
    if !pretty && !envelope {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("json"));
    if !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_RENDERED_BYTES).await else {
        return ApiError::internal(&"response body could not be buffered").into_response();
    };
    let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    if envelope {
        let status = parts.status.as_u16();
        value = match value {
            Value::Object(mut object) if object.contains_key("results") => {
                object.insert("status".into(), json!(status));
                Value::Object(object)
            }
            other => json!({"content": other, "status": status}),
        };
    }
    let text = if pretty {
        serde_json::to_string_pretty(&value)
    } else {
        serde_json::to_string(&value)
    };
    let text = text.unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(text))
}
