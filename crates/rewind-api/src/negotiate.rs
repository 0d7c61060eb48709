//! Dated media types: the request's `Accept` picks one of the operation's versions (else 406
//! `INVALID_VERSION_DATE`), and the response carries it back in `Content-Type`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

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
    const PREFIX: &str = "application/vnd.atlas.";
    const SUFFIX: &str = "+json";
    accept.split(',').find_map(|range| {
        let media_type = range.split(';').next()?.trim();
        // Media types compare case-insensitively; the date in between is digits and dashes.
        let date = media_type.get(PREFIX.len()..media_type.len().checked_sub(SUFFIX.len())?)?;
        let prefix_matches = media_type
            .get(..PREFIX.len())
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case(PREFIX));
        let suffix_matches = media_type
            .get(media_type.len() - SUFFIX.len()..)
            .is_some_and(|suffix| suffix.eq_ignore_ascii_case(SUFFIX));
        if !(prefix_matches && suffix_matches) {
            return None;
        }
        supported.iter().copied().find(|version| *version == date)
    })
}

/// Adds [`Negotiate`] to every routed operation (a route layer: fallbacks have no versions).
#[derive(Clone, Copy, Debug, Default)]
pub struct NegotiateLayer;

impl<S> Layer<S> for NegotiateLayer {
    type Service = Negotiate<S>;

    fn layer(&self, inner: S) -> Negotiate<S> {
        Negotiate { inner }
    }
}

/// Rejects requests without an acceptable version, hands the version to the handler as an
/// [`ApiVersion`] extension and labels successes with its dated media type.
#[derive(Clone, Debug)]
pub struct Negotiate<S> {
    inner: S,
}

impl<S> Service<Request> for Negotiate<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = Infallible;
    type Future = NegotiateFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let template = request
            .extensions()
            .get::<MatchedPath>()
            .map_or("", MatchedPath::as_str);
        let Some(operation) = routes::find(request.method().as_str(), template) else {
            // Every routed operation must be in the table, or it would skip negotiation and be
            // missing from our OpenAPI document: fail loudly rather than serve it unversioned.
            return NegotiateFuture::Answered(std::future::ready(Ok(ApiError::internal(
                &format_args!(
                    "{} {template} is routed but not in the operation table",
                    request.method()
                ),
            )
            .into_response())));
        };
        if operation.versions.is_empty() {
            return NegotiateFuture::Called {
                future: self.inner.call(request),
                version: None,
            };
        }
        let accept = request
            .headers()
            .get(header::ACCEPT)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let Some(version) = negotiate(accept, operation.versions) else {
            return NegotiateFuture::Answered(std::future::ready(Ok(ApiError::new(
                StatusCode::NOT_ACCEPTABLE,
                "INVALID_VERSION_DATE",
                "Invalid accept header or version date.",
            )
            .into_response())));
        };
        request.extensions_mut().insert(ApiVersion(version));
        NegotiateFuture::Called {
            future: self.inner.call(request),
            version: Some(version),
        }
    }
}

/// The response future of [`Negotiate`].
pub enum NegotiateFuture<F> {
    /// Refused before the handler ran.
    Answered(std::future::Ready<Result<Response, Infallible>>),
    /// The handler's response, to label with `version` when it succeeds.
    Called {
        /// The handler's future.
        future: F,
        /// The negotiated version, if the operation has versions.
        version: Option<&'static str>,
    },
}

impl<F> Future for NegotiateFuture<F>
where
    F: Future<Output = Result<Response, Infallible>> + Unpin,
{
    type Output = Result<Response, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut *self {
            Self::Answered(answer) => Pin::new(answer).poll(cx),
            Self::Called { future, version } => {
                let Ok(mut response) = ready!(Pin::new(future).poll(cx));
                if let Some(version) = version
                    && response.status().is_success()
                {
                    response
                        .headers_mut()
                        .insert(header::CONTENT_TYPE, content_type(version));
                }
                Poll::Ready(Ok(response))
            }
        }
    }
}

/// The dated JSON media type of `version`, as Atlas writes it.
fn content_type(version: &'static str) -> HeaderValue {
    // The versions of the operation table, spelled out so the common case builds no string.
    let known = match version {
        "2023-01-01" => "application/vnd.atlas.2023-01-01+json;charset=utf-8",
        "2023-02-01" => "application/vnd.atlas.2023-02-01+json;charset=utf-8",
        "2024-08-01" => "application/vnd.atlas.2024-08-01+json;charset=utf-8",
        "2024-08-05" => "application/vnd.atlas.2024-08-05+json;charset=utf-8",
        "2024-10-23" => "application/vnd.atlas.2024-10-23+json;charset=utf-8",
        other => {
            return HeaderValue::from_str(&format!(
                "application/vnd.atlas.{other}+json;charset=utf-8"
            ))
            .unwrap_or_else(|_| HeaderValue::from_static("application/json;charset=utf-8"));
        }
    };
    HeaderValue::from_static(known)
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
        assert_eq!(
            negotiate("Application/VND.Atlas.2023-01-01+JSON", supported),
            Some("2023-01-01"),
            "media types compare case-insensitively"
        );
        assert_eq!(negotiate("application/vnd.atlas.+json", supported), None);
        assert_eq!(negotiate("application/vnd.atlas+json", supported), None);
    }

    #[test]
    fn every_version_gets_its_dated_content_type() {
        for version in routes::OPERATIONS
            .iter()
            .flat_map(|operation| operation.versions.iter().copied())
            .chain(["2099-01-01"])
        {
            assert_eq!(
                content_type(version),
                format!("application/vnd.atlas.{version}+json;charset=utf-8").as_str()
            );
        }
    }
}
