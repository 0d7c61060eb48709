//! The metadata schema, written in the SQL both SQLite and PostgreSQL accept. Numbers are
//! `BIGINT` (booleans 0/1, instants in epoch milliseconds); lists are JSON text.

/// Ordered migrations: (version, statements). Applied once each, in order, at start-up.
pub const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE orgs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE groups (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, name)
);
CREATE TABLE clusters (
    id TEXT PRIMARY KEY,
    group_id TEXT NOT NULL REFERENCES groups(id),
    name TEXT NOT NULL,
    cluster_type TEXT NOT NULL,
    backup_enabled BIGINT NOT NULL,
    pit_enabled BIGINT NOT NULL,
    paused BIGINT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    spec TEXT NOT NULL,
    UNIQUE (group_id, name)
);
CREATE TABLE schedules (
    cluster_id TEXT PRIMARY KEY REFERENCES clusters(id) ON DELETE CASCADE,
    reference_hour_of_day BIGINT NOT NULL,
    reference_minute_of_hour BIGINT NOT NULL,
    restore_window_days BIGINT NOT NULL,
    policy_id TEXT NOT NULL,
    policy_items TEXT NOT NULL,
    auto_export_enabled BIGINT NOT NULL,
    use_org_and_group_names_in_export_prefix BIGINT NOT NULL,
    auto_copy_settings_enabled BIGINT NOT NULL,
    copy_policy_items_enabled BIGINT NOT NULL,
    copy_settings TEXT NOT NULL,
    extra_retention_settings TEXT NOT NULL
);
CREATE TABLE snapshots (
    id TEXT PRIMARY KEY,
    group_id TEXT NOT NULL,
    cluster_id TEXT NOT NULL,
    cluster_name TEXT NOT NULL,
    status TEXT NOT NULL,
    snapshot_type TEXT NOT NULL,
    frequency_type TEXT NOT NULL,
    description TEXT,
    requested_at BIGINT NOT NULL,
    created_at BIGINT,
    expires_at BIGINT NOT NULL,
    storage_size_bytes BIGINT NOT NULL,
    mongod_version TEXT,
    policy_items TEXT NOT NULL,
    failure_reason TEXT,
    deleted_at BIGINT
);
CREATE INDEX snapshots_by_cluster ON snapshots (cluster_id, requested_at DESC, id DESC);
CREATE INDEX snapshots_by_status ON snapshots (status, requested_at);
CREATE INDEX snapshots_by_expiry ON snapshots (expires_at);
CREATE TABLE restore_jobs (
    id TEXT PRIMARY KEY,
    group_id TEXT NOT NULL,
    cluster_name TEXT NOT NULL,
    delivery_type TEXT NOT NULL,
    snapshot_id TEXT,
    target_group_id TEXT,
    target_cluster_name TEXT,
    pit_utc_seconds BIGINT,
    pit_oplog_ts BIGINT,
    pit_oplog_inc BIGINT,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    snapshot_taken_at BIGINT,
    finished_at BIGINT,
    expires_at BIGINT,
    delivery_urls TEXT NOT NULL,
    failure_reason TEXT
);
CREATE INDEX restore_jobs_by_cluster ON restore_jobs (group_id, cluster_name, created_at DESC, id DESC);
CREATE INDEX restore_jobs_by_target ON restore_jobs (target_group_id, target_cluster_name, state);
CREATE INDEX restore_jobs_by_snapshot ON restore_jobs (snapshot_id, state);
CREATE INDEX restore_jobs_by_group_type ON restore_jobs (group_id, delivery_type, state);
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    public_key TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    ha1_md5 TEXT NOT NULL,
    ha1_sha256 TEXT NOT NULL,
    private_key_suffix TEXT NOT NULL,
    org_roles TEXT NOT NULL,
    group_roles TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX api_keys_by_org ON api_keys (org_id, created_at);
