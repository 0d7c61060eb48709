//! Organization API keys (with project assignments) and service accounts.

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use rewind_domain::access::{GROUP_ROLES, ORG_ROLES, Principal, ProjectAction, validate_roles};
use rewind_domain::fields::{BodyReader, invalid, wrong_type};
use rewind_domain::{DomainError, ObjectId};
use rewind_store::{ApiKey, Page, ServiceAccount};
use serde_json::Value;

use super::{ApiResult, authorized_group, json_response, list_response, no_content, page_of};
use crate::AppState;
use crate::auth::secrets::{new_api_key, new_service_account};
use crate::error::ApiError;
use crate::extract::{self, ListQuery};
use crate::views;

/// Longest service account secret lifetime Atlas allows (one year).
const MAX_SECRET_HOURS: i32 = 8760;

/// Loads an organization the caller owns.
async fn owned_org(
    app: &AppState,
    principal: &Principal,
    org_text: &str,
) -> Result<ObjectId, ApiError> {
    let org_id = extract::org_id(org_text)?;
    app.store
        .get_org(org_id)
        .await?
        .ok_or_else(|| DomainError::OrgNotFound {
            org_id: org_text.to_owned(),
        })?;
    principal.check_org_owner(org_id)?;
    Ok(org_id)
}

fn string_list(reader: &BodyReader<'_>, field: &str) -> Result<Option<Vec<String>>, DomainError> {
    let Some(items) = reader.array(field)? else {
        return Ok(None);
    };
    items
        .iter()
        .map(|item| {
            item.as_str()
                .map(str::to_owned)
                .ok_or_else(|| wrong_type(field))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn description(
    reader: &BodyReader<'_>,
    field: &str,
    required: bool,
) -> Result<Option<String>, DomainError> {
    match reader.string(field)? {
        Some(text) if text.is_empty() || text.chars().count() > 250 => {
            Err(invalid(field, "must be 1 to 250 characters"))
        }
        Some(text) => Ok(Some(text.to_owned())),
        None if required => Err(DomainError::MissingAttribute {
            field: field.to_owned(),
        }),
        None => Ok(None),
    }
}

async fn api_key_of(app: &AppState, org_id: ObjectId, key_text: &str) -> Result<ApiKey, ApiError> {
    let missing = || DomainError::ResourceNotFound {
        resource: format!("API key {key_text}"),
    };
    let key_id: ObjectId = key_text.parse().map_err(|_| missing())?;
    let key = app.store.get_api_key(key_id).await?.ok_or_else(missing)?;
    if key.org_id != org_id {
        return Err(missing().into());
    }
    Ok(key)
}

/// `GET /orgs/{orgId}/apiKeys`.
pub async fn list_api_keys(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(org_text): Path<String>,
    uri: Uri,
) -> ApiResult {
    let query = ListQuery::parse(uri.query())?;
    let org_id = owned_org(&app, &principal, &org_text).await?;
    let (keys, total) = app.store.list_api_keys(org_id, query.page()).await?;
    let results = keys
        .iter()
        .map(|key| views::api_key(&app.links, key, None))
        .collect();
    Ok(list_response(&app, &uri, &query, results, total))
}

/// `POST /orgs/{orgId}/apiKeys`: `{desc, roles}`.
pub async fn create_api_key(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(org_text): Path<String>,
    body: Body,
) -> ApiResult {
    let org_id = owned_org(&app, &principal, &org_text).await?;
    let body = extract::json_body(body, false).await?;
    let reader = BodyReader::new(
        &body,
        &["desc", "roles"],
        &["id", "links", "privateKey", "publicKey"],
    )?;
    let desc = description(&reader, "desc", true)?.unwrap_or_default();
    let roles = string_list(&reader, "roles")?.ok_or_else(|| DomainError::MissingAttribute {
        field: "roles".into(),
    })?;
    if roles.is_empty() {
        return Err(invalid("roles", "must hold at least one role").into());
    }
    validate_roles("roles", &roles, ORG_ROLES)?;
    let (key, private_key) = new_api_key(org_id, desc, roles);
    app.store.create_api_key(&key).await?;
    tracing::info!(api_key.id = %key.id, "api key created");
    Ok(json_response(
        StatusCode::OK,
        &views::api_key(&app.links, &key, Some(&private_key)),
    ))
}

/// `GET /orgs/{orgId}/apiKeys/{apiUserId}`.
pub async fn get_api_key(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((org_text, key_text)): Path<(String, String)>,
) -> ApiResult {
    let org_id = owned_org(&app, &principal, &org_text).await?;
    let key = api_key_of(&app, org_id, &key_text).await?;
    Ok(json_response(
        StatusCode::OK,
        &views::api_key(&app.links, &key, None),
    ))
}

/// `PATCH /orgs/{orgId}/apiKeys/{apiUserId}`: `{desc?, roles?}`.
pub async fn update_api_key(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((org_text, key_text)): Path<(String, String)>,
    body: Body,
) -> ApiResult {
    let org_id = owned_org(&app, &principal, &org_text).await?;
    let body = extract::json_body(body, false).await?;
    let reader = BodyReader::new(
        &body,
        &["desc", "roles"],
        &["id", "links", "privateKey", "publicKey"],
    )?;
    let desc = description(&reader, "desc", false)?;
    let roles = string_list(&reader, "roles")?;
    if let Some(roles) = &roles {
        validate_roles("roles", roles, ORG_ROLES)?;
    }
    let mut key = api_key_of(&app, org_id, &key_text).await?;
    if let Some(desc) = desc {
        key.description = desc;
    }
    if let Some(roles) = roles {
        key.org_roles = roles;
    }
    app.store.update_api_key(&key).await?;
    Ok(json_response(
        StatusCode::OK,
        &views::api_key(&app.links, &key, None),
    ))
}

/// `DELETE /orgs/{orgId}/apiKeys/{apiUserId}`.
pub async fn delete_api_key(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((org_text, key_text)): Path<(String, String)>,
) -> ApiResult {
    let org_id = owned_org(&app, &principal, &org_text).await?;
    let key = api_key_of(&app, org_id, &key_text).await?;
    app.store.delete_api_key(key.id).await?;
    tracing::info!(api_key.id = %key.id, "api key deleted");
    Ok(no_content())
}

/// `GET /groups/{groupId}/apiKeys`: keys holding a role in the project.
pub async fn list_project_api_keys(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(group_text): Path<String>,
    uri: Uri,
) -> ApiResult {
    let query = ListQuery::parse(uri.query())?;
    let group = authorized_group(&app, &principal, &group_text, ProjectAction::Own).await?;
    let (keys, _) = app.store.list_api_keys(group.org_id, Page::ALL).await?;
    let assigned: Vec<&ApiKey> = keys
        .iter()
        .filter(|key| {
            key.group_roles
                .iter()
                .any(|(group_id, _)| *group_id == group.id)
        })
        .collect();
    let total = assigned.len() as u64;
    let results = page_of(&assigned, &query)
        .map(|key| views::api_key(&app.links, key, None))
        .collect();
    Ok(list_response(&app, &uri, &query, results, total))
}

/// Project roles from `[{"roleName": ...}]` or `{"roles": [...]}`.
fn project_roles(body: &Value) -> Result<Vec<String>, DomainError> {
    let roles: Vec<String> = match body {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let reader = BodyReader::new(item, &["roleName"], &[])?;
                reader
                    .string("roleName")?
                    .map(str::to_owned)
                    .ok_or_else(|| DomainError::MissingAttribute {
                        field: format!("[{index}].roleName"),
                    })
            })
            .collect::<Result<_, _>>()?,
        _ => {
            let reader = BodyReader::new(
                body,
                &["roles", "desc"],
                &["id", "links", "privateKey", "publicKey"],
            )?;
            string_list(&reader, "roles")?.ok_or_else(|| DomainError::MissingAttribute {
                field: "roles".into(),
            })?
        }
    };
    if roles.is_empty() {
        return Err(invalid("roles", "must hold at least one role"));
    }
    validate_roles("roles", &roles, GROUP_ROLES)?;
    Ok(roles)
}

async fn assign_project_roles(
    app: &AppState,
    principal: &Principal,
    group_text: &str,
    key_text: &str,
    body: Body,
) -> ApiResult {
    let group = authorized_group(app, principal, group_text, ProjectAction::Own).await?;
    let body = extract::json_body(body, false).await?;
    let roles = project_roles(&body)?;
    let mut key = api_key_of(app, group.org_id, key_text).await?;
    key.group_roles
        .retain(|(group_id, _)| *group_id != group.id);
    key.group_roles
        .extend(roles.into_iter().map(|role| (group.id, role)));
    app.store.update_api_key(&key).await?;
    Ok(json_response(
        StatusCode::OK,
        &views::api_key(&app.links, &key, None),
    ))
}

/// `POST /groups/{groupId}/apiKeys/{apiUserId}`: assigns the key to the project with roles.
pub async fn add_project_api_key(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((group_text, key_text)): Path<(String, String)>,
    body: Body,
) -> ApiResult {
    assign_project_roles(&app, &principal, &group_text, &key_text, body).await
}

/// `PATCH /groups/{groupId}/apiKeys/{apiUserId}`: replaces the key's roles in the project.
pub async fn update_project_api_key(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((group_text, key_text)): Path<(String, String)>,
    body: Body,
) -> ApiResult {
    assign_project_roles(&app, &principal, &group_text, &key_text, body).await
}

/// `DELETE /groups/{groupId}/apiKeys/{apiUserId}`: removes the key's roles in the project.
pub async fn remove_project_api_key(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((group_text, key_text)): Path<(String, String)>,
) -> ApiResult {
    let group = authorized_group(&app, &principal, &group_text, ProjectAction::Own).await?;
    let mut key = api_key_of(&app, group.org_id, &key_text).await?;
    key.group_roles
        .retain(|(group_id, _)| *group_id != group.id);
    app.store.update_api_key(&key).await?;
    Ok(no_content())
}

/// `POST /orgs/{orgId}/serviceAccounts`: `{name, description, roles, secretExpiresAfterHours}` (201).
pub async fn create_service_account(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(org_text): Path<String>,
    body: Body,
) -> ApiResult {
    let org_id = owned_org(&app, &principal, &org_text).await?;
    let body = extract::json_body(body, false).await?;
    let reader = BodyReader::new(
        &body,
        &["name", "description", "roles", "secretExpiresAfterHours"],
        &["clientId", "createdAt", "secrets"],
    )?;
    let name = reader
        .string("name")?
        .ok_or_else(|| DomainError::MissingAttribute {
            field: "name".into(),
        })?;
    if name.is_empty() || name.chars().count() > 64 {
        return Err(invalid("name", "must be 1 to 64 characters").into());
    }
    let description = description(&reader, "description", true)?.unwrap_or_default();
    let roles = string_list(&reader, "roles")?.ok_or_else(|| DomainError::MissingAttribute {
        field: "roles".into(),
    })?;
    if roles.is_empty() {
        return Err(invalid("roles", "must hold at least one role").into());
    }
    validate_roles("roles", &roles, ORG_ROLES)?;
    let hours = reader
        .int32_at_least("secretExpiresAfterHours", 8)?
        .ok_or_else(|| DomainError::MissingAttribute {
            field: "secretExpiresAfterHours".into(),
        })?;
    if hours > MAX_SECRET_HOURS {
        return Err(invalid("secretExpiresAfterHours", "must be at most 8760").into());
    }
    let (account, secret) = new_service_account(org_id, name.to_owned(), description, roles, hours);
    app.store.create_service_account(&account).await?;
    tracing::info!(service_account.client_id = %account.client_id, "service account created");
    Ok(json_response(
        StatusCode::CREATED,
        &views::service_account(&account, Some(&secret)),
    ))
}

async fn service_account_of(
    app: &AppState,
    org_id: ObjectId,
    client_id: &str,
) -> Result<ServiceAccount, ApiError> {
    let missing = || DomainError::ResourceNotFound {
        resource: format!("service account {client_id}"),
    };
    let account = app
        .store
        .get_service_account(client_id)
        .await?
        .ok_or_else(missing)?;
    if account.org_id != org_id {
        return Err(missing().into());
    }
    Ok(account)
}

/// `GET /orgs/{orgId}/serviceAccounts`.
pub async fn list_service_accounts(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(org_text): Path<String>,
    uri: Uri,
) -> ApiResult {
    let query = ListQuery::parse(uri.query())?;
    let org_id = owned_org(&app, &principal, &org_text).await?;
    let (accounts, total) = app
        .store
        .list_service_accounts(org_id, query.page())
        .await?;
    let results = accounts
        .iter()
        .map(|account| views::service_account(account, None))
        .collect();
    Ok(list_response(&app, &uri, &query, results, total))
}

/// `GET /orgs/{orgId}/serviceAccounts/{clientId}`.
pub async fn get_service_account(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((org_text, client_id)): Path<(String, String)>,
) -> ApiResult {
    let org_id = owned_org(&app, &principal, &org_text).await?;
    let account = service_account_of(&app, org_id, &client_id).await?;
    Ok(json_response(
        StatusCode::OK,
        &views::service_account(&account, None),
    ))
}

/// `DELETE /orgs/{orgId}/serviceAccounts/{clientId}`: its tokens stop working at once.
pub async fn delete_service_account(
    State(app): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((org_text, client_id)): Path<(String, String)>,
) -> ApiResult {
    let org_id = owned_org(&app, &principal, &org_text).await?;
    let account = service_account_of(&app, org_id, &client_id).await?;
    app.store.delete_service_account(&account.client_id).await?;
    tracing::info!(service_account.client_id = %account.client_id, "service account deleted");
    Ok(no_content())
}
