//! OAuth 2 client credentials for service accounts: `POST /api/oauth/token` and
//! `POST /api/oauth/revoke` (RFC 6749 §4.4, RFC 7009), with HTTP Basic client authentication.

use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use rewind_domain::Timestamp;
use rewind_store::{AccessToken, ServiceAccount};
use serde_json::json;

use super::secrets;
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{percent_decode, query_pairs};

/// Lifetime of an access token, as Atlas issues them.
pub const TOKEN_LIFETIME_SECONDS: i64 = 3600;

/// An OAuth error response (`{"error": ..., "error_description": ...}`).
fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    let mut response = (
        status,
        json!({"error": code, "error_description": description}).to_string(),
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"oauth\""),
        );
    }
    response
}

/// Authenticates the client from `Authorization: Basic base64(urlenc(id):urlenc(secret))`.
async fn authenticate_client(
    app: &AppState,
    headers: &HeaderMap,
) -> Result<ServiceAccount, Response> {
    let refused = || {
        oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed.",
        )
    };
    let encoded = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Basic ")
                .or_else(|| value.strip_prefix("basic "))
        })
        .ok_or_else(refused)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(refused)?;
    let (client_id, secret) = decoded.split_once(':').ok_or_else(refused)?;
    let (client_id, secret) = (percent_decode(client_id), percent_decode(secret));
    let account = app
        .store
        .get_service_account(&client_id)
        .await
        .map_err(|error| ApiError::from(error).into_response())?
        .ok_or_else(refused)?;
    let presented = secrets::sha256_hex(&secret);
    let now = Timestamp::now();
    let valid = account
        .secrets
        .iter()
        .filter(|stored| stored.expires_at > now)
        .fold(false, |found, stored| {
            secrets::digests_equal(&stored.secret_sha256, &presented) | found
        });
    if valid { Ok(account) } else { Err(refused()) }
}

async fn form(body: Body) -> Result<Vec<(String, String)>, Response> {
    let bytes = to_bytes(body, 64 * 1024).await.map_err(|_| {
        oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request body could not be read.",
        )
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request body is not UTF-8.",
        )
    })?;
    Ok(query_pairs(Some(text)))
}

/// `POST /api/oauth/token`: exchanges client credentials for a one-hour bearer token.
pub async fn token(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let account = match authenticate_client(&app, &headers).await {
        Ok(account) => account,
        Err(response) => return response,
    };
    let pairs = match form(body).await {
        Ok(pairs) => pairs,
        Err(response) => return response,
    };
    let grant = pairs
        .iter()
        .find(|(name, _)| name == "grant_type")
        .map(|(_, value)| value.as_str());
    if grant != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Only grant_type=client_credentials is supported.",
        );
    }
    let token = secrets::new_access_token();
    let stored = AccessToken {
        token_sha256: secrets::sha256_hex(&token),
        client_id: account.client_id,
        expires_at: Timestamp::now().plus_millis(TOKEN_LIFETIME_SECONDS * 1000),
    };
    if let Err(error) = app.store.create_access_token(&stored).await {
        return ApiError::from(error).into_response();
    }
    let mut response = (
        StatusCode::OK,
        json!({"access_token": token, "expires_in": TOKEN_LIFETIME_SECONDS, "token_type": "Bearer"}).to_string(),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

/// `POST /api/oauth/revoke`: revokes a token of the authenticated client; 200 whether or not
/// the token existed (RFC 7009 §2.2).
pub async fn revoke(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let account = match authenticate_client(&app, &headers).await {
        Ok(account) => account,
        Err(response) => return response,
    };
    let pairs = match form(body).await {
        Ok(pairs) => pairs,
        Err(response) => return response,
    };
    let Some(token) = pairs
        .iter()
        .find(|(name, _)| name == "token")
        .map(|(_, value)| value)
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The token parameter is required.",
        );
    };
    let hash = secrets::sha256_hex(token);
    match app.store.get_access_token(&hash).await {
        Ok(Some(stored)) if stored.client_id == account.client_id => {
            if let Err(error) = app.store.revoke_access_token(&hash).await {
                return ApiError::from(error).into_response();
            }
        }
        Ok(_) => {}
        Err(error) => return ApiError::from(error).into_response(),
    }
    StatusCode::OK.into_response()
}