CREATE TABLE service_accounts (
    client_id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    org_roles TEXT NOT NULL,
    group_roles TEXT NOT NULL,
    secrets TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX service_accounts_by_org ON service_accounts (org_id, created_at);
CREATE TABLE access_tokens (
    token_sha256 TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES service_accounts(client_id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL
);
"#,
    ),
    (
        2,
        r#"
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#,
    ),
    (
        3,
        r#"
ALTER TABLE snapshots ADD COLUMN lease_owner TEXT;
ALTER TABLE snapshots ADD COLUMN lease_expires_at BIGINT;
ALTER TABLE snapshots ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
CREATE INDEX snapshots_by_lease ON snapshots (status, lease_expires_at);
"#,
    ),
    (
        4,
        r#"
ALTER TABLE snapshots ADD COLUMN retry_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE snapshots ADD COLUMN last_error TEXT;
"#,
    ),
    (
        5,
        r#"
ALTER TABLE clusters ADD COLUMN host_replica TEXT;
ALTER TABLE clusters ADD COLUMN host_address TEXT;
CREATE INDEX clusters_by_host ON clusters (host_replica);
"#,
    ),
    (
        6,
        r#"
ALTER TABLE restore_jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE restore_jobs ADD COLUMN lease_expires_at BIGINT;
ALTER TABLE restore_jobs ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE restore_jobs ADD COLUMN retry_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE restore_jobs ADD COLUMN last_error TEXT;
ALTER TABLE restore_jobs ADD COLUMN progress TEXT;
ALTER TABLE restore_jobs ADD COLUMN download_token_sha256 TEXT;
ALTER TABLE restore_jobs ADD COLUMN downloaded_at BIGINT;
CREATE INDEX restore_jobs_by_state ON restore_jobs (state, lease_expires_at);
CREATE UNIQUE INDEX restore_jobs_by_download_token ON restore_jobs (download_token_sha256);
"#,
    ),
    (
        7,
        r#"
ALTER TABLE snapshots ADD COLUMN scheduled_for BIGINT;
CREATE UNIQUE INDEX snapshots_by_schedule_slot ON snapshots (cluster_id, scheduled_for);
"#,
    ),
    (
        8,
        r#"
CREATE TABLE replicas (
    id TEXT PRIMARY KEY,
    heartbeat_at BIGINT NOT NULL
);
"#,
    ),
    (
        9,
        r#"
CREATE TABLE pit_gaps (
    id TEXT PRIMARY KEY,
    cluster_id TEXT NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    from_at BIGINT NOT NULL,
    closed_at BIGINT,
    cause TEXT NOT NULL
);
CREATE INDEX pit_gaps_by_cluster ON pit_gaps (cluster_id, from_at);
"#,
    ),
    (
        10,
        r#"
CREATE TABLE restore_job_downloads (
    job_id TEXT NOT NULL REFERENCES restore_jobs(id) ON DELETE CASCADE,
    file TEXT NOT NULL,
    downloaded_at BIGINT NOT NULL,
    PRIMARY KEY (job_id, file)
);
"#,
    ),
    (
        11,
        r#"
CREATE TABLE deleted_cluster_backups (
    cluster_id TEXT PRIMARY KEY,
    deleted_at BIGINT NOT NULL
);
"#,
    ),
    (
        12,
        // Three of a restore job's indexes only ever serve downloads (the per-snapshot and
        // per-project limits on active downloads, the link's token): partial indexes hold
        // download jobs alone, so an automated or point-in-time job's insert updates five
        // B-trees instead of eight. The limits' queries name `delivery_type = 'download'`
        // and the token lookup compares the token, which is how both planners know these
        // indexes apply. The sweep that expires download links gets one too: it scanned
        // every completed job of every kind.
        r#"
DROP INDEX restore_jobs_by_snapshot;
DROP INDEX restore_jobs_by_group_type;
DROP INDEX restore_jobs_by_download_token;
CREATE INDEX restore_jobs_downloads_by_snapshot ON restore_jobs (snapshot_id, state) WHERE delivery_type = 'download';
CREATE INDEX restore_jobs_downloads_by_group ON restore_jobs (group_id, state) WHERE delivery_type = 'download';
CREATE UNIQUE INDEX restore_jobs_by_download_token ON restore_jobs (download_token_sha256) WHERE download_token_sha256 IS NOT NULL;
CREATE INDEX restore_jobs_downloads_by_expiry ON restore_jobs (state, expires_at) WHERE delivery_type = 'download';
"#,
    ),
];
