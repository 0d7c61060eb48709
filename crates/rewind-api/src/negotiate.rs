//! Dated media types: the request's `Accept` picks one of the operation's versions (else 406
//! `INVALID_VERSION_DATE`), and the response carries it back in `Content-Type`.

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::routes;

/// The version the request negotiated, available to handlers as an extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiVersion(pub &'static str);

impl ApiVersion {
    /// Whether this is the 2024-08-05 (or later) shape of a resource.
    pub fn is_2024_or_later(self) -> bool {
        self.0 >= "2024-01-01"
    }
}

/// Picks the first media range in `accept` naming a version the operation supports.
pub fn negotiate(accept: &str, supported: &'static [&'static str]) -> Option<&'static str> {
    accept.split(',').find_map(|range| {
        let media_type = range.split(';').next()?.trim().to_ascii_lowercase();
        let date = media_type
            .strip_prefix("application/vnd.atlas.")?
            .strip_suffix("+json")?;
        supported.iter().copied().find(|version| *version == date)
    })
}

/// Route middleware: rejects requests without an acceptable version and labels successes.
pub async fn negotiate_version(mut request: Request, next: Next) -> Response {
    let template = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_default();
    let Some(operation) = routes::find(request.method().as_str(), &template) else {
        // Every routed operation must be in the table, or it would skip negotiation and be
        // missing from our OpenAPI document: fail loudly rather than serve it unversioned.
        return ApiError::internal(&format_args!(
            "{} {template} is routed but not in the operation table",
            request.method()
        ))
        .into_response();
    };
    if operation.versions.is_empty() {
        return next.run(request).await;
    }
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let Some(version) = negotiate(accept, operation.versions) else {
        return ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "INVALID_VERSION_DATE",
            "Invalid accept header or version date.",
        )
        .into_response();
    };
    request.extensions_mut().insert(ApiVersion(version));
    let mut response = next.run(request).await;
    if response.status().is_success() {
        let content_type = format!("application/vnd.atlas.{version}+json;charset=utf-8");
        if let Ok(value) = HeaderValue::from_str(&content_type) {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_a_supported_dated_media_type() {
        let supported: &'static [&'static str] = &["2023-01-01", "2024-08-05"];
        assert_eq!(
            negotiate("application/vnd.atlas.2023-01-01+json", supported),
            Some("2023-01-01")
        );
        assert_eq!(
            negotiate(
                "application/json, application/vnd.atlas.2024-08-05+json;charset=utf-8",
                supported
            ),
            Some("2024-08-05")
        );
        assert_eq!(
            negotiate("application/vnd.atlas.2024-11-13+json", supported),
            None
        );
        assert_eq!(negotiate("application/json", supported), None);
        assert_eq!(negotiate("*/*", supported), None);
        assert_eq!(negotiate("", supported), None);
    }
}
