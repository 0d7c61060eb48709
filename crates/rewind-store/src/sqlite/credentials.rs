//! API keys, service accounts and bearer tokens in SQLite.

use async_trait::async_trait;
use rusqlite::params;

use super::*;
use crate::rows::{self, encode_group_roles, encode_secrets};
use crate::{AccessToken, ApiKey, BearerGrant, ServiceAccount};

#[async_trait]
impl crate::CredentialStore for SqliteStore {
    async fn create_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let key = key.clone();
        self.write(move |connection| {
            execute(connection,
                    "INSERT INTO api_keys (id, org_id, public_key, description, ha1_md5, ha1_sha256, private_key_suffix, org_roles, group_roles, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        key.id.to_string(),
                        key.org_id.to_string(),
                        key.public_key,
                        key.description,
                        key.ha1_md5,
                        key.ha1_sha256,
                        key.private_key_suffix,
                        encode_strings(&key.org_roles),
                        encode_group_roles(&key.group_roles),
                        key.created_at.millis(),
                    ],
                )
                .map_err(|error| StoreError::from_insert(error, "api key"))?;
            Ok(())
        })
        .await
    }

    async fn get_api_key_by_public_key(
        &self,
        public_key: &str,
    ) -> Result<Option<ApiKey>, StoreError> {
        let key = public_key.to_owned();
        self.hot
            .api_keys
            .get_or_read(&self.hot.generations, key, || {
                self.read(|connection| {
                    one(
                        connection,
                        "SELECT * FROM api_keys WHERE public_key = ?1",
                        [public_key],
                        rows::api_key,
                    )
                })
            })
    }

    async fn get_api_key(&self, id: ObjectId) -> Result<Option<ApiKey>, StoreError> {
        self.read(|connection| {
            one(
                connection,
                "SELECT * FROM api_keys WHERE id = ?1",
                [id.to_string()],
                rows::api_key,
            )
        })
    }

    async fn list_api_keys(
        &self,
        org_id: ObjectId,
        page: Page,
    ) -> Result<(Vec<ApiKey>, u64), StoreError> {
        self.read(|connection| {
            let items = all(
                connection,
                "SELECT * FROM api_keys WHERE org_id = ?1 ORDER BY created_at, id LIMIT ?2 OFFSET ?3",
                params![org_id.to_string(), limit(page), offset(page)],
                rows::api_key,
            )?;
            Ok((items, count(connection, "SELECT COUNT(*) FROM api_keys WHERE org_id = ?1", [org_id.to_string()])?))
        })
    }

    async fn update_api_key(&self, key: &ApiKey) -> Result<bool, StoreError> {
        let key = key.clone();
        self.write(move |connection| {
            let updated = execute(connection,
                "UPDATE api_keys SET description = ?2, org_roles = ?3, group_roles = ?4 WHERE id = ?1",
                params![key.id.to_string(), key.description, encode_strings(&key.org_roles), encode_group_roles(&key.group_roles)],
            )?;
            Ok(updated > 0)
        })
        .await
    }

    async fn delete_api_key(&self, id: ObjectId) -> Result<bool, StoreError> {
        self.write(move |connection| {
            Ok(execute(
                connection,
                "DELETE FROM api_keys WHERE id = ?1",
                [id.to_string()],
            )? > 0)
        })
        .await
    }

    async fn create_service_account(&self, account: &ServiceAccount) -> Result<(), StoreError> {
        let account = account.clone();
        self.write(move |connection| {
            execute(connection,
                    "INSERT INTO service_accounts (client_id, org_id, name, description, org_roles, group_roles, secrets, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        account.client_id,
                        account.org_id.to_string(),
                        account.name,
                        account.description,
                        encode_strings(&account.org_roles),
                        encode_group_roles(&account.group_roles),
                        encode_secrets(&account.secrets),
                        account.created_at.millis(),
                    ],
                )
                .map_err(|error| StoreError::from_insert(error, "service account"))?;
            Ok(())
        })
        .await
    }

    async fn get_service_account(
        &self,
        client_id: &str,
    ) -> Result<Option<ServiceAccount>, StoreError> {
        self.read(|connection| {
            one(
                connection,
                "SELECT * FROM service_accounts WHERE client_id = ?1",
                [client_id],
                rows::service_account,
            )
        })
    }

    async fn list_service_accounts(
        &self,
        org_id: ObjectId,
        page: Page,
    ) -> Result<(Vec<ServiceAccount>, u64), StoreError> {
        self.read(|connection| {
            let items = all(
                connection,
                "SELECT * FROM service_accounts WHERE org_id = ?1 ORDER BY created_at, client_id LIMIT ?2 OFFSET ?3",
                params![org_id.to_string(), limit(page), offset(page)],
                rows::service_account,
            )?;
            Ok((items, count(connection, "SELECT COUNT(*) FROM service_accounts WHERE org_id = ?1", [org_id.to_string()])?))
        })
    }

    async fn delete_service_account(&self, client_id: &str) -> Result<bool, StoreError> {
        let client_id = client_id.to_owned();
        self.write(move |connection| {
            execute(
                connection,
                "DELETE FROM access_tokens WHERE client_id = ?1",
                [&client_id],
            )?;
            let deleted = execute(
                connection,
                "DELETE FROM service_accounts WHERE client_id = ?1",
                [&client_id],
            )?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn create_access_token(&self, token: &AccessToken) -> Result<(), StoreError> {
        let token = token.clone();
        self.write(move |connection| {
            execute(connection,
                "INSERT INTO access_tokens (token_sha256, client_id, expires_at) VALUES (?1, ?2, ?3)",
                params![token.token_sha256, token.client_id, token.expires_at.millis()],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_access_token(
        &self,
        token_sha256: &str,
    ) -> Result<Option<AccessToken>, StoreError> {
        self.read(|connection| {
            one(
                connection,
                "SELECT * FROM access_tokens WHERE token_sha256 = ?1",
                [token_sha256],
                rows::access_token,
            )
        })
    }

    async fn get_bearer_grant(
        &self,
        token_sha256: &str,
    ) -> Result<Option<BearerGrant>, StoreError> {
        let key = token_sha256.to_owned();
        self.hot
            .bearer_grants
            .get_or_read(&self.hot.generations, key, || {
                self.read(|connection| {
                    one(
                        connection,
                        "SELECT a.client_id, a.org_id, a.org_roles, a.group_roles, t.expires_at FROM access_tokens t JOIN service_accounts a ON a.client_id = t.client_id WHERE t.token_sha256 = ?1",
                        [token_sha256],
                        rows::bearer_grant,
                    )
                })
            })
    }

    async fn shared_secret(&self, name: &str, candidate: &str) -> Result<String, StoreError> {
        let (name, candidate) = (name.to_owned(), candidate.to_owned());
        self.write(move |connection| {
            execute(connection, "INSERT INTO server_secrets (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING", params![name, candidate])?;
            Ok(connection.prepare_cached("SELECT value FROM server_secrets WHERE name = ?1")?.query_row([&name], |row| row.get(0))?)
        })
        .await
    }

    async fn delete_expired_access_tokens(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.write(move |connection| {
            Ok(execute(
                connection,
                "DELETE FROM access_tokens WHERE expires_at < ?1",
                [now.millis()],
            )? as u64)
        })
        .await
    }

    async fn revoke_access_token(&self, token_sha256: &str) -> Result<bool, StoreError> {
        let token_sha256 = token_sha256.to_owned();
        self.write(move |connection| {
            Ok(execute(
                connection,
                "DELETE FROM access_tokens WHERE token_sha256 = ?1",
                [token_sha256],
            )? > 0)
        })
        .await
    }
}
