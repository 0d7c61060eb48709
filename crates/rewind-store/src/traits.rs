//! The store interface, split by resource family. [`MetadataStore`] is all of them: what the
//! API and the workers hold. Every method is one atomic operation.

use async_trait::async_trait;
use rewind_domain::cluster::{Cluster, ClusterState};
use rewind_domain::group::{Group, Organization};
use rewind_domain::pit_gap::PitGap;
use rewind_domain::restore_job::{RestoreJob, RestoreJobState, RestoreProgress};
use rewind_domain::schedule::BackupSchedule;
use rewind_domain::snapshot::{Snapshot, SnapshotStatus};
use rewind_domain::{ClusterName, ObjectId, Timestamp};

use crate::{
    AccessToken, ApiKey, BearerGrant, Claimed, DownloadLink, Lease, Page, Release, RestoreGuard,
    RestoreOutcome, ServiceAccount, StoreError,
};

/// Organizations, projects, clusters and their backup schedules.
#[async_trait]
pub trait ProjectStore: Send + Sync {
    // Organizations and projects.

    /// Inserts an organization.
    async fn create_org(&self, org: &Organization) -> Result<(), StoreError>;
    /// Reads an organization.
    async fn get_org(&self, id: ObjectId) -> Result<Option<Organization>, StoreError>;
    /// Lists organizations, oldest first, with the total count.
    async fn list_orgs(&self, page: Page) -> Result<(Vec<Organization>, u64), StoreError>;
    /// Inserts a project; [`StoreError::AlreadyExists`] when the name is taken in its org.
    async fn create_group(&self, group: &Group) -> Result<(), StoreError>;
    /// Reads a project.
    async fn get_group(&self, id: ObjectId) -> Result<Option<Group>, StoreError>;
    /// Lists projects of the given organizations, oldest first, with the total count.
    async fn list_groups(
        &self,
        org_ids: &[ObjectId],
        page: Page,
    ) -> Result<(Vec<Group>, u64), StoreError>;
    /// Deletes a project with no clusters; [`StoreError::Conflict`] if it still has some.
    async fn delete_group(&self, id: ObjectId) -> Result<bool, StoreError>;

    // Clusters and schedules.

    /// Inserts a cluster and, when given, its schedule, atomically.
    async fn create_cluster(
        &self,
        cluster: &Cluster,
        schedule: Option<&BackupSchedule>,
    ) -> Result<(), StoreError>;
    /// Reads a cluster by project and name.
    async fn get_cluster(
        &self,
        group_id: ObjectId,
        name: &ClusterName,
    ) -> Result<Option<Cluster>, StoreError>;
    /// Lists a project's clusters, oldest first, with the total count.
    async fn list_clusters(
        &self,
        group_id: ObjectId,
        page: Page,
    ) -> Result<(Vec<Cluster>, u64), StoreError>;
    /// Replaces a cluster record (matched by id); creates the schedule when given and none exists.
    async fn update_cluster(
        &self,
        cluster: &Cluster,
        schedule_if_missing: Option<&BackupSchedule>,
    ) -> Result<(), StoreError>;
    /// Deletes a cluster with its schedule and snapshots; refuses ([`StoreError::Conflict`])
    /// while a restore job targets it or restores from it.
    async fn delete_cluster(&self, cluster_id: ObjectId) -> Result<bool, StoreError>;
    /// Clusters deleted at or before `before` whose backups (snapshot and oplog blobs) are
    /// still to be removed; at most 100, oldest first.
    async fn deleted_cluster_backups(&self, before: Timestamp)
    -> Result<Vec<ObjectId>, StoreError>;
    /// Forgets a deleted cluster once its backups were removed.
    async fn forget_deleted_cluster_backups(&self, cluster_id: ObjectId) -> Result<(), StoreError>;
    /// Assigns every cluster no replica hosts yet to `replica`, and returns all the clusters
    /// `replica` hosts: each cluster's data lives with exactly one replica.
    async fn host_clusters(&self, replica: &str) -> Result<Vec<Cluster>, StoreError>;
    /// Records that `replica` is alive at `now`.
    async fn replica_heartbeat(&self, replica: &str, now: Timestamp) -> Result<(), StoreError>;
    /// Moves to `replica` the clusters hosted by replicas whose last heartbeat is older than
    /// `stale_before` (they died); each moves once, to one replica. Returns those it moved,
    /// not yet served (no address).
    async fn take_over_clusters(
        &self,
        replica: &str,
        stale_before: Timestamp,
    ) -> Result<Vec<Cluster>, StoreError>;
    /// Records where a cluster hosted by `replica` answers drivers (none: not serving) and its
    /// state; false when the cluster is gone or hosted elsewhere.
    async fn record_cluster_address(
        &self,
        cluster_id: ObjectId,
        replica: &str,
        address: Option<&str>,
        state: ClusterState,
    ) -> Result<bool, StoreError>;
    /// Reads a cluster's schedule.
    async fn get_schedule(
        &self,
        cluster_id: ObjectId,
    ) -> Result<Option<BackupSchedule>, StoreError>;
    /// Replaces a cluster's schedule.
    async fn put_schedule(&self, schedule: &BackupSchedule) -> Result<(), StoreError>;
}

