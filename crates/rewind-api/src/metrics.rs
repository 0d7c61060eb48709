//! Prometheus metrics: requests by route and status, latency by route, jobs by state.

use std::sync::Mutex;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::AppState;
use crate::error::ApiError;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    kind: String,
    state: String,
}

/// The service's metric registry.
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    jobs: Family<StateLabels, Gauge>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReplicaLabels {
    replica: String,
}

impl Metrics {
    /// The registry of replica `replica_id`, which `rewind_replica_info` names.
    pub fn new(replica_id: rewind_domain::ObjectId) -> Self {
        let mut registry = Registry::with_prefix("rewind");
        let replica = Family::<ReplicaLabels, Gauge>::default();
        replica
            .get_or_create(&ReplicaLabels {
                replica: replica_id.to_string(),
            })
            .set(1);
        registry.register(
            "replica_info",
            "The id of this replica among those sharing a store",
            replica,
        );
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let jobs = Family::<StateLabels, Gauge>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route and method",
            latency.clone(),
        );
        registry.register("jobs", "Restore jobs and snapshots by state", jobs.clone());
        Self {
            registry: Mutex::new(registry),
            requests,
            latency,
            jobs,
        }
    }

    /// Counts one answered request and observes its latency, by its static labels (recording
    /// allocates nothing).
    pub(crate) fn record(
        &self,
        method: &'static str,
        route: &'static str,
        status: StatusCode,
        latency: Duration,
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status: status.as_u16(),
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { method, route })
            .observe(latency.as_secs_f64());
    }
}

/// The method as a label; methods we route none of share one.
pub(crate) fn static_method(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// `GET /metrics`: the Prometheus text exposition.
pub async fn exposition(State(app): State<AppState>) -> Response {
    let counts = match app.store.state_counts().await {
        Ok(counts) => counts,
        Err(error) => return ApiError::from(error).into_response(),
    };
    for (kind, state, count) in counts {
        app.metrics
            .jobs
            .get_or_create(&StateLabels { kind, state })
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }
    let mut text = String::new();
    let encoded = match app.metrics.registry.lock() {
        Ok(registry) => prometheus_client::encoding::text::encode(&mut text, &registry),
        Err(_) => return ApiError::internal(&"metrics registry lock poisoned").into_response(),
    };
    if let Err(error) = encoded {
        return ApiError::internal(&error).into_response();
    }
    let mut response = (StatusCode::OK, text).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
