//! The per-cluster TCP server and the handle that controls it.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::command::{CommandHandler, ConnectionContext};
use crate::connection;
use crate::state::{LastWrite, Shared};

/// How a server is started. The topology is always a one-member replica set
/// whose member is `127.0.0.1:<port>`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Port on 127.0.0.1; 0 picks a free one (see [`ServerHandle::port`]).
    pub port: u16,
    /// Replica-set name (`hello.setName`), as used in `?replicaSet=`.
    pub set_name: String,
    /// `hello.setVersion`.
    pub set_version: i32,
    /// Connections served at once; a connection beyond it is closed at once.
    pub max_connections: usize,
    /// Time a message may take to arrive once its first byte has.
    pub frame_timeout: Duration,
}

impl ServerConfig {
    /// Defaults: free port, setVersion 1, 1000 connections, 30 s per message.
    pub fn new(set_name: impl Into<String>) -> Self {
        ServerConfig {
            port: 0,
            set_name: set_name.into(),
            set_version: 1,
            max_connections: 1000,
            frame_timeout: Duration::from_secs(30),
        }
    }
}

/// Binds 127.0.0.1 and starts serving in the background. Must be called
/// within a Tokio runtime. `handler` answers the data commands; without one
/// they all fail with CommandNotFound.
pub async fn start(
    config: ServerConfig,
    handler: Option<Arc<dyn CommandHandler>>,
) -> io::Result<ServerHandle> {
    if config.max_connections == 0 || u32::try_from(config.max_connections).is_err() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "max_connections must be in 1..=u32::MAX",
        ));
    }
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, config.port)).await?;
    let shared = Arc::new(Shared::new(config, listener.local_addr()?, handler));
    let accept_loop = tokio::spawn(accept(listener, shared.clone()));
    tracing::info!(addr = %shared.local_addr, set = %shared.config.set_name, "wire server listening");
    Ok(ServerHandle {
        shared,
        accept_loop: Arc::new(Mutex::new(Some(accept_loop))),
    })
}

async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = crate::state::shutdown_signalled(&mut shutdown) => break,
        };
        if !shared.accepting.load(Ordering::SeqCst) {
            tracing::debug!(%peer, "refusing connection: not accepting");
            continue;
        }
        let Ok(permit) = shared.permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, limit = shared.config.max_connections, "refusing connection: limit reached");
            continue;
        };
        let context = ConnectionContext {
            id: shared.next_connection_id(),
            peer,
        };
        tokio::spawn(connection::serve(shared.clone(), stream, context, permit));
    }
    tracing::info!(addr = %shared.local_addr, "wire server stopped accepting");
}

/// Controls a running server. Cheap to clone.
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
    accept_loop: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl ServerHandle {
    /// The bound address (127.0.0.1:port).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.shared.local_addr.port()
    }

    /// `"127.0.0.1:<port>"`, the replica-set member name drivers see.
    pub fn host(&self) -> &str {
        &self.shared.host
    }

    /// Makes every command, `hello` included, fail with ShutdownInProgress
    /// (code 91) and `reason` as errmsg, e.g. while a restore swaps data.
    /// Drivers then mark the server Unknown and wait in server selection.
    pub fn set_unavailable(&self, reason: impl Into<String>) {
        self.shared.set_unavailable(Some(reason.into()));
    }

    /// Serves commands again after [`ServerHandle::set_unavailable`].
    pub fn set_available(&self) {
        self.shared.set_unavailable(None);
    }

    /// Whether commands are being served.
    pub fn is_available(&self) -> bool {
        self.shared.unavailable_reason().is_none()
    }

    /// Whether new connections are accepted; refused ones are closed at once.
    /// Existing connections are not affected.
    pub fn set_accepting(&self, accepting: bool) {
        self.shared.accepting.store(accepting, Ordering::SeqCst);
    }

    /// Reports the newest write for `hello.lastWrite` and `replSetGetStatus`.
    pub fn set_last_write(&self, last_write: LastWrite) {
        self.shared.set_last_write(last_write);
    }

    /// Connections open now.
    pub fn connection_count(&self) -> usize {
        self.shared.current_connections()
    }

    /// Stops accepting, closes every connection (interrupting commands in
    /// flight) and returns once the listener and all connections are gone.
    pub async fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
        let accept_loop = self
            .accept_loop
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(accept_loop) = accept_loop {
            let _ = accept_loop.await;
        }
        // Each connection holds a permit until its task ends: owning them
        // all means every connection is closed. They are given back at once
        // so that a concurrent `shutdown` returns as well.
        let all = u32::try_from(self.shared.config.max_connections).unwrap_or(u32::MAX);
        let _ = self.shared.permits.acquire_many(all).await;
    }

    /// Whether [`ServerHandle::shutdown`] was called.
    pub fn is_shut_down(&self) -> bool {
        self.shared.is_shutting_down()
    }
}
