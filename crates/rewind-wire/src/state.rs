//! State shared by the accept loop, the connections and the server handle.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bson::oid::ObjectId;
use bson::{DateTime, Timestamp};
use tokio::sync::{Semaphore, watch};

use crate::command::CommandHandler;
use crate::server::ServerConfig;

/// The newest write, as reported in `hello.lastWrite`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LastWrite {
    /// Optime of the write (oplog timestamp).
    pub op_time: Timestamp,
    /// Wall-clock time of the write.
    pub wall_time: DateTime,
}

pub(crate) struct Shared {
    pub(crate) config: ServerConfig,
    pub(crate) local_addr: SocketAddr,
    /// `"127.0.0.1:<port>"`: the one member of the replica set.
    pub(crate) host: String,
    /// `topologyVersion.processId`: new for every server start.
    pub(crate) process_id: ObjectId,
    /// `topologyVersion.counter`; awaitable `hello`s wait for it to change.
    pub(crate) topology_counter: watch::Sender<i64>,
    unavailable: Mutex<Option<String>>,
    pub(crate) accepting: AtomicBool,
    pub(crate) shutdown: watch::Sender<bool>,
    pub(crate) started: Instant,
    pub(crate) start_time: DateTime,
    next_connection_id: AtomicU64,
    next_request_id: AtomicI32,
    pub(crate) permits: Arc<Semaphore>,
    last_write: Mutex<LastWrite>,
    pub(crate) handler: Option<Arc<dyn CommandHandler>>,
}

/// A poisoned lock only means another task panicked while holding it; the
/// data (a plain value) is still usable, and this crate must not panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub(crate) fn new(
        config: ServerConfig,
        local_addr: SocketAddr,
        handler: Option<Arc<dyn CommandHandler>>,
    ) -> Self {
        let start_time = DateTime::now();
        // Until the data layer reports a write, the replica set's creation
        // (this start) is the newest write, as after `replSetInitiate`.
        let seconds = u32::try_from(start_time.timestamp_millis() / 1000).unwrap_or(u32::MAX);
        let permits = Arc::new(Semaphore::new(config.max_connections));
        Shared {
            host: format!("127.0.0.1:{}", local_addr.port()),
            config,
            local_addr,
            process_id: ObjectId::new(),
            topology_counter: watch::Sender::new(0),
            unavailable: Mutex::new(None),
            accepting: AtomicBool::new(true),
            shutdown: watch::Sender::new(false),
            started: Instant::now(),
            start_time,
            next_connection_id: AtomicU64::new(1),
            next_request_id: AtomicI32::new(1),
            permits,
            last_write: Mutex::new(LastWrite {
                op_time: Timestamp {
                    time: seconds,
                    increment: 1,
                },
                wall_time: start_time,
            }),
            handler,
        }
    }

    pub(crate) fn next_connection_id(&self) -> u64 {
        self.next_connection_id.fetch_add(1, Ordering::Relaxed)
    }

    /// `requestID` of the next reply (wrapping is harmless: drivers match
    /// replies by `responseTo`).
    pub(crate) fn next_request_id(&self) -> i32 {
        self.next_request_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn total_connections_created(&self) -> u64 {
        self.next_connection_id.load(Ordering::Relaxed) - 1
    }

    pub(crate) fn current_connections(&self) -> usize {
        self.config
            .max_connections
            .saturating_sub(self.permits.available_permits())
    }

    pub(crate) fn unavailable_reason(&self) -> Option<String> {
        lock(&self.unavailable).clone()
    }

    pub(crate) fn set_unavailable(&self, reason: Option<String>) {
        let changed = {
            let mut current = lock(&self.unavailable);
            let changed = current.is_some() != reason.is_some();
            *current = reason;
            changed
        };
        if changed {
            // A topology change: wakes awaitable hellos so monitors learn now.
            self.topology_counter.send_modify(|counter| *counter += 1);
        }
    }

    pub(crate) fn last_write(&self) -> LastWrite {
        *lock(&self.last_write)
    }

    pub(crate) fn set_last_write(&self, write: LastWrite) {
        *lock(&self.last_write) = write;
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// Resolves once shutdown is signalled (or the signal is gone). The guard
/// `wait_for` returns is dropped here so callers' futures stay `Send`.
pub(crate) async fn shutdown_signalled(receiver: &mut watch::Receiver<bool>) {
    let _ = receiver.wait_for(|stopping| *stopping).await;
}
