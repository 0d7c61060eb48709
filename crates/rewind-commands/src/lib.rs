//! The data commands of a rewind cluster, served over its storage engine.
//!
//! [`Commands`] implements [`CommandHandler`] for the wire server: it parses each command
//! with mongod's rules, evaluates filters, updates and pipelines with `rewind-query`, and
//! reads and writes through `rewind-engine` on blocking threads. Replies and error codes
//! follow mongod 8.0; options rewind does not support are refused, never ignored.

mod crud;
mod cursors;
mod ddl;
mod deadline;
mod error;
mod explain;
mod hint;
mod indexes;
mod oplog;
mod options;
mod raw;
mod reader;
mod reply;
mod retry;
mod source;
mod stats;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bson::Document;
use rewind_engine::Engine;
use rewind_wire::{CommandHandler, CommandRequest, Reply};

pub use cursors::{CursorManager, IDLE_TIMEOUT};
pub use error::{CommandError, Result};

/// Answers the data commands of one replica set.
pub struct Commands {
    engine: Arc<Engine>,
    cursors: CursorManager,
    retryable: retry::RetryableWrites,
}

impl Commands {
    /// Commands over `engine`.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self {
            engine,
            cursors: CursorManager::default(),
            retryable: retry::RetryableWrites::default(),
        }
    }

    /// Runs a synchronous engine operation on a blocking thread, so long writes and scans
    /// never stall the connections served by the async runtime.
    /// A read under `maxTimeMS` carries its deadline along (see [`deadline`]).
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let engine = self.engine.clone();
        let limit = deadline::current();
        // `$$NOW` is one time for the work, as mongod fixes it when a command starts.
        let now = bson::DateTime::now();
        tokio::task::spawn_blocking(move || {
            rewind_query::with_now(now, || deadline::within(limit, || f(&engine)))
        })
        .await?
    }

    async fn run(&self, request: &CommandRequest) -> Option<Result<Reply>> {
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
                | "dbStats"
                | "dbstats"
                | "collStats"
                | "collstats"
                | "explain"
                | "bulkWrite"
        );
        if !known {
            return None;
        }
        if let Err(e) =
            options::check_no_transaction(body).and_then(|()| options::check_read_concern(body))
        {
            return Some(Err(e));
        }
        // A write resent with its session's txnNumber answers its first reply again.
        match retry::RetryKey::of(request) {
            Err(e) => return Some(Err(e)),
            Ok(Some(key)) => return self.retryable.run(key, self.dispatch(request)).await,
            Ok(None) => {}
        }
        // A read answers MaxTimeMSExpired at maxTimeMS (the wire layer has checked its
        // value), as mongod does; its engine call stops at its next scan chunk. Writes run
        // to the end: stopping one midway would leave part of it applied, and the client
        // unable to tell which part.
        let limit = request.max_time().ok().flatten();
        let read = matches!(
            request.name.as_str(),
            "find"
                | "count"
                | "distinct"
                | "aggregate"
                | "dbStats"
                | "dbstats"
                | "collStats"
                | "collstats"
                | "explain"
        );
        match limit {
            Some(limit) if read => {
                let command = deadline::scope(Instant::now() + limit, self.dispatch(request));
                tokio::time::timeout(limit, command)
                    .await
                    .unwrap_or_else(|_| Some(Err(CommandError::max_time_expired())))
            }
            _ => self.dispatch(request).await,
        }
    }

    async fn dispatch(&self, request: &CommandRequest) -> Option<Result<Reply>> {
        let reply = match request.name.as_str() {
            "find" => return Some(crud::find::find(self, request).await.map(Reply::Raw)),
            "getMore" => return Some(crud::find::get_more(self, request).await.map(Reply::Raw)),
            "killCursors" => crud::find::kill_cursors(self, request),
            "insert" => crud::insert::insert(self, request).await,
            "update" => crud::update::update(self, request).await,
            "delete" => crud::delete::delete(self, request).await,
            "findAndModify" => crud::modify::find_and_modify(self, request).await,
            "count" => crud::count::count(self, request).await,
            "distinct" => crud::count::distinct(self, request).await,
            "aggregate" => return Some(crud::aggregate::aggregate(self, request).await),
            "explain" => explain::explain(self, request).await,
            "bulkWrite" => crud::bulk_write::bulk_write(self, request).await,
            "listDatabases" => ddl::list_databases(self, request).await,
            "listCollections" => {
                return Some(ddl::list_collections(self, request).await.map(Reply::Raw));
            }
            "create" => ddl::create(self, request).await,
            "drop" => ddl::drop(self, request).await,
            "dropDatabase" => ddl::drop_database(self, request).await,
            "renameCollection" => ddl::rename_collection(self, request).await,
            "createIndexes" => indexes::create_indexes(self, request).await,
            "listIndexes" => {
                return Some(indexes::list_indexes(self, request).await.map(Reply::Raw));
            }
            "dropIndexes" => indexes::drop_indexes(self, request).await,
            "applyOps" => oplog::apply_ops(self, request).await,
            // mongod's lowercase aliases.
            "dbStats" | "dbstats" => stats::db_stats(self, request).await,
            "collStats" | "collstats" => stats::coll_stats(self, request).await,
            _ => return None,
        };
        Some(reply.map(Reply::Document))
    }
}

#[async_trait]
impl CommandHandler for Commands {
    async fn handle(&self, request: &CommandRequest) -> Option<Document> {
        let reply = self.handle_raw(request).await?;
        Some(reply.into_document().unwrap_or_else(|e| {
            let (code, name) = e.code();
            rewind_wire::error_reply(code, name, e.to_string())
        }))
    }

    async fn handle_raw(&self, request: &CommandRequest) -> Option<Reply> {
        // Only insert takes its documents raw; every other command reads its sequences as
        // body fields, as mongod's command parser presents them.
        let raw_insert = request.name == "insert"
            && matches!(request.sequences.as_slice(), [s] if s.identifier == "documents");
        let merged = if raw_insert {
            std::borrow::Cow::Borrowed(request)
        } else {
            match request.merged() {
                Ok(merged) => merged,
                Err(e) => {
                    let (code, name) = e.code();
                    return Some(rewind_wire::error_reply(code, name, e.to_string()).into());
                }
            }
        };
        let outcome = self.run(&merged).await?;
        Some(outcome.unwrap_or_else(|e| {
            tracing::debug!(command = %request.name, code = e.code(), error = %e, "command failed");
            e.to_reply().into()
        }))
    }
}
