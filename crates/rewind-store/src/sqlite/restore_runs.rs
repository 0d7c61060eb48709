//! Restore jobs as work, in SQLite: the single writer makes every claim and end atomic.

use async_trait::async_trait;
use rewind_domain::restore_job::RestoreProgress;
use rusqlite::params;

use super::*;
use crate::rows::{self, release_columns};
use crate::sql::{self, CLAIM_RESTORE_JOB, RESTORE_LEASE_REAP};
use crate::{Claimed, DownloadLink, Lease, Release, RestoreOutcome};

#[async_trait]
impl crate::RestoreRunStore for SqliteStore {
    async fn claim_queued_restore_job(
        &self,
        replica: &str,
        lease: &Lease,
        now: Timestamp,
    ) -> Result<Option<Claimed<RestoreJob>>, StoreError> {
        let (replica, lease) = (replica.to_owned(), lease.clone());
        self.write(move |connection| {
            one(
                connection,
                &CLAIM_RESTORE_JOB.replace("{SKIP_LOCKED}", ""),
                params![lease.owner, lease.until.millis(), now.millis(), replica],
                rows::claimed_restore_job,
            )
        })
        .await
    }

    async fn renew_restore_lease(&self, id: ObjectId, lease: &Lease) -> Result<bool, StoreError> {
        let lease = lease.clone();
        self.write(move |connection| {
            Ok(execute(
                connection,
                sql::RENEW_RESTORE_LEASE,
                params![id.to_string(), lease.owner, lease.until.millis()],
            )? > 0)
        })
        .await
    }

    async fn release_restore_job(
        &self,
        id: ObjectId,
        owner: &str,
        release: Release<'_>,
    ) -> Result<bool, StoreError> {
        let (refund, retry_at, error) = release_columns(release);
        let owner = owner.to_owned();
        self.write(move |connection| {
            Ok(execute(
                connection,
                sql::RELEASE_RESTORE_JOB,
                params![id.to_string(), owner, refund, retry_at, error],
            )? > 0)
        })
        .await
    }

    async fn record_restore_progress(
        &self,
        id: ObjectId,
        owner: &str,
        progress: &RestoreProgress,
    ) -> Result<bool, StoreError> {
        let (owner, progress) = (owner.to_owned(), rows::encode_progress(progress));
        self.write(move |connection| {
            Ok(execute(
                connection,
                sql::RECORD_RESTORE_PROGRESS,
                params![id.to_string(), owner, progress],
            )? > 0)
        })
        .await
    }

    async fn finish_restore_job(
        &self,
        id: ObjectId,
        owner: &str,
        outcome: &RestoreOutcome,
    ) -> Result<bool, StoreError> {
        let (owner, outcome) = (owner.to_owned(), outcome.clone());
        self.write(move |connection| {
            Ok(execute(
                connection,
                sql::FINISH_RESTORE_JOB,
                params![
                    id.to_string(),
                    owner,
                    outcome.state.as_str(),
                    outcome.finished_at.millis(),
                    outcome.failure_reason,
                    encode_strings(&outcome.delivery_urls),
                    outcome.expires_at.map(Timestamp::millis),
                    outcome.download_token_sha256,
                    outcome.progress.as_ref().map(rows::encode_progress),
                ],
            )? > 0)
        })
        .await
    }

    async fn reap_restore_leases(
        &self,
        now: Timestamp,
        max_attempts: u32,
    ) -> Result<u64, StoreError> {
        self.write(move |connection| {
            Ok(execute(
                connection,
                RESTORE_LEASE_REAP,
                params![now.millis(), i64::from(max_attempts)],
            )? as u64)
        })
        .await
    }

    async fn restore_job_by_download_token(
        &self,
        token_sha256: &str,
    ) -> Result<Option<DownloadLink>, StoreError> {
        self.read(|connection| {
            let Some((job, completed_at)) = one(
                connection,
                sql::RESTORE_JOB_BY_DOWNLOAD_TOKEN,
                [token_sha256],
                rows::restore_job_with_download,
            )?
            else {
                return Ok(None);
            };
            let downloaded_files = all(
                connection,
                sql::DOWNLOADED_FILES,
                [job.id.to_string()],
                rows::downloaded_file,
            )?;
            Ok(Some(DownloadLink {
                job,
                completed_at,
                downloaded_files,
            }))
        })
    }

    async fn mark_downloaded(
        &self,
        id: ObjectId,
        file: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let file = file.to_owned();
        self.write(move |connection| {
            let id = id.to_string();
            let Some(files) = one(
                connection,
                sql::DELIVERY_URLS,
                [&id],
                rows::delivery_file_count,
            )?
            else {
                return Ok(false);
            };
            let recorded = execute(
                connection,
                sql::MARK_FILE_DOWNLOADED,
                params![id, file, now.millis()],
            )? > 0;
            execute(
                connection,
                sql::MARK_DOWNLOADED,
                params![id, now.millis(), files],
            )?;
            Ok(recorded)
        })
        .await
    }

    async fn expire_downloads(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.write(move |connection| {
            Ok(execute(connection, sql::EXPIRE_DOWNLOADS, [now.millis()])? as u64)
        })
        .await
    }
}
