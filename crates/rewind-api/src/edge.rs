//! The work every request gets, in one layer: its request id, its tracing span, the panic
//! guard, and its metrics.
//!
//! These were four tower layers and a `from_fn` middleware. Each layer added with
//! `Router::layer` wraps every route in another boxed, cloneable service, and a route clones
//! the whole stack below it on every call: most of a cached GET's allocations were those
//! clones. One hand-written layer with an unboxed future does the same work once.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};
use tracing::Span;

use crate::AppState;
use crate::error::ApiError;

/// The header that carries a request's id, taken from the request when the client sent one.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Adds [`Edge`] to every route.
#[derive(Clone)]
pub struct EdgeLayer {
    app: AppState,
}

impl EdgeLayer {
    /// The layer recording into `app`'s metrics and naming its replica in every span.
    pub fn new(app: AppState) -> Self {
        Self { app }
    }
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            inner,
            app: self.app.clone(),
        }
    }
}

/// Gives the request an id (echoed in the response's `x-request-id`) and a `request` span,
/// answers a panicking handler with a 500, and counts and times the request by route.
#[derive(Clone)]
pub struct Edge<S> {
    inner: S,
    app: AppState,
}

impl<S> Service<Request> for Edge<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EdgeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let request_id = match request.headers().get(&REQUEST_ID) {
            Some(id) => Some(id.clone()),
            None => new_request_id(),
        };
        let method = crate::metrics::static_method(request.method());
        // Routing ran before this layer: the template is known, and is a static label.
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .and_then(|path| crate::routes::static_template(path.as_str()))
            .unwrap_or("unmatched");
        let span = tracing::info_span!(
            "request",
            replica = %self.app.replica_id,
            method = %request.method(),
            path = %request.uri().path(),
            request_id = %request_id
                .as_ref()
                .and_then(|id| id.to_str().ok())
                .unwrap_or_default(),
            principal = tracing::field::Empty,
        );
        let called = {
            let _entered = span.enter();
            tracing::debug!(target: TARGET_ON_REQUEST, "started processing request");
            catch_unwind(AssertUnwindSafe(|| self.inner.call(request)))
        };
        EdgeFuture {
            state: match called {
                Ok(future) => State::Called(future),
                Err(_) => State::Panicked,
            },
            span,
            app: self.app.clone(),
            request_id,
            method,
            route,
            started,
        }
    }
}

/// A request id shaped like every other id rewind issues. Cheaper than a random UUID, which
/// costs a system call for randomness on every request.
fn new_request_id() -> Option<HeaderValue> {
    // The digits become the header's bytes as they are: one allocation.
    HeaderValue::try_from(rewind_domain::ObjectId::generate().to_string()).ok()
}

enum State<F> {
    Called(F),
    /// The handler panicked before returning its future.
    Panicked,
}

/// The response future of [`Edge`].
pub struct EdgeFuture<F> {
    state: State<F>,
    span: Span,
    app: AppState,
    request_id: Option<HeaderValue>,
    method: &'static str,
    route: &'static str,
    started: Instant,
}

impl<F> Future for EdgeFuture<F>
where
    F: Future<Output = Result<Response, Infallible>> + Unpin,
{
    type Output = Result<Response, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let _entered = this.span.enter();
        let outcome = match &mut this.state {
            State::Called(future) => {
                match catch_unwind(AssertUnwindSafe(|| Pin::new(future).poll(cx))) {
                    Ok(Poll::Pending) => return Poll::Pending,
                    Ok(Poll::Ready(Ok(response))) => Some(response),
                    Ok(Poll::Ready(Err(never))) => match never {},
                    Err(_) => None,
                }
            }
            State::Panicked => None,
        };
        let mut response = match outcome {
            Some(response) => {
                // A panicked request is not counted, as when metrics ran inside the panic
                // guard: there is no route response to count.
                this.app.metrics.record(
                    this.method,
                    this.route,
                    response.status(),
                    this.started.elapsed(),
                );
                response
            }
            None => ApiError::internal(&"a request handler panicked").into_response(),
        };
        // A response that names its own id keeps it.
        if let Some(id) = this.request_id.take()
            && !response.headers().contains_key(&REQUEST_ID)
        {
            response.headers_mut().insert(REQUEST_ID, id);
        }
        log_response(response.status(), this.started.elapsed());
        Poll::Ready(Ok(response))
    }
}

// The events tower-http's `TraceLayer` logged here before, under its targets, so that
// `RUST_LOG` filters written for them keep working.
const TARGET_ON_REQUEST: &str = "tower_http::trace::on_request";
const TARGET_ON_RESPONSE: &str = "tower_http::trace::on_response";
const TARGET_ON_FAILURE: &str = "tower_http::trace::on_failure";

/// `finished processing request` (debug), and `response failed` (error) for a 5xx.
fn log_response(status: StatusCode, latency: Duration) {
    let latency = Millis(latency);
    tracing::debug!(
        target: TARGET_ON_RESPONSE,
        %latency,
        status = i32::from(status.as_u16()),
        "finished processing request"
    );
    if status.is_server_error() {
        tracing::error!(
            target: TARGET_ON_FAILURE,
            classification = %format_args!("Status code: {status}"),
            %latency,
            "response failed"
        );
    }
}

/// A latency as the trace events write it: whole milliseconds.
struct Millis(Duration);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ms", self.0.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::{Body, to_bytes};
    use rewind_domain::ObjectId;
    use rewind_store::SqliteStore;
    use tower::ServiceExt;

    use super::*;
    use crate::AppContext;

    async fn app() -> AppState {
        let store = Arc::new(SqliteStore::in_memory().await.unwrap());
        AppContext::new(
            store,
            "http://127.0.0.1:8080",
            [7; 32],
            ObjectId::generate(),
            std::env::temp_dir(),
        )
    }

    async fn body_text(response: Response) -> String {
        let bytes = to_bytes(response.into_body(), 1 << 16).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_panic_is_a_500_that_keeps_the_request_id_and_leaks_nothing() {
        let layer = EdgeLayer::new(app().await);
        let panics_when_called = tower::service_fn(
            |_: Request| -> std::future::Ready<Result<Response, Infallible>> {
                panic!("secret detail")
            },
        );
        let panics_when_polled = tower::service_fn(|_: Request| {
            std::future::poll_fn(|_| -> Poll<Result<Response, Infallible>> {
                panic!("secret detail")
            })
        });
        let responses = [
            layer
                .layer(panics_when_called)
                .oneshot(Request::new(Body::empty()))
                .await,
            layer
                .layer(panics_when_polled)
                .oneshot(Request::new(Body::empty()))
                .await,
        ];
        for response in responses {
            let Ok(response) = response;
            assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(response.headers()[&REQUEST_ID].len(), 24);
            let text = body_text(response).await;
            assert!(text.contains("UNEXPECTED_ERROR"), "{text}");
            assert!(!text.contains("secret"), "{text}");
        }
    }

    #[tokio::test]
    async fn a_client_request_id_is_echoed() {
        let answers = tower::service_fn(|_: Request| {
            std::future::ready(Ok::<_, Infallible>(StatusCode::NO_CONTENT.into_response()))
        });
        let mut request = Request::new(Body::empty());
        request
            .headers_mut()
            .insert(REQUEST_ID, HeaderValue::from_static("client-chosen"));
        let Ok(response) = EdgeLayer::new(app().await)
            .layer(answers)
            .oneshot(request)
            .await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_eq!(response.headers()[&REQUEST_ID], "client-chosen");
    }
}
