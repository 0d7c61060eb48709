//! The HTTP edge of rewind: the MongoDB Atlas Admin API v2 subset for cloud backups, served
//! exactly as Atlas serves it (paths, dated media types, error bodies, Digest and OAuth 2).
//!
//! Layers, outermost first: the edge (request id, tracing span, panic capture, metrics), the
//! Atlas guard (`pretty` and `envelope` rendering, authentication), then per-route version
//! negotiation.

pub mod auth;
pub mod edge;
pub mod error;
pub mod extract;
pub mod guard;
mod handlers;

pub use handlers::downloads::{download_stem, packaged_file};
pub mod metrics;
pub mod negotiate;
pub mod openapi;
pub mod render;
pub mod rendered;
pub mod routes;
pub mod server;
pub mod views;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use rewind_domain::ObjectId;
use rewind_store::{MetadataStore, StoreError};

use crate::auth::digest::{NonceCounter, NonceIssuer};
use crate::error::ApiError;
use crate::views::Links;

/// How long a Digest nonce stays fresh.
pub const NONCE_TTL: Duration = Duration::from_secs(300);

/// Everything a request handler needs.
pub struct AppContext {
    /// The metadata store.
    pub store: Arc<dyn MetadataStore>,
    /// Absolute links under the public base URL.
    pub links: Links,
    /// Mints and checks Digest nonces.
    pub nonces: NonceIssuer,
    /// Refuses replayed Digest nonce counts.
    pub nonce_counts: NonceCounter,
    /// Prometheus metrics.
    pub metrics: metrics::Metrics,
    /// This process's id among the replicas sharing a store, in logs and metrics.
    pub replica_id: ObjectId,
    /// Where the restore worker packages download restores.
    pub downloads: PathBuf,
    /// Restore jobs' JSON as last rendered.
    pub rendered_jobs: rendered::RenderedJobs,
}

/// Shared handler state.
pub type AppState = Arc<AppContext>;

impl AppContext {
    /// A context over `store`, linking to `public_url`, with the given Digest nonce secret.
    pub fn new(
        store: Arc<dyn MetadataStore>,
        public_url: &str,
        nonce_secret: [u8; 32],
        replica_id: ObjectId,
        downloads: PathBuf,
    ) -> AppState {
        Arc::new(Self {
            store,
            links: Links::new(public_url),
            nonces: NonceIssuer::new(nonce_secret, NONCE_TTL),
            nonce_counts: NonceCounter::new(NONCE_TTL),
            metrics: metrics::Metrics::new(replica_id),
            replica_id,
            downloads,
            rendered_jobs: rendered::RenderedJobs::default(),
        })
    }

    /// A context whose Digest nonce secret is the one every replica of `store` shares, so a
    /// nonce one replica issued is accepted by the others behind a load balancer.
    pub async fn shared(
        store: Arc<dyn MetadataStore>,
        public_url: &str,
        replica_id: ObjectId,
        downloads: PathBuf,
    ) -> Result<AppState, StoreError> {
        let candidate = hex::encode(rand::random::<[u8; 32]>());
        let shared = store.shared_secret("digest-nonce-hmac", &candidate).await?;
        let mut secret = [0u8; 32];
        hex::decode_to_slice(&shared, &mut secret)
            .map_err(|_| StoreError::Corrupt("digest-nonce-hmac".into()))?;
        Ok(Self::new(store, public_url, secret, replica_id, downloads))
    }
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    use routes::service;
    let atlas = atlas_routes()
        .route_layer(negotiate::NegotiateLayer)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(guard::AtlasGuardLayer::new(state.clone()));
    Router::new()
        .route(service::OPENAPI, get(handlers::ops::openapi_document))
        .route(service::OAUTH_TOKEN, post(auth::oauth::token))
        .route(service::OAUTH_REVOKE, post(auth::oauth::revoke))
        .route(service::DOWNLOAD, get(handlers::downloads::download))
        .route(service::METRICS, get(metrics::exposition))
        .route(service::HEALTHZ, get(handlers::ops::healthz))
        .route(service::READYZ, get(handlers::ops::readyz))
        .merge(atlas)
        .fallback(not_found)
        .layer(edge::EdgeLayer::new(state.clone()))
        .with_state(state)
}

