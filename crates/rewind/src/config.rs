//! Settings: command-line flags and `REWIND_*` environment variables over an optional TOML file
//! over built-in defaults. Unknown keys in the file are refused.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// Flags of `rewind serve`; each also reads its `REWIND_*` variable.
#[derive(clap::Args, Debug, Default)]
pub struct ServeArgs {
    /// TOML file with settings (flags and environment override it).
    #[arg(long, env = "REWIND_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "REWIND_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for all state [default: ./rewind-data].
    #[arg(long, env = "REWIND_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Base URL clients reach this service at, used in links [default: http://<listen>].
    #[arg(long, env = "REWIND_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Log format: `pretty` or `json` [default: pretty].
    #[arg(long, env = "REWIND_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// PostgreSQL URL (`postgres://user@host:5432/db`) of a metadata store shared by several
    /// replicas [default: SQLite in the data directory].
    #[arg(long, env = "REWIND_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Seconds a worker's claim on a job lasts; a dead worker's job is taken again after
    /// this [default: 30].
    #[arg(long, env = "REWIND_LEASE_SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub lease_seconds: Option<u64>,
    /// Background workers in this process; 0 serves the API only [default: 1].
    #[arg(long, env = "REWIND_WORKERS")]
    pub workers: Option<usize>,
    /// Seconds a running job may take to reach a checkpoint after SIGTERM before its lease is
    /// released for another replica [default: 10].
    #[arg(long, env = "REWIND_SHUTDOWN_GRACE_SECONDS")]
    pub shutdown_grace_seconds: Option<u64>,
    /// Where snapshots and captured oplog live: a directory, a `file://` URL, or
    /// `s3://BUCKET/PREFIX` for S3 or an S3-compatible service (credentials, region and
    /// endpoint from the standard AWS_* variables: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    /// AWS_SESSION_TOKEN, AWS_REGION, AWS_ENDPOINT_URL; the bucket must exist)
    /// [default: <data-dir>/blobs].
    #[arg(long, env = "REWIND_BLOB_STORE")]
    pub blob_store: Option<String>,
    /// First port tried for a cluster's MongoDB server on 127.0.0.1 (each cluster takes the
    /// next free one); 0 lets the system pick [default: 27100].
    #[arg(long, env = "REWIND_CLUSTER_PORT_BASE")]
    pub cluster_port_base: Option<u16>,
    /// Size cap of each replica set's oplog, in MiB of BSON; the oldest entries go first
    /// [default: 1024].
    #[arg(long, env = "REWIND_OPLOG_MAX_MB", value_parser = clap::value_parser!(u64).range(1..))]
    pub oplog_max_mb: Option<u64>,
    /// Age cap of each replica set's oplog, in hours [default: none].
    #[arg(long, env = "REWIND_OPLOG_MAX_HOURS", value_parser = clap::value_parser!(u64).range(1..))]
    pub oplog_max_hours: Option<u64>,
    /// Seconds a download restore's link stays valid [default: 3600, as Atlas].
    #[arg(long, env = "REWIND_DOWNLOAD_LINK_SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub download_link_seconds: Option<u64>,
    /// Fault injection for tests: a restore waits this long before swapping its data in.
    #[arg(long, env = "REWIND_FAULT_RESTORE_DELAY_MS", hide = true)]
    pub fault_restore_delay_ms: Option<u64>,
    /// Fault injection for tests: every snapshot step takes at least this long.
    #[arg(long, env = "REWIND_FAULT_SNAPSHOT_DELAY_MS", hide = true)]
    pub fault_snapshot_delay_ms: Option<u64>,
}

/// The TOML file's shape.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    public_url: Option<String>,
    log_format: Option<String>,
    database_url: Option<String>,
    lease_seconds: Option<u64>,
    workers: Option<usize>,
    shutdown_grace_seconds: Option<u64>,
    cluster_port_base: Option<u16>,
    blob_store: Option<String>,
    download_link_seconds: Option<u64>,
    oplog_max_mb: Option<u64>,
    oplog_max_hours: Option<u64>,
}

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listen address.
    pub listen: SocketAddr,
    /// State directory.
    pub data_dir: PathBuf,
    /// Public base URL, when configured; else derived from the bound address.
    pub public_url: Option<String>,
    /// `pretty` or `json`.
    pub log_format: String,
    /// PostgreSQL URL, when the metadata store is shared.
    pub database_url: Option<String>,
    /// How long a worker's claim on a job lasts.
    pub lease: std::time::Duration,
    /// Background workers to run.
    pub workers: usize,
    /// How long running jobs get to reach a checkpoint after SIGTERM.
    pub shutdown_grace: std::time::Duration,
    /// Fault injection: the least time a snapshot step takes.
    pub fault_snapshot_delay: std::time::Duration,
    /// First port tried for a cluster's server; 0: system-assigned.
    pub cluster_port_base: u16,
    /// The blob store's location.
    pub blob_store: String,
    /// How long a download link stays valid.
    pub download_link: std::time::Duration,
    /// Oplog retention of every replica set's engine.
    pub oplog_max_bytes: u64,
    /// Oplog age cap of every replica set's engine.
    pub oplog_max_age: Option<std::time::Duration>,
    /// Fault injection: how long a restore waits before swapping its data in.
    pub fault_restore_delay: std::time::Duration,
}

