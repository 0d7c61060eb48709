//! Records the store keeps beside the domain's entities (credentials), and the parameters
//! of listings and guarded inserts.

use rewind_domain::restore_job::{RestoreJob, RestoreJobState, RestoreProgress};
use rewind_domain::{ClusterName, ObjectId, Timestamp};

/// One page of a listing: `offset` rows skipped, at most `limit` returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    /// Rows to skip.
    pub offset: u64,
    /// Rows to return at most.
    pub limit: u64,
}

impl Page {
    /// Every row (for small internal listings).
    pub const ALL: Self = Self {
        offset: 0,
        limit: i64::MAX as u64,
    };
}

/// An organization API key. The private key is kept only as Digest HA1 values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    /// Unique id (`apiUserId`).
    pub id: ObjectId,
    /// Owning organization.
    pub org_id: ObjectId,
    /// The public key, the Digest username.
    pub public_key: String,
    /// Free text.
    pub description: String,
    /// HA1 = MD5(publicKey:realm:privateKey), hex.
    pub ha1_md5: String,
    /// HA1 = SHA-256(publicKey:realm:privateKey), hex.
    pub ha1_sha256: String,
    /// The last characters of the private key, shown masked in listings.
    pub private_key_suffix: String,
    /// Organization roles.
    pub org_roles: Vec<String>,
    /// Project roles.
    pub group_roles: Vec<(ObjectId, String)>,
    /// When it was created.
    pub created_at: Timestamp,
}

/// One secret of a service account, kept only as its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceAccountSecret {
    /// Unique id.
    pub id: ObjectId,
    /// SHA-256 of the secret, hex.
    pub secret_sha256: String,
    /// Masked form shown after creation.
    pub masked: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it stops working.
    pub expires_at: Timestamp,
}

/// An organization service account (OAuth 2 client).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceAccount {
    /// The OAuth client id (`mdb_sa_id_<24 hex>`).
    pub client_id: String,
    /// Owning organization.
    pub org_id: ObjectId,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Organization roles.
    pub org_roles: Vec<String>,
    /// Project roles.
    pub group_roles: Vec<(ObjectId, String)>,
    /// Its secrets.
    pub secrets: Vec<ServiceAccountSecret>,
    /// When it was created.
    pub created_at: Timestamp,
}

/// A bearer token issued to a service account, kept only as its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessToken {
    /// SHA-256 of the token, hex.
    pub token_sha256: String,
    /// The service account it was issued to.
    pub client_id: String,
    /// When it stops working.
    pub expires_at: Timestamp,
}

/// A worker's claim on a job: who holds it and until when, unless renewed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The holder: a replica id and worker number.
    pub owner: String,
    /// When the claim lapses and a reaper may hand the job to another worker.
    pub until: Timestamp,
}

/// How a restore job ended, as its worker records it.
#[derive(Clone, Debug, PartialEq)]
pub struct RestoreOutcome {
    /// `Completed` or `Failed`.
    pub state: RestoreJobState,
    /// When it ended.
    pub finished_at: Timestamp,
    /// Why it failed.
    pub failure_reason: Option<String>,
    /// Download links (download jobs).
    pub delivery_urls: Vec<String>,
    /// When the download links expire.
    pub expires_at: Option<Timestamp>,
    /// SHA-256 of the token in the download links: the token itself is never stored.
    pub download_token_sha256: Option<String>,
    /// The final progress.
    pub progress: Option<RestoreProgress>,
}

/// A download job found by its link's token, with what of it was downloaded.
#[derive(Clone, Debug, PartialEq)]
pub struct DownloadLink {
    /// The job.
    pub job: RestoreJob,
    /// When its last file's one complete download ended (every file was downloaded).
    pub completed_at: Option<Timestamp>,
    /// The files (last segment of a delivery URL) whose one complete download happened.
    pub downloaded_files: Vec<String>,
}

/// A job a worker just claimed, with the attempt this claim is (1 for the first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed<T> {
    /// The job, now leased to the worker.
    pub job: T,
    /// Which attempt this is; the worker fails the job instead of retrying past its limit.
    pub attempt: u32,
}

/// Why a worker hands a job back to the queue before finishing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release<'a> {
    /// Its replica is shutting down: the interrupted claim does not count as an attempt.
    Shutdown,
    /// The job could not start yet (its cluster is still starting here): the claim does not
    /// count as an attempt, and it is claimed again at `retry_at`.
    NotReady {
        /// When to claim it again.
        retry_at: Timestamp,
    },
    /// A transient failure: another attempt may start at `retry_at`, not before.
    Retry {
        /// The earliest time the job may be claimed again (the backoff).
        retry_at: Timestamp,
        /// What went wrong, recorded with the job.
        error: &'a str,
    },
}

/// What a bearer token grants: the identity and roles of its service account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BearerGrant {
    /// The service account's client id.
    pub client_id: String,
    /// Its organization.
    pub org_id: ObjectId,
    /// Its organization roles.
    pub org_roles: Vec<String>,
    /// Its project roles.
    pub group_roles: Vec<(ObjectId, String)>,
    /// When the token stops working.
    pub expires_at: Timestamp,
}

/// Conditions re-checked atomically with a restore job insert, so two concurrent requests
/// cannot both pass the checks they made before inserting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreGuard {
    /// The target must have no active automated or pointInTime job.
    pub target: Option<(ObjectId, ClusterName)>,
    /// The snapshot must have no active download job.
    pub download_snapshot: Option<ObjectId>,
    /// The project must have fewer active download jobs than this.
    pub max_group_downloads: Option<u32>,
}
