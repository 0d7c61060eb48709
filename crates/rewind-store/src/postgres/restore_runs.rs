//! Restore jobs as work, in PostgreSQL: claims skip rows another replica is claiming.

use async_trait::async_trait;
use rewind_domain::restore_job::{RestoreJob, RestoreProgress};
use rewind_domain::{ObjectId, Timestamp};

use super::{PgStore, all, args, execute, numbered, one};
use crate::rows::{self, encode_strings, release_columns};
use crate::sql::{self, CLAIM_RESTORE_JOB, RESTORE_LEASE_REAP};
use crate::{Claimed, DownloadLink, Lease, Release, RestoreOutcome, StoreError};

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
            &numbered(sql::RENEW_RESTORE_LEASE),
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
            &numbered(sql::RELEASE_RESTORE_JOB),
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
            &numbered(sql::RECORD_RESTORE_PROGRESS),
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
            &numbered(sql::FINISH_RESTORE_JOB),
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
    ) -> Result<Option<DownloadLink>, StoreError> {
        let mut connection = self.connection().await?;
        let Some((job, completed_at)) = one(
            &mut connection,
            &numbered(sql::RESTORE_JOB_BY_DOWNLOAD_TOKEN),
            args![token_sha256],
            rows::restore_job_with_download,
        )
        .await?
        else {
            return Ok(None);
        };
        let downloaded_files = all(
            &mut connection,
            &numbered(sql::DOWNLOADED_FILES),
            args![job.id.to_string()],
            rows::downloaded_file,
        )
        .await?;
        Ok(Some(DownloadLink {
            job,
            completed_at,
            downloaded_files,
        }))
    }

    async fn mark_downloaded(
        &self,
        id: ObjectId,
        file: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.pool.begin().await?;
        // Two files of one job finishing at once: each would count only its own uncommitted
        // row and leave the job active. Holding the job's row makes the later one see both.
        let Some(files) = one(
            &mut transaction,
            &format!("{} FOR UPDATE", numbered(sql::DELIVERY_URLS)),
            args![id.to_string()],
            rows::delivery_file_count,
        )
        .await?
        else {
            return Ok(false);
        };
        let recorded = execute(
            &mut transaction,
            &numbered(sql::MARK_FILE_DOWNLOADED),
            args![id.to_string(), file, now.millis()],
        )
        .await?
            > 0;
        execute(
            &mut transaction,
            &numbered(sql::MARK_DOWNLOADED),
            args![id.to_string(), now.millis(), files],
        )
        .await?;
        transaction.commit().await?;
        Ok(recorded)
    }

    async fn expire_downloads(&self, now: Timestamp) -> Result<u64, StoreError> {
        Ok(execute(
            &mut *self.connection().await?,
            &numbered(sql::EXPIRE_DOWNLOADS),
            args![now.millis()],
        )
        .await?)
    }
}