impl Settings {
    /// Merges flags and environment over the file over defaults.
    pub fn resolve(args: ServeArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        let log_format = args
            .log_format
            .or(file.log_format)
            .unwrap_or_else(|| "pretty".to_owned());
        if !matches!(log_format.as_str(), "pretty" | "json") {
            anyhow::bail!("log format must be `pretty` or `json`, not `{log_format}`");
        }
        let lease_seconds = args.lease_seconds.or(file.lease_seconds).unwrap_or(30);
        if lease_seconds == 0 {
            anyhow::bail!("lease_seconds must be at least 1");
        }
        let listen = match args.listen.or(file.listen) {
            Some(listen) => listen,
            None => "127.0.0.1:8080".parse()?,
        };
        let data_dir = args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("rewind-data"));
        Ok(Self {
            listen,
            data_dir: data_dir.clone(),
            public_url: args.public_url.or(file.public_url),
            log_format,
            database_url: args.database_url.or(file.database_url),
            lease: std::time::Duration::from_secs(lease_seconds),
            workers: args.workers.or(file.workers).unwrap_or(1),
            shutdown_grace: std::time::Duration::from_secs(
                args.shutdown_grace_seconds
                    .or(file.shutdown_grace_seconds)
                    .unwrap_or(10),
            ),
            blob_store: match args.blob_store.or(file.blob_store) {
                Some(location) => location,
                None => data_dir.join("blobs").to_string_lossy().into_owned(),
            },
            oplog_max_bytes: args.oplog_max_mb.or(file.oplog_max_mb).unwrap_or(1024) << 20,
            oplog_max_age: args
                .oplog_max_hours
                .or(file.oplog_max_hours)
                .map(|hours| std::time::Duration::from_secs(hours * 3600)),
            download_link: std::time::Duration::from_secs(
                args.download_link_seconds
                    .or(file.download_link_seconds)
                    .unwrap_or(3600),
            ),
            fault_restore_delay: std::time::Duration::from_millis(
                args.fault_restore_delay_ms.unwrap_or(0),
            ),
            cluster_port_base: args
                .cluster_port_base
                .or(file.cluster_port_base)
                .unwrap_or(27_100),
            fault_snapshot_delay: std::time::Duration::from_millis(
                args.fault_snapshot_delay_ms.unwrap_or(0),
            ),
        })
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileSettings> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
}

/// Logs to stderr as human-readable lines or JSON objects; `RUST_LOG` filters (default info).
pub fn init_logging(format: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    installed.map_err(|error| anyhow::anyhow!("installing the logger: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_keys_are_strict_and_flags_win() {
        assert!(toml::from_str::<FileSettings>("listen = \"127.0.0.1:1\"\nbogus = 1").is_err());
        let directory = std::env::temp_dir().join(format!("rewind-config-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("rewind.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9999\"\ndata_dir = \"/tmp/x\"\n",
        )
        .unwrap();
        let settings = Settings::resolve(ServeArgs {
            config: Some(path.clone()),
            listen: Some("127.0.0.1:7777".parse().unwrap()),
            ..ServeArgs::default()
        })
        .unwrap();
        assert_eq!(settings.listen.port(), 7777);
        assert_eq!(settings.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(
            settings.lease,
            std::time::Duration::from_secs(30),
            "default lease"
        );
        std::fs::write(&path, "lease_seconds = 0\n").unwrap();
        let refused = Settings::resolve(ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        });
        assert!(refused.is_err(), "a lease of 0 s is refused");
        std::fs::write(
            &path,
            "lease_seconds = 5\noplog_max_mb = 16\noplog_max_hours = 48\nblob_store = \"/srv/blobs\"\n",
        )
        .unwrap();
        let short = Settings::resolve(ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        })
        .unwrap();
        assert_eq!(short.lease, std::time::Duration::from_secs(5));
        assert_eq!(short.oplog_max_bytes, 16 << 20);
        assert_eq!(
            short.oplog_max_age,
            Some(std::time::Duration::from_secs(48 * 3600))
        );
        assert_eq!(short.blob_store, "/srv/blobs");
        assert_eq!(settings.oplog_max_bytes, 1 << 30, "default oplog cap");
        assert!(
            settings.blob_store.ends_with("blobs"),
            "blobs under the data directory by default"
        );
        std::fs::remove_dir_all(&directory).unwrap();
    }
}
