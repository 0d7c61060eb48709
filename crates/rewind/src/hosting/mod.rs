//! Cluster hosting: every cluster record becomes a live database that MongoDB drivers use.
//!
//! A reconciler loop compares the clusters this replica hosts (the store assigns each cluster
//! to exactly one replica) with what runs here: a new cluster gets a storage engine per replica
//! set (see [`layout`]) and a wire-protocol server on 127.0.0.1, and its record gets the
//! address and `stateName: IDLE`; a paused cluster stops serving and keeps its data; a deleted
//! cluster is stopped and its data removed. [`Clusters`] is also how the workers reach a
//! cluster's engines to snapshot them, and how a restore swaps a cluster's data.
//!
//! Replicas heartbeat through the store. A replica not heard from for a lease is dead: a live
//! replica takes its clusters over and, having none of their data, rebuilds each from its
//! latest completed snapshot plus the oplog captured since (see [`seed`]); the dead replica's
//! jobs, once their leases lapse, then run on the new host.

mod seed;

pub mod layout;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bson::DateTime;
use rewind_domain::ObjectId;
use rewind_domain::cluster::{Cluster, ClusterState};
use rewind_engine::{Engine, EngineOptions};
use rewind_store::MetadataStore;
use rewind_wire::{CommandHandler, LastWrite, ServerConfig, ServerHandle};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

/// How often the reconciler compares the store with what runs here.
const RECONCILE_INTERVAL: Duration = Duration::from_millis(250);

/// Builds the command handler serving one replica set's data.
pub type HandlerFactory = Arc<dyn Fn(Arc<Engine>) -> Arc<dyn CommandHandler> + Send + Sync>;

/// What hosting needs besides the store.
pub struct HostingConfig {
    /// This replica's id: the store assigns clusters to it by this name.
    pub replica: String,
    /// Where cluster data lives.
    pub data_dir: PathBuf,
    /// The first port tried for a cluster's server; 0 lets the system pick.
    pub port_base: u16,
    /// Serves the data commands of a cluster.
    pub handler: HandlerFactory,
    /// How every replica set's engine is opened (durability, oplog retention).
    pub engine: EngineOptions,
    /// A replica not heard from for this long is dead and its clusters move.
    pub lease: Duration,
    /// Where backups live, to rebuild the clusters taken over from a dead replica.
    pub blobs: Arc<dyn rewind_backup::BlobStore>,
}

/// One served replica set.
struct ReplicaSet {
    name: String,
    engine: Arc<Engine>,
    server: ServerHandle,
    last_write_forwarder: JoinHandle<()>,
}

/// A cluster running here: its record as of the last reconcile, and its replica sets (one
/// per shard).
struct Running {
    cluster: Cluster,
    replica_sets: Vec<ReplicaSet>,
}

/// The clusters running in this replica.
#[derive(Clone)]
pub struct Clusters {
    running: Arc<Mutex<HashMap<ObjectId, Running>>>,
    config: Arc<HostingConfig>,
}

impl Clusters {
    /// No cluster running yet.
    pub fn new(config: HostingConfig) -> Self {
        Self {
            running: Arc::default(),
            config: Arc::new(config),
        }
    }

    /// The records of the clusters running here (paused ones are not), as of the last
    /// reconcile: what the periodic work (oplog capture, schedules) goes through, without
    /// asking the store again.
    pub async fn running(&self) -> Vec<Cluster> {
        let running = self.running.lock().await;
        running
            .values()
            .map(|running| running.cluster.clone())
            .collect()
    }

    /// The replica sets of a running cluster, by name, with their engines.
    pub async fn engines(&self, cluster: ObjectId) -> Option<Vec<(String, Arc<Engine>)>> {
        let running = self.running.lock().await;
        running.get(&cluster).map(|cluster| {
            cluster
                .replica_sets
                .iter()
                .map(|set| (set.name.clone(), set.engine.clone()))
                .collect()
        })
    }