fn atlas_routes() -> Router<AppState> {
    use handlers::{access, clusters, flex, groups, restore_jobs, schedule, snapshots};
    const B: &str = "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}/backup";
    let routes: Vec<(&str, MethodRouter<AppState>)> = vec![
        ("/api/atlas/v2/orgs", get(groups::list_orgs)),
        ("/api/atlas/v2/orgs/{orgId}", get(groups::get_org)),
        (
            "/api/atlas/v2/orgs/{orgId}/apiKeys",
            get(access::list_api_keys).post(access::create_api_key),
        ),
        (
            "/api/atlas/v2/orgs/{orgId}/apiKeys/{apiUserId}",
            get(access::get_api_key)
                .patch(access::update_api_key)
                .delete(access::delete_api_key),
        ),
        (
            "/api/atlas/v2/orgs/{orgId}/serviceAccounts",
            get(access::list_service_accounts).post(access::create_service_account),
        ),
        (
            "/api/atlas/v2/orgs/{orgId}/serviceAccounts/{clientId}",
            get(access::get_service_account).delete(access::delete_service_account),
        ),
        (
            "/api/atlas/v2/groups",
            get(groups::list_groups).post(groups::create_group),
        ),
        (
            "/api/atlas/v2/groups/{groupId}",
            get(groups::get_group).delete(groups::delete_group),
        ),
        (
            "/api/atlas/v2/groups/{groupId}/apiKeys",
            get(access::list_project_api_keys),
        ),
        (
            "/api/atlas/v2/groups/{groupId}/apiKeys/{apiUserId}",
            post(access::add_project_api_key)
                .patch(access::update_project_api_key)
                .delete(access::remove_project_api_key),
        ),
        (
            "/api/atlas/v2/groups/{groupId}/clusters",
            get(clusters::list).post(clusters::create),
        ),
        (
            "/api/atlas/v2/groups/{groupId}/clusters/{clusterName}",
            get(clusters::get_one)
                .patch(clusters::update)
                .delete(clusters::delete),
        ),
        (
            "/api/atlas/v2/groups/{groupId}/flexClusters/{name}/{*rest}",
            get(flex::refuse).post(flex::refuse),
        ),
    ];
    let backup: Vec<(&str, MethodRouter<AppState>)> = vec![
        (
            "/restoreJobs",
            get(restore_jobs::list).post(restore_jobs::create),
        ),
        (
            "/restoreJobs/{restoreJobId}",
            get(restore_jobs::get_one).delete(restore_jobs::cancel),
        ),
        ("/snapshots", get(snapshots::list).post(snapshots::take)),
        (
            "/snapshots/{snapshotId}",
            get(snapshots::get_one)
                .patch(snapshots::update)
                .delete(snapshots::delete),
        ),
        ("/snapshots/shardedClusters", get(snapshots::list_sharded)),
        (
            "/snapshots/shardedCluster/{snapshotId}",
            get(snapshots::get_sharded).delete(snapshots::delete_sharded),
        ),
        (
            "/schedule",
            get(schedule::get_one)
                .patch(schedule::update)
                .delete(schedule::clear),
        ),
    ];
    let mut router = Router::new();
    for (path, handler) in routes {
        router = router.route(path, handler);
    }
    for (suffix, handler) in backup {
        router = router.route(&format!("{B}{suffix}"), handler);
    }
    router
}

async fn not_found(request: Request) -> Response {
    ApiError::resource_not_found(request.uri().path()).into_response()
}

async fn method_not_allowed(request: Request) -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!(
            "Method {} is not allowed on {}.",
            request.method(),
            request.uri().path()
        ),
    )
    .into_response()
}
