//! What every Atlas route runs before its handler: the `pretty`/`envelope` check, then
//! authentication. The rendering asked for applies to whatever answers, the handler or the
//! challenge.
//!
//! One layer rather than two `from_fn` middlewares: each layer wraps every route in another
//! boxed service that is cloned, with everything below it, on every call.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use crate::AppState;
use crate::render::Rendering;

/// Adds [`AtlasGuard`] to every route of a router.
#[derive(Clone)]
pub struct AtlasGuardLayer {
    app: AppState,
}

impl AtlasGuardLayer {
    /// The layer authenticating against `app`'s store.
    pub fn new(app: AppState) -> Self {
        Self { app }
    }
}

impl<S> Layer<S> for AtlasGuardLayer {
    type Service = AtlasGuard<S>;

    fn layer(&self, inner: S) -> AtlasGuard<S> {
        AtlasGuard {
            inner,
            app: self.app.clone(),
        }
    }
}

/// Checks `pretty`/`envelope` (400 before anything else), authenticates (the challenge
/// before any side effect), runs the route, then renders the response as asked.
#[derive(Clone)]
pub struct AtlasGuard<S> {
    inner: S,
    app: AppState,
}

impl<S> Service<Request> for AtlasGuard<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let rendering = match Rendering::of(request.uri().query()) {
            Ok(rendering) => rendering,
            Err(refused) => return Box::pin(std::future::ready(Ok(refused.into_response()))),
        };
        // The route is called after an await: take the service that is ready and leave a
        // clone for the next request.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let app = self.app.clone();
        Box::pin(async move {
            let response = match crate::auth::authenticate(&app, request).await {
                Ok(request) => match inner.call(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                },
                Err(refused) => refused,
            };
            Ok(rendering.apply(response).await)
        })
    }
}