    /// Makes every command of a cluster fail with `reason` (a restore is under way), or
    /// serves them again with `None`.
    pub async fn set_unavailable(&self, cluster: ObjectId, reason: Option<&str>) {
        let running = self.running.lock().await;
        for set in running
            .get(&cluster)
            .into_iter()
            .flat_map(|c| &c.replica_sets)
        {
            match reason {
                Some(reason) => set.server.set_unavailable(reason),
                None => set.server.set_available(),
            }
        }
    }

    /// A fresh directory to build a replica set's replacement data in.
    pub fn new_generation(&self, cluster: ObjectId) -> PathBuf {
        layout::new_generation(&self.config.data_dir, cluster)
    }

    /// Replaces a replica set's data by `generation` atomically: stops its server, swaps the
    /// data, and serves the new data on the same port.
    pub async fn replace_data(
        &self,
        cluster: ObjectId,
        set_name: &str,
        generation: &Path,
    ) -> anyhow::Result<()> {
        let mut running = self.running.lock().await;
        let hosted = running.get_mut(&cluster).and_then(|cluster| {
            cluster
                .replica_sets
                .iter_mut()
                .find(|set| set.name == set_name)
        });
        let port = match &hosted {
            Some(set) => {
                let port = set.server.port();
                set.server.shutdown().await;
                set.last_write_forwarder.abort();
                Some(port)
            }
            None => None,
        };
        let data_dir = self.config.data_dir.clone();
        let (set, generation_path) = (set_name.to_owned(), generation.to_owned());
        let previous = tokio::task::spawn_blocking(move || {
            layout::swap(&data_dir, cluster, &set, &generation_path)
        })
        .await??;
        if let (Some(set), Some(port)) = (hosted, port) {
            let (engine, server, forwarder) =
                open_and_serve(&self.config, cluster, set_name, Binding::Exact(port)).await?;
            set.engine = engine;
            set.server = server;
            set.last_write_forwarder = forwarder;
        }
        if let Some(previous) = previous {
            tokio::task::spawn_blocking(move || std::fs::remove_dir_all(previous)).await??;
        }
        Ok(())
    }
}

/// Starts the reconciler; on `stop` it shuts every cluster's server down and returns.
pub fn spawn(
    store: Arc<dyn MetadataStore>,
    clusters: Clusters,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        // Clusters deleted from the store while this replica was down left data behind; the
        // reconciler removes the data of clusters deleted while it runs.
        if let Err(error) = remove_orphans(store.as_ref(), &clusters).await {
            tracing::error!(
                error = format!("{error:#}"),
                "removing deleted clusters' data failed"
            );
        }
        let mut last_heartbeat: Option<std::time::Instant> = None;
        while !*stop.borrow() {
            if last_heartbeat.is_none_or(|at| at.elapsed() >= clusters.config.lease / 4) {
                if let Err(error) = heartbeat_and_take_over(store.as_ref(), &clusters).await {
                    tracing::error!(error = format!("{error:#}"), "replica heartbeat failed");
                }
                last_heartbeat = Some(std::time::Instant::now());
            }
            if let Err(error) = reconcile(store.as_ref(), &clusters).await {
                tracing::error!(error = format!("{error:#}"), "cluster hosting failed");
            }
            tokio::select! {
                _ = stop.changed() => {}
                _ = tokio::time::sleep(RECONCILE_INTERVAL) => {}
            }
        }
        for (id, cluster) in clusters.running.lock().await.drain() {
            stop_cluster(cluster).await;
            tracing::info!(cluster.id = %id, "cluster stopped for shutdown");
        }
    })
}