/// Snapshots and restore jobs.
#[async_trait]
pub trait BackupStore: Send + Sync {
    // Snapshots.

    /// Inserts an on-demand snapshot unless the cluster already has an unfinished on-demand
    /// snapshot, whose id is then returned in [`StoreError::Conflict`].
    async fn insert_on_demand_snapshot(&self, snapshot: &Snapshot) -> Result<(), StoreError>;
    /// Inserts the scheduled snapshot of the policy slot `slot` unless that slot already has
    /// one; false then. A slot is snapshotted once, whichever replica gets there first.
    async fn insert_scheduled_snapshot(
        &self,
        snapshot: &Snapshot,
        slot: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Reads a snapshot of a cluster, deleted ones included (see [`Snapshot::deleted_at`]).
    ///
    /// [`Snapshot::deleted_at`]: rewind_domain::snapshot::Snapshot::deleted_at
    async fn get_snapshot(
        &self,
        cluster_id: ObjectId,
        id: ObjectId,
    ) -> Result<Option<Snapshot>, StoreError>;
    /// Lists a cluster's live snapshots, newest first, with the total count.
    async fn list_snapshots(
        &self,
        cluster_id: ObjectId,
        page: Page,
    ) -> Result<(Vec<Snapshot>, u64), StoreError>;
    /// The latest completed snapshot captured at or before `at`.
    async fn latest_completed_snapshot(
        &self,
        cluster_id: ObjectId,
        at: Timestamp,
    ) -> Result<Option<Snapshot>, StoreError>;
    /// Sets a snapshot's expiry.
    async fn set_snapshot_expiry(
        &self,
        id: ObjectId,
        expires_at: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Marks a snapshot deleted; false when it was already deleted or does not exist.
    async fn delete_snapshot(&self, id: ObjectId, now: Timestamp) -> Result<bool, StoreError>;
    /// Moves the oldest queued snapshot of a cluster `replica` hosts and serves (a paused or
    /// starting cluster's snapshots wait) whose backoff has passed at `now` to inProgress under
    /// `lease`, counts the attempt and returns it.
    async fn claim_queued_snapshot(
        &self,
        replica: &str,
        mongod_version: &str,
        lease: &Lease,
        now: Timestamp,
    ) -> Result<Option<Claimed<Snapshot>>, StoreError>;
    /// Extends the lease of a snapshot still held by `lease.owner` (the worker's heartbeat);
    /// false when the lease was lost, and the worker must then abandon the job.
    async fn renew_snapshot_lease(&self, id: ObjectId, lease: &Lease) -> Result<bool, StoreError>;
    /// Hands an inProgress snapshot held by `owner` back to the queue; false when the lease
    /// was lost.
    async fn release_snapshot(
        &self,
        id: ObjectId,
        owner: &str,
        release: Release<'_>,
    ) -> Result<bool, StoreError>;
    /// Hands inProgress snapshots whose lease lapsed (their worker died) back to the queue, or
    /// fails them once they were tried `max_attempts` times; returns how many it touched.
    async fn reap_snapshot_leases(
        &self,
        now: Timestamp,
        max_attempts: u32,
    ) -> Result<u64, StoreError>;
    /// Ends an inProgress snapshot still leased to `owner`: completed with its capture time
    /// and size, or failed. The retention then counts from the capture time, as Atlas
    /// recomputes `expiresAt`. False when the lease was lost.
    async fn finish_snapshot(
        &self,
        id: ObjectId,
        owner: &str,
        status: SnapshotStatus,
        created_at: Timestamp,
        storage_size_bytes: i64,
        failure_reason: Option<&str>,
    ) -> Result<bool, StoreError>;
    /// Live snapshots whose expiry has passed.
    async fn expired_snapshots(&self, now: Timestamp) -> Result<Vec<Snapshot>, StoreError>;

    // Gaps of point-in-time history.

    /// Records a gap (its `closed_at` is ignored: a gap starts open).
    async fn open_pit_gap(&self, gap: &PitGap) -> Result<(), StoreError>;
    /// Closes the cluster's open gaps that began at or before `requested_at`: a snapshot
    /// requested then, and completed at `completed_at`, is a replay base past them. Returns
    /// how many closed.
    async fn close_pit_gaps(
        &self,
        cluster_id: ObjectId,
        requested_at: Timestamp,
        completed_at: Timestamp,
    ) -> Result<u64, StoreError>;
    /// The earliest gap of the cluster that a point-in-time target falls in: one starting at
    /// or before `needed_until` (the last instant the target includes) and not closed at or
    /// before `base_limit` (the latest capture time its replay base may have).
    async fn pit_gap_at(
        &self,
        cluster_id: ObjectId,
        needed_until: Timestamp,
        base_limit: Timestamp,
    ) -> Result<Option<PitGap>, StoreError>;

    // Restore jobs.

    /// Inserts a restore job after re-checking `guard` atomically.
    async fn insert_restore_job(
        &self,
        job: &RestoreJob,
        guard: &RestoreGuard,
    ) -> Result<(), StoreError>;
    /// Reads a restore job of a cluster.
    async fn get_restore_job(
        &self,
        group_id: ObjectId,
        cluster_name: &ClusterName,
        id: ObjectId,
    ) -> Result<Option<RestoreJob>, StoreError>;
    /// Reads a restore job together with its project's organization, in one query, only when
    /// its project and cluster both exist: the read path of `GET .../restoreJobs/{id}`.
    async fn get_restore_job_with_org(
        &self,
        group_id: ObjectId,
        cluster_name: &ClusterName,
        id: ObjectId,
    ) -> Result<Option<(RestoreJob, ObjectId)>, StoreError>;
    /// Lists a cluster's restore jobs, newest first, with the total count.
    async fn list_restore_jobs(
        &self,
        group_id: ObjectId,
        cluster_name: &ClusterName,
        page: Page,
    ) -> Result<(Vec<RestoreJob>, u64), StoreError>;
    /// Whether an automated or pointInTime job is active on the target.
    async fn target_restoring(
        &self,
        group_id: ObjectId,
        cluster_name: &ClusterName,
    ) -> Result<bool, StoreError>;
    /// Active download jobs of a snapshot and of a project.
    async fn active_downloads(
        &self,
        group_id: ObjectId,
        snapshot_id: ObjectId,
    ) -> Result<(u32, u32), StoreError>;
    /// Moves a job from one of `from` to `to` (compare-and-set); false when it was in another state.
    async fn transition_restore_job(
        &self,
        id: ObjectId,
        from: &[RestoreJobState],
        to: RestoreJobState,
        now: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Counts of restore jobs by state and snapshots by status: `(kind, state, count)`.
    async fn state_counts(&self) -> Result<Vec<(String, String, u64)>, StoreError>;
}

/// API keys, service accounts and bearer tokens.
#[async_trait]
pub trait CredentialStore: Send + Sync {
    // Credentials.

    /// Inserts an API key.
    async fn create_api_key(&self, key: &ApiKey) -> Result<(), StoreError>;
    /// Reads an API key by its public key.
    async fn get_api_key_by_public_key(
        &self,
        public_key: &str,
    ) -> Result<Option<ApiKey>, StoreError>;
    /// Reads an API key by id.
    async fn get_api_key(&self, id: ObjectId) -> Result<Option<ApiKey>, StoreError>;
    /// Lists an organization's API keys, oldest first, with the total count.
    async fn list_api_keys(
        &self,
        org_id: ObjectId,
        page: Page,
    ) -> Result<(Vec<ApiKey>, u64), StoreError>;
    /// Replaces an API key's description and roles.
    async fn update_api_key(&self, key: &ApiKey) -> Result<bool, StoreError>;
    /// Deletes an API key.
    async fn delete_api_key(&self, id: ObjectId) -> Result<bool, StoreError>;
    /// Inserts a service account.
    async fn create_service_account(&self, account: &ServiceAccount) -> Result<(), StoreError>;
    /// Reads a service account.
    async fn get_service_account(
        &self,
        client_id: &str,
    ) -> Result<Option<ServiceAccount>, StoreError>;
    /// Lists an organization's service accounts, oldest first, with the total count.
    async fn list_service_accounts(
        &self,
        org_id: ObjectId,
        page: Page,
    ) -> Result<(Vec<ServiceAccount>, u64), StoreError>;
    /// Deletes a service account and its tokens.
    async fn delete_service_account(&self, client_id: &str) -> Result<bool, StoreError>;
    /// Inserts a bearer token.
    async fn create_access_token(&self, token: &AccessToken) -> Result<(), StoreError>;
    /// Reads a bearer token by its hash.
    async fn get_access_token(&self, token_sha256: &str)
    -> Result<Option<AccessToken>, StoreError>;
    /// What a bearer token grants: its service account's identity and roles, and its expiry,
    /// in one query (the authentication path of every bearer request).
    async fn get_bearer_grant(&self, token_sha256: &str)
    -> Result<Option<BearerGrant>, StoreError>;
    /// The secret named `name` that every replica shares: `candidate` is stored if the name has
    /// none yet, and whichever value won is returned.
    async fn shared_secret(&self, name: &str, candidate: &str) -> Result<String, StoreError>;
    /// Deletes bearer tokens that expired before `now`; returns how many.
    async fn delete_expired_access_tokens(&self, now: Timestamp) -> Result<u64, StoreError>;
    /// Deletes a bearer token.
    async fn revoke_access_token(&self, token_sha256: &str) -> Result<bool, StoreError>;
}

/// The whole metadata store.
pub trait MetadataStore:
    ProjectStore + BackupStore + CredentialStore + RestoreRunStore + 'static
{
}

impl<T: ProjectStore + BackupStore + CredentialStore + RestoreRunStore + 'static> MetadataStore
    for T
{
}

/// Restore jobs as work: claims under a lease, heartbeats, progress, outcomes, download links.
/// Every end of a job is a compare-and-set on its state and lease, so a cancel and a
/// completion cannot both win.
#[async_trait]
pub trait RestoreRunStore: Send + Sync {
    /// Moves the oldest queued restore job `replica` can run (a download of a snapshot of a
    /// cluster it hosts, or a restore into a cluster it hosts) whose backoff has passed to
    /// inProgress under `lease`, counting the attempt.
    async fn claim_queued_restore_job(
        &self,
        replica: &str,
        lease: &Lease,
        now: Timestamp,
    ) -> Result<Option<Claimed<RestoreJob>>, StoreError>;
    /// Extends the lease of a job still held by `lease.owner`; false when it was lost (or the
    /// job was cancelled meanwhile).
    async fn renew_restore_lease(&self, id: ObjectId, lease: &Lease) -> Result<bool, StoreError>;
    /// Hands an inProgress job held by `owner` back to the queue.
    async fn release_restore_job(
        &self,
        id: ObjectId,
        owner: &str,
        release: Release<'_>,
    ) -> Result<bool, StoreError>;
    /// Records the progress of a job held by `owner`.
    async fn record_restore_progress(
        &self,
        id: ObjectId,
        owner: &str,
        progress: &RestoreProgress,
    ) -> Result<bool, StoreError>;
    /// Ends an inProgress job held by `owner`; false when it was cancelled or its lease lost.
    async fn finish_restore_job(
        &self,
        id: ObjectId,
        owner: &str,
        outcome: &RestoreOutcome,
    ) -> Result<bool, StoreError>;
    /// Hands jobs whose lease lapsed back to the queue, or fails them after `max_attempts`.
    async fn reap_restore_leases(
        &self,
        now: Timestamp,
        max_attempts: u32,
    ) -> Result<u64, StoreError>;
    /// The download job whose links carry the token with this SHA-256, with which of its
    /// files were downloaded.
    async fn restore_job_by_download_token(
        &self,
        token_sha256: &str,
    ) -> Result<Option<DownloadLink>, StoreError>;
    /// Records the one complete download of `file` of a job (once every file its
    /// `delivery_urls` serve is downloaded, so is the job); false when one was recorded
    /// already, or there is no such job.
    async fn mark_downloaded(
        &self,
        id: ObjectId,
        file: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Completed download jobs whose link expired become `expired`; returns how many.
    async fn expire_downloads(&self, now: Timestamp) -> Result<u64, StoreError>;
}
