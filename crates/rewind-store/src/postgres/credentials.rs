//! API keys, service accounts and bearer tokens in PostgreSQL.

use async_trait::async_trait;
use rewind_domain::{ObjectId, Timestamp};

use super::{PgStore, all, args, count, execute, limit, offset, one};
use crate::rows::{self, encode_group_roles, encode_secrets, encode_strings};
use crate::{AccessToken, ApiKey, BearerGrant, Page, ServiceAccount, StoreError};

#[async_trait]
impl crate::CredentialStore for PgStore {
    async fn create_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        execute(
            &mut *self.connection().await?,
            "INSERT INTO api_keys (id, org_id, public_key, description, ha1_md5, ha1_sha256, private_key_suffix, org_roles, group_roles, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            args![
                key.id.to_string(),
                key.org_id.to_string(),
                key.public_key.as_str(),
                key.description.as_str(),
                key.ha1_md5.as_str(),
                key.ha1_sha256.as_str(),
                key.private_key_suffix.as_str(),
                encode_strings(&key.org_roles),
                encode_group_roles(&key.group_roles),
                key.created_at.millis(),
            ],
        )
        .await
        .map_err(|error| StoreError::from_pg_insert(error, "api key"))?;
        Ok(())
    }

    async fn get_api_key_by_public_key(
        &self,
        public_key: &str,
    ) -> Result<Option<ApiKey>, StoreError> {
        one(
            &mut *self.connection().await?,
            "SELECT * FROM api_keys WHERE public_key = $1",
            args![public_key],
            rows::api_key,
        )
        .await
    }

    async fn get_api_key(&self, id: ObjectId) -> Result<Option<ApiKey>, StoreError> {
        one(
            &mut *self.connection().await?,
            "SELECT * FROM api_keys WHERE id = $1",
            args![id.to_string()],
            rows::api_key,
        )
        .await
    }

    async fn list_api_keys(
        &self,
        org_id: ObjectId,
        page: Page,
    ) -> Result<(Vec<ApiKey>, u64), StoreError> {
        let mut connection = self.connection().await?;
        let items = all(
            &mut connection,
            "SELECT * FROM api_keys WHERE org_id = $1 ORDER BY created_at, id LIMIT $2 OFFSET $3",
            args![org_id.to_string(), limit(page), offset(page)],
            rows::api_key,
        )
        .await?;
        let total = count(
            &mut connection,
            "SELECT COUNT(*) FROM api_keys WHERE org_id = $1",
            args![org_id.to_string()],
        )
        .await?;
        Ok((items, total))
    }

    async fn update_api_key(&self, key: &ApiKey) -> Result<bool, StoreError> {
        let changed = execute(
            &mut *self.connection().await?,
            "UPDATE api_keys SET description = $2, org_roles = $3, group_roles = $4 WHERE id = $1",
            args![
                key.id.to_string(),
                key.description.as_str(),
                encode_strings(&key.org_roles),
                encode_group_roles(&key.group_roles)
            ],
        )
        .await?;
        Ok(changed > 0)
    }

    async fn delete_api_key(&self, id: ObjectId) -> Result<bool, StoreError> {
        Ok(execute(
            &mut *self.connection().await?,
            "DELETE FROM api_keys WHERE id = $1",
            args![id.to_string()],
        )
        .await?
            > 0)
    }

    async fn create_service_account(&self, account: &ServiceAccount) -> Result<(), StoreError> {
        execute(
            &mut *self.connection().await?,
            "INSERT INTO service_accounts (client_id, org_id, name, description, org_roles, group_roles, secrets, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            args![
                account.client_id.as_str(),
                account.org_id.to_string(),
                account.name.as_str(),
                account.description.as_str(),
                encode_strings(&account.org_roles),
                encode_group_roles(&account.group_roles),
                encode_secrets(&account.secrets),
                account.created_at.millis(),
            ],
        )
        .await
        .map_err(|error| StoreError::from_pg_insert(error, "service account"))?;
        Ok(())
    }

    async fn get_service_account(
        &self,
        client_id: &str,
    ) -> Result<Option<ServiceAccount>, StoreError> {
        one(
            &mut *self.connection().await?,
            "SELECT * FROM service_accounts WHERE client_id = $1",
            args![client_id],
            rows::service_account,
        )
        .await
    }

    async fn list_service_accounts(
        &self,
        org_id: ObjectId,
        page: Page,
    ) -> Result<(Vec<ServiceAccount>, u64), StoreError> {
        let mut connection = self.connection().await?;
        let items = all(
            &mut connection,
            "SELECT * FROM service_accounts WHERE org_id = $1 ORDER BY created_at, client_id LIMIT $2 OFFSET $3",
            args![org_id.to_string(), limit(page), offset(page)],
            rows::service_account,
        )
        .await?;
        let total = count(
            &mut connection,
            "SELECT COUNT(*) FROM service_accounts WHERE org_id = $1",
            args![org_id.to_string()],
        )
        .await?;
        Ok((items, total))
    }

    async fn delete_service_account(&self, client_id: &str) -> Result<bool, StoreError> {
        let mut transaction = self.pool.begin().await?;
        execute(
            &mut transaction,
            "DELETE FROM access_tokens WHERE client_id = $1",
            args![client_id],
        )
        .await?;
        let deleted = execute(
            &mut transaction,
            "DELETE FROM service_accounts WHERE client_id = $1",
            args![client_id],
        )
        .await?;
        transaction.commit().await?;
        Ok(deleted > 0)
    }

    async fn create_access_token(&self, token: &AccessToken) -> Result<(), StoreError> {
        execute(
            &mut *self.connection().await?,
            "INSERT INTO access_tokens (token_sha256, client_id, expires_at) VALUES ($1, $2, $3)",
            args![
                token.token_sha256.as_str(),
                token.client_id.as_str(),
                token.expires_at.millis()
            ],
        )
        .await?;
        Ok(())
    }

    async fn get_access_token(
        &self,
        token_sha256: &str,
    ) -> Result<Option<AccessToken>, StoreError> {
        one(
            &mut *self.connection().await?,
            "SELECT * FROM access_tokens WHERE token_sha256 = $1",
            args![token_sha256],
            rows::access_token,
        )
        .await
    }

    async fn get_bearer_grant(
        &self,
        token_sha256: &str,
    ) -> Result<Option<BearerGrant>, StoreError> {
        one(
            &mut *self.connection().await?,
            "SELECT a.client_id, a.org_id, a.org_roles, a.group_roles, t.expires_at FROM access_tokens t JOIN service_accounts a ON a.client_id = t.client_id WHERE t.token_sha256 = $1",
            args![token_sha256],
            rows::bearer_grant,
        )
        .await
    }

    async fn shared_secret(&self, name: &str, candidate: &str) -> Result<String, StoreError> {
        let mut connection = self.connection().await?;
        execute(&mut connection, "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", args![name, candidate]).await?;
        let stored = one(
            &mut connection,
            "SELECT value FROM server_secrets WHERE name = $1",
            args![name],
            |row| row.text_at(0),
        )
        .await?;
        stored.ok_or_else(|| StoreError::Corrupt(format!("shared secret {name} vanished")))
    }

    async fn delete_expired_access_tokens(&self, now: Timestamp) -> Result<u64, StoreError> {
        Ok(execute(
            &mut *self.connection().await?,
            "DELETE FROM access_tokens WHERE expires_at < $1",
            args![now.millis()],
        )
        .await?)
    }

    async fn revoke_access_token(&self, token_sha256: &str) -> Result<bool, StoreError> {
        Ok(execute(
            &mut *self.connection().await?,
            "DELETE FROM access_tokens WHERE token_sha256 = $1",
            args![token_sha256],
        )
        .await?
            > 0)
    }
}