/// Says this replica is alive, and takes over the clusters of replicas that are not.
async fn heartbeat_and_take_over(
    store: &dyn MetadataStore,
    clusters: &Clusters,
) -> anyhow::Result<()> {
    let config = clusters.config.as_ref();
    let now = rewind_domain::Timestamp::now();
    store.replica_heartbeat(&config.replica, now).await?;
    let lease = i64::try_from(config.lease.as_millis()).unwrap_or(i64::MAX);
    for cluster in store
        .take_over_clusters(&config.replica, now.plus_millis(-lease))
        .await?
    {
        tracing::warn!(cluster.id = %cluster.id, cluster.name = %cluster.name, "took over a cluster whose replica stopped; rebuilding it from its backups");
    }
    Ok(())
}

async fn reconcile(store: &dyn MetadataStore, clusters: &Clusters) -> anyhow::Result<()> {
    let config = clusters.config.as_ref();
    let hosted = store.host_clusters(&config.replica).await?;
    let wanted: HashSet<ObjectId> = hosted.iter().map(|cluster| cluster.id).collect();
    let mut running = clusters.running.lock().await;

    // Deleted clusters: stop them and remove their data.
    let gone: Vec<ObjectId> = running
        .keys()
        .filter(|id| !wanted.contains(id))
        .copied()
        .collect();
    for id in gone {
        if let Some(cluster) = running.remove(&id) {
            stop_cluster(cluster).await;
        }
        remove_data(&config.data_dir, id).await?;
        tracing::info!(cluster.id = %id, "cluster deleted: stopped and its data removed");
    }

    for cluster in hosted.iter() {
        match (cluster.paused, running.contains_key(&cluster.id)) {
            (true, true) => {
                if let Some(stopped) = running.remove(&cluster.id) {
                    stop_cluster(stopped).await;
                }
                store
                    .record_cluster_address(cluster.id, &config.replica, None, ClusterState::Idle)
                    .await?;
                tracing::info!(cluster.id = %cluster.id, "cluster paused: not serving");
            }
            (true, false) if cluster.address.is_some() || cluster.state != ClusterState::Idle => {
                // Created paused, or paused while this replica was down.
                store
                    .record_cluster_address(cluster.id, &config.replica, None, ClusterState::Idle)
                    .await?;
            }
            (false, false) => {
                let started = start_cluster(store, cluster, config).await?;
                let address = started
                    .replica_sets
                    .first()
                    .map(|set| set.server.host().to_owned());
                running.insert(cluster.id, started);
                store
                    .record_cluster_address(
                        cluster.id,
                        &config.replica,
                        address.as_deref(),
                        ClusterState::Idle,
                    )
                    .await?;
                tracing::info!(cluster.id = %cluster.id, cluster.name = %cluster.name, address = ?address, "cluster serving");
            }
            (false, true) => {
                if let Some(current) = running.get_mut(&cluster.id) {
                    current.cluster = cluster.clone();
                }
            }
            (true, false) => {}
        }
    }
    Ok(())
}

/// Opens the engines of a cluster and starts their servers.
async fn start_cluster(
    store: &dyn MetadataStore,
    cluster: &Cluster,
    config: &HostingConfig,
) -> anyhow::Result<Running> {
    let (data_dir, id) = (config.data_dir.clone(), cluster.id);
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(layout::cluster_dir(&data_dir, id))?;
        layout::remove_unlinked_generations(&data_dir, id)
    })
    .await??;
    let mut replica_sets = Vec::new();
    for (index, name) in cluster.replica_set_names().into_iter().enumerate() {
        if !layout::engine_dir(&config.data_dir, cluster.id, &name).exists() {
            seed::from_backups(store, config, cluster, &name).await?;
        }
        let binding = match config.port_base {
            0 => Binding::Any,
            base => Binding::From(base.saturating_add(u16::try_from(index).unwrap_or(0))),
        };
        let (engine, server, last_write_forwarder) =
            open_and_serve(config, cluster.id, &name, binding).await?;
        replica_sets.push(ReplicaSet {
            name,
            engine,
            server,
            last_write_forwarder,
        });
    }
    Ok(Running {
        cluster: cluster.clone(),
        replica_sets,
    })
}

