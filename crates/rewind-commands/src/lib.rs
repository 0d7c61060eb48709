//! The data commands of a rewind cluster, served over its storage engine.
//!
//! [`Commands`] implements [`CommandHandler`] for the wire server: it parses each command
//! with mongod's rules, evaluates filters, updates and pipelines with `rewind-query`, and
//! reads and writes through `rewind-engine` on blocking threads. Replies and error codes
//! follow mongod 8.0; options rewind does not support are refused, never ignored.

mod crud;
mod cursors;
mod ddl;
mod error;
mod indexes;
mod oplog;
mod options;
mod reader;
mod reply;
mod source;

use std::sync::Arc;

use async_trait::async_trait;
use bson::Document;
use rewind_engine::Engine;
use rewind_wire::{CommandHandler, CommandRequest};

pub use cursors::{CursorManager, IDLE_TIMEOUT};
pub use error::{CommandError, Result};

/// Answers the data commands of one replica set.
pub struct Commands {
    engine: Arc<Engine>,
    cursors: CursorManager,
}

impl Commands {
    /// Commands over `engine`.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self {
            engine,
            cursors: CursorManager::default(),
        }
    }

    /// Runs a synchronous engine operation on a blocking thread, so long writes and scans
    /// never stall the connections served by the async runtime.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || f(&engine)).await?
    }

    async fn run(&self, request: &CommandRequest) -> Option<Result<Document>> {
        let body = &request.body;
        let known = matches!(
            request.name.as_str(),
            "find"
                | "getMore"
                | "killCursors"
                | "insert"
                | "update"
                | "delete"
                | "findAndModify"
                | "count"
                | "distinct"
                | "aggregate"
                | "listDatabases"
                | "listCollections"
                | "create"
                | "drop"
                | "dropDatabase"
                | "renameCollection"
                | "createIndexes"
                | "listIndexes"
                | "dropIndexes"
                | "applyOps"
        );
        if !known {
            return None;
        }
        if let Err(e) = options::check_no_transaction(body) {
            return Some(Err(e));
        }
        Some(match request.name.as_str() {
            "find" => crud::find::find(self, request).await,
            "getMore" => crud::find::get_more(self, request).await,
            "killCursors" => crud::find::kill_cursors(self, request),
            "insert" => crud::insert::insert(self, request).await,
            "update" => crud::update::update(self, request).await,
            "delete" => crud::delete::delete(self, request).await,
            "findAndModify" => crud::modify::find_and_modify(self, request).await,
            "count" => crud::count::count(self, request).await,
            "distinct" => crud::count::distinct(self, request).await,
            "aggregate" => crud::aggregate::aggregate(self, request).await,
            "listDatabases" => ddl::list_databases(self, request).await,
            "listCollections" => ddl::list_collections(self, request).await,
            "create" => ddl::create(self, request).await,
            "drop" => ddl::drop(self, request).await,
            "dropDatabase" => ddl::drop_database(self, request).await,
            "renameCollection" => ddl::rename_collection(self, request).await,
            "createIndexes" => indexes::create_indexes(self, request).await,
            "listIndexes" => indexes::list_indexes(self, request).await,
            "dropIndexes" => indexes::drop_indexes(self, request).await,
            "applyOps" => oplog::apply_ops(self, request).await,
            _ => return None,
        })
    }
}

#[async_trait]
impl CommandHandler for Commands {
    async fn handle(&self, request: &CommandRequest) -> Option<Document> {
        let outcome = self.run(request).await?;
        Some(outcome.unwrap_or_else(|e| {
            tracing::debug!(command = %request.name, code = e.code(), error = %e, "command failed");
            e.to_reply()
        }))
    }
}
