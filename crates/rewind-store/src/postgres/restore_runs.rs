//! Restore jobs as work, in PostgreSQL: claims skip rows another replica is claiming.

use async_trait::async_trait;
use rewind_domain::restore_job::{RestoreJob, RestoreProgress};
use rewind_domain::{ObjectId, Timestamp};

use super::{PgStore, args, execute, one};
use crate::rows::{self, CLAIM_RESTORE_JOB, RESTORE_LEASE_REAP, encode_strings, release_columns};
use crate::{Claimed, Lease, Release, RestoreOutcome, StoreError};

/// SQLite's `?N` placeholders as PostgreSQL's `$N`.
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

#[async_trait]
impl crate::RestoreRunStore for PgStore {
    async fn claim_queued_restore_job(
        &self,
        replica: &str,
        lease: &Lease,
        now: Timestamp,
    ) -> Result<Option<Claimed<RestoreJob>>, StoreError> {
        one(
            &mut *self.connection().await?,
            &numbered(&CLAIM_RESTORE_JOB.replace("{SKIP_LOCKED}", "FOR UPDATE SKIP LOCKED")),
            args![
                lease.owner.as_str(),
                lease.until.millis(),
                now.millis(),
                replica
            ],
            rows::claimed_restore_job,
        )
        .await
    }

    async fn renew_restore_lease(&self, id: ObjectId, lease: &Lease) -> Result<bool, StoreError> {
        let changed = execute(
            &mut *self.connection().await?,
            "UPDATE restore_jobs SET lease_expires_at = $3 WHERE id = $1 AND state = 'inProgress' AND lease_owner = $2",
            args![id.to_string(), lease.owner.as_str(), lease.until.millis()],
        )
        .await?;
        Ok(changed > 0)
    }

    async fn release_restore_job(
        &self,
        id: ObjectId,
        owner: &str,
        release: Release<'_>,
    ) -> Result<bool, StoreError> {
        let (refund, retry_at, error) = release_columns(release);
        let changed = execute(
            &mut *self.connection().await?,
            "UPDATE restore_jobs SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL, attempts = attempts - $3, retry_at = $4, last_error = COALESCE($5, last_error) WHERE id = $1 AND state = 'inProgress' AND lease_owner = $2",
            args![id.to_string(), owner, refund, retry_at, error],
        )
        .await?;
        Ok(changed > 0)
    }

    async fn record_restore_progress(
        &self,
        id: ObjectId,
        owner: &str,
        progress: &RestoreProgress,
    ) -> Result<bool, StoreError> {
        let changed = execute(
            &mut *self.connection().await?,
            "UPDATE restore_jobs SET progress = $3 WHERE id = $1 AND state = 'inProgress' AND lease_owner = $2",
            args![id.to_string(), owner, rows::encode_progress(progress)],
        )
        .await?;
        Ok(changed > 0)
    }

    async fn finish_restore_job(
        &self,
        id: ObjectId,
        owner: &str,
        outcome: &RestoreOutcome,
    ) -> Result<bool, StoreError> {
        let changed = execute(
            &mut *self.connection().await?,
            "UPDATE restore_jobs SET state = $3, updated_at = $4, finished_at = $4, failure_reason = $5, delivery_urls = $6, expires_at = $7, download_token_sha256 = $8, progress = COALESCE($9, progress), lease_owner = NULL, lease_expires_at = NULL WHERE id = $1 AND state = 'inProgress' AND lease_owner = $2",
            args![
                id.to_string(),
                owner,
                outcome.state.as_str(),
                outcome.finished_at.millis(),
                outcome.failure_reason.clone(),
                encode_strings(&outcome.delivery_urls),
                outcome.expires_at.map(Timestamp::millis),
                outcome.download_token_sha256.clone(),
                outcome.progress.as_ref().map(rows::encode_progress),
            ],
        )
        .await?;
        Ok(changed > 0)
    }

    async fn reap_restore_leases(
        &self,
        now: Timestamp,
        max_attempts: u32,
    ) -> Result<u64, StoreError> {
        Ok(execute(
            &mut *self.connection().await?,
            &numbered(RESTORE_LEASE_REAP),
            args![now.millis(), i64::from(max_attempts)],
        )
        .await?)
    }

    async fn restore_job_by_download_token(
        &self,
        token_sha256: &str,
    ) -> Result<Option<(RestoreJob, Option<Timestamp>)>, StoreError> {
        one(
            &mut *self.connection().await?,
            "SELECT * FROM restore_jobs WHERE download_token_sha256 = $1",
            args![token_sha256],
            rows::restore_job_with_download,
        )
        .await
    }

    async fn mark_downloaded(&self, id: ObjectId, now: Timestamp) -> Result<bool, StoreError> {
        let changed = execute(
            &mut *self.connection().await?,
            "UPDATE restore_jobs SET downloaded_at = $2 WHERE id = $1 AND downloaded_at IS NULL",
            args![id.to_string(), now.millis()],
        )
        .await?;
        Ok(changed > 0)
    }

    async fn expire_downloads(&self, now: Timestamp) -> Result<u64, StoreError> {
        Ok(execute(
            &mut *self.connection().await?,
            "UPDATE restore_jobs SET state = 'expired', updated_at = $1 WHERE delivery_type = 'download' AND state = 'completed' AND expires_at <= $1",
            args![now.millis()],
        )
        .await?)
    }
}