/// Which port a replica set's server takes.
enum Binding {
    /// Any the system picks.
    Any,
    /// The first free one from this port up.
    From(u16),
    /// This one (a restarted server keeps its address).
    Exact(u16),
}

/// Opens a replica set's engine and serves it.
async fn open_and_serve(
    config: &HostingConfig,
    cluster: ObjectId,
    set_name: &str,
    binding: Binding,
) -> anyhow::Result<(Arc<Engine>, ServerHandle, JoinHandle<()>)> {
    let (data_dir, options) = (config.data_dir.clone(), config.engine.clone());
    let set = set_name.to_owned();
    let engine = tokio::task::spawn_blocking(move || -> anyhow::Result<Engine> {
        let directory = layout::ensure_engine_dir(&data_dir, cluster, &set)?;
        Ok(Engine::open(&directory, options)?)
    })
    .await??;
    let engine = Arc::new(engine);
    let optimes = engine.subscribe();
    let handler = (config.handler)(engine.clone());
    let server = bind(set_name, binding, handler).await?;
    let forwarder = forward_last_write(optimes, server.clone());
    Ok((engine, server, forwarder))
}

/// Starts a replica set's server as `binding` says.
async fn bind(
    set_name: &str,
    binding: Binding,
    handler: Arc<dyn CommandHandler>,
) -> anyhow::Result<ServerHandle> {
    let ports: Vec<u16> = match binding {
        Binding::Any => vec![0],
        Binding::From(first) => (first..first.saturating_add(1000)).collect(),
        // The port was just released; a moment may pass before it can be bound again.
        Binding::Exact(port) => vec![port; 50],
    };
    let exact = matches!(binding, Binding::Exact(_));
    let mut last_error = None;
    for port in ports {
        let mut server_config = ServerConfig::new(set_name);
        server_config.port = port;
        match rewind_wire::start(server_config, Some(handler.clone())).await {
            Ok(server) => return Ok(server),
            Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
                last_error = Some(error);
                if exact {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            Err(error) => return Err(error.into()),
        }
    }
    Err(anyhow::anyhow!(
        "no port to serve replica set {set_name}: {last_error:?}"
    ))
}

/// Keeps `hello.lastWrite` current with the engine's newest oplog entry.
fn forward_last_write(
    mut optimes: watch::Receiver<Option<bson::Timestamp>>,
    server: ServerHandle,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let latest = *optimes.borrow_and_update();
            if let Some(op_time) = latest {
                server.set_last_write(LastWrite {
                    op_time,
                    wall_time: DateTime::now(),
                });
            }
            if optimes.changed().await.is_err() {
                return;
            }
        }
    })
}

async fn stop_cluster(cluster: Running) {
    for set in cluster.replica_sets {
        set.server.shutdown().await;
        set.last_write_forwarder.abort();
    }
}

async fn remove_data(data_dir: &Path, id: ObjectId) -> std::io::Result<()> {
    match tokio::fs::remove_dir_all(layout::cluster_dir(data_dir, id)).await {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// Removes the data of clusters this replica no longer hosts (deleted, or moved away while
/// it was down).
async fn remove_orphans(store: &dyn MetadataStore, clusters: &Clusters) -> anyhow::Result<()> {
    let data_dir = &clusters.config.data_dir;
    let hosted: HashSet<ObjectId> = store
        .host_clusters(&clusters.config.replica)
        .await?
        .iter()
        .map(|cluster| cluster.id)
        .collect();
    let mut entries = match tokio::fs::read_dir(data_dir.join("clusters")).await {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error.into()),
    };
    while let Some(entry) = entries.next_entry().await? {
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(|name| name.parse::<ObjectId>().ok()) else {
            continue;
        };
        if !hosted.contains(&id) {
            remove_data(data_dir, id).await?;
            tracing::info!(cluster.id = %id, "removed the data of a deleted cluster");
        }
    }
    Ok(())
}
