//! What the server hands to command implementations, and how they answer.

use std::net::SocketAddr;

use async_trait::async_trait;
use bson::{Document, doc};

/// The connection a command arrived on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionContext {
    /// Server-unique connection id (`hello.connectionId`), starting at 1.
    pub id: u64,
    /// The client's address (`whatsmyuri`).
    pub peer: SocketAddr,
}

/// A parsed command.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandRequest {
    /// Target database: `$db` of an `OP_MSG`, or the namespace's database
    /// of an `OP_QUERY` on `<db>.$cmd`.
    pub db: String,
    /// The command name: the body's first key.
    pub name: String,
    /// The command document, with every `OP_MSG` document sequence merged in
    /// as an array field named by its identifier (e.g. `documents`).
    pub body: Document,
    /// The connection the command arrived on.
    pub connection: ConnectionContext,
    /// The client set `moreToCome` and reads no reply (unacknowledged writes);
    /// whatever the handler returns is dropped.
    pub more_to_come: bool,
}

/// Implements the data commands (`find`, `insert`, ...) on behalf of the
/// server. Handshake and admin commands are answered by the server first and
/// never reach the handler.
#[async_trait]
pub trait CommandHandler: Send + Sync + 'static {
    /// Runs `request` and returns its reply document (with `ok`), or `None`
    /// when the command is unknown, which the server turns into
    /// `CommandNotFound` (code 59) as `mongod` does.
    async fn handle(&self, request: &CommandRequest) -> Option<Document>;
}

/// A `mongod` error reply: `{ok: 0.0, errmsg, code, codeName}`.
pub fn error_reply(code: i32, code_name: &str, errmsg: impl Into<String>) -> Document {
    doc! { "ok": 0.0, "errmsg": errmsg.into(), "code": code, "codeName": code_name }
}

/// The reply to a command nobody implements.
pub fn command_not_found(name: &str) -> Document {
    error_reply(59, "CommandNotFound", format!("no such command: '{name}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_reply_has_mongod_shape() {
        let reply = command_not_found("frobnicate");
        assert_eq!(
            reply,
            doc! { "ok": 0.0, "errmsg": "no such command: 'frobnicate'", "code": 59, "codeName": "CommandNotFound" }
        );
    }
}
