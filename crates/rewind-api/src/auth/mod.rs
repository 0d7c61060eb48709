//! Authentication (HTTP Digest with API keys, bearer tokens from service accounts) and the
//! check that answers unauthenticated requests with a challenge before any side effect.

pub mod digest;
pub mod oauth;
pub mod secrets;

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rewind_domain::Timestamp;
use rewind_domain::access::Principal;

use crate::AppState;
use crate::error::ApiError;
use digest::{DigestError, StoredDigestSecret};

/// Seconds since the epoch, for nonce arithmetic.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Why a request carries no usable credentials.
enum Refusal {
    /// Ask again with a Digest challenge (`stale` when only the nonce was old).
    Challenge { stale: bool, why: String },
    /// The store failed.
    Internal(ApiError),
}

/// Authenticates `request` and stores its [`Principal`] as an extension; a refused request
/// gets its challenge (or error) as the error, to send as it is. The body is not read unless
/// the request is refused, so a refused request has no side effect whatever it carries.
pub async fn authenticate(app: &AppState, request: Request) -> Result<Request, Response> {
    // The head is `Sync` where the whole request is not (its body): it can be borrowed across
    // the awaits below instead of copying the header, method and target out of it.
    let (mut head, body) = request.into_parts();
    let authorization = head
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let request_uri = head
        .uri
        .path_and_query()
        .map_or_else(|| head.uri.path(), |target| target.as_str());
    let principal = match identify(app, authorization, head.method.as_str(), request_uri).await {
        Ok(principal) => principal,
        Err(Refusal::Internal(error)) => return Err(error.into_response()),
        Err(Refusal::Challenge { stale, why }) => {
            tracing::info!(reason = %why, "authentication refused");
            // Digest clients send the body with their first, unauthenticated request and
            // retry on the same connection: read the body (and drop it, unused) so the
            // connection stays usable, or close it when the body is too large to drain.
            let drained = axum::body::to_bytes(body, crate::extract::MAX_BODY_BYTES).await;
            let mut response = challenge(app, stale).into_response();
            if drained.is_err() {
                response.headers_mut().insert(
                    header::CONNECTION,
                    axum::http::HeaderValue::from_static("close"),
                );
            }
            return Err(response);
        }
    };
    tracing::Span::current().record("principal", principal.name.as_str());
    head.extensions.insert(principal);
    Ok(Request::from_parts(head, body))
}

/// The 401 Atlas sends: Digest challenges and its fixed body.
fn challenge(app: &AppState, stale: bool) -> ApiError {
    let nonce = app.nonces.mint(unix_now());
    let mut error = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "UNEXPECTED_ERROR",
        "You are not authorized for this resource.",
    );
    error.challenges = digest::challenges(&nonce, stale);
    error
}

async fn identify(
    app: &AppState,
    authorization: Option<&str>,
    method: &str,
    request_uri: &str,
) -> Result<Principal, Refusal> {
    let header_value = authorization.ok_or_else(|| Refusal::Challenge {
        stale: false,
        why: "no credentials".into(),
    })?;
    let (scheme, _) = header_value.split_once(' ').unwrap_or((header_value, ""));
    if scheme.eq_ignore_ascii_case("bearer") {
        let token = header_value[scheme.len()..].trim();
        return bearer_principal(app, token).await;
    }
    if !scheme.eq_ignore_ascii_case("digest") {
        return Err(Refusal::Challenge {
            stale: false,
            why: format!("unsupported scheme {scheme}"),
        });
    }
    let credentials =
        digest::parse_authorization(header_value).map_err(|error| Refusal::Challenge {
            stale: false,
            why: error.to_string(),
        })?;
    let key = app
        .store
        .get_api_key_by_public_key(&credentials.username)
        .await
        .map_err(|error| Refusal::Internal(error.into()))?
        .ok_or_else(|| Refusal::Challenge {
            stale: false,
            why: "unknown public key".into(),
        })?;
    let secret = StoredDigestSecret {
        ha1_md5: key.ha1_md5.clone(),
        ha1_sha256: key.ha1_sha256.clone(),
    };
    digest::verify(
        &credentials,
        method,
        request_uri,
        &secret,
        &app.nonces,
        &app.nonce_counts,
        unix_now(),
    )
    .map_err(|error| Refusal::Challenge {
        stale: error == DigestError::StaleNonce,
        why: error.to_string(),
    })?;
    Ok(Principal {
        name: key.public_key,
        org_id: key.org_id,
        org_roles: key.org_roles,
        group_roles: key.group_roles,
    })
}

async fn bearer_principal(app: &AppState, token: &str) -> Result<Principal, Refusal> {
    let refuse = |why: &str| Refusal::Challenge {
        stale: false,
        why: why.to_owned(),
    };
    let grant = app
        .store
        .get_bearer_grant(&secrets::sha256_hex(token))
        .await
        .map_err(|error| Refusal::Internal(error.into()))?
        .ok_or_else(|| refuse("unknown bearer token"))?;
    if grant.expires_at <= Timestamp::now() {
        return Err(refuse("expired bearer token"));
    }
    Ok(Principal {
        name: grant.client_id,
        org_id: grant.org_id,
        org_roles: grant.org_roles,
        group_roles: grant.group_roles,
    })
}
