//! What the server hands to command implementations, and how they answer.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use bson::{Bson, Document, RawDocumentBuf, doc};
use rewind_bson::decimal::nearest_f64;

use crate::error::WireError;
use crate::op_msg::{DocumentSequence, merge_sequences};

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
    /// The command document (the `OP_MSG` body section). [`CommandHandler::handle`] sees
    /// the document sequences merged in as array fields; see [`CommandRequest::merged`].
    pub body: Document,
    /// The `OP_MSG` document sequences, raw, in message order. Their identifiers are
    /// neither body fields nor repeated.
    pub sequences: Vec<DocumentSequence>,
    /// The connection the command arrived on.
    pub connection: ConnectionContext,
    /// The client set `moreToCome` and reads no reply (unacknowledged writes);
    /// whatever the handler returns is dropped.
    pub more_to_come: bool,
}

impl CommandRequest {
    /// The command's time limit, `maxTimeMS`: `None` when absent or 0. mongod takes a
    /// whole number of milliseconds up to 2^31 - 1, of any numeric type; anything else is
    /// refused (the message of a BadValue error).
    pub fn max_time(&self) -> Result<Option<Duration>, String> {
        const LIMIT: i64 = i32::MAX as i64;
        let Some(value) = self.body.get("maxTimeMS") else {
            return Ok(None);
        };
        // A decimal is read as the double nearest it, then held to the same rules.
        let decimal = match value {
            Bson::Decimal128(d) => Some(Bson::Double(nearest_f64(d))),
            _ => None,
        };
        let ms = match decimal.as_ref().unwrap_or(value) {
            Bson::Int32(n) => i64::from(*n),
            Bson::Int64(n) => *n,
            // Whole and within the limit, so the conversion is exact.
            #[allow(clippy::cast_possible_truncation)]
            Bson::Double(f) if f.fract() == 0.0 && f.abs() <= LIMIT as f64 => *f as i64,
            Bson::Double(f) if f.is_finite() && f.abs() <= LIMIT as f64 => {
                return Err(format!("maxTimeMS has a fractional component: {f}"));
            }
            Bson::Double(f) => {
                return Err(format!(
                    "{f} value for maxTimeMS is out of range [0, {LIMIT}]"
                ));
            }
            other => {
                return Err(format!(
                    "maxTimeMS must be a number, not {:?}",
                    other.element_type()
                ));
            }
        };
        if !(0..=LIMIT).contains(&ms) {
            return Err(format!(
                "{ms} value for maxTimeMS is out of range [0, {LIMIT}]"
            ));
        }
        Ok((ms > 0).then(|| Duration::from_millis(ms.unsigned_abs())))
    }

    /// The request with every document sequence merged into the body as an array field
    /// named by its identifier (e.g. `documents`), as mongod's command parser sees it.
    /// Borrowed when there is no sequence.
    pub fn merged(&self) -> Result<Cow<'_, CommandRequest>, WireError> {
        if self.sequences.is_empty() {
            return Ok(Cow::Borrowed(self));
        }
        Ok(Cow::Owned(CommandRequest {
            body: merge_sequences(self.body.clone(), &self.sequences)?,
            sequences: Vec::new(),
            ..self.clone()
        }))
    }
}

/// A command's reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A reply document.
    Document(Document),
    /// A reply already encoded, e.g. a cursor batch of stored documents that is sent
    /// without decoding and re-encoding each one.
    Raw(RawDocumentBuf),
}

impl From<Document> for Reply {
    fn from(document: Document) -> Self {
        Reply::Document(document)
    }
}

impl Reply {
    /// The reply as a document (decoding a raw one).
    pub fn into_document(self) -> Result<Document, WireError> {
        match self {
            Reply::Document(document) => Ok(document),
            Reply::Raw(raw) => {
                Document::try_from(raw.as_ref()).map_err(|e| WireError::InvalidBson(e.to_string()))
            }
        }
    }
}

/// Implements the data commands (`find`, `insert`, ...) on behalf of the
/// server. Handshake and admin commands are answered by the server first and
/// never reach the handler.
#[async_trait]
pub trait CommandHandler: Send + Sync + 'static {
    /// Runs `request` (document sequences merged into its body) and returns its
    /// reply document (with `ok`), or `None` when the command is unknown, which
    /// the server turns into `CommandNotFound` (code 59) as `mongod` does.
    async fn handle(&self, request: &CommandRequest) -> Option<Document>;

    /// What the server calls: `request` as it arrived, document sequences raw in
    /// [`CommandRequest::sequences`]. Handlers override it to take raw documents
    /// and give raw replies; by default it merges the sequences and calls
    /// [`CommandHandler::handle`].
    async fn handle_raw(&self, request: &CommandRequest) -> Option<Reply> {
        match request.merged() {
            Ok(merged) => self.handle(&merged).await.map(Reply::Document),
            Err(error) => {
                let (code, name) = error.code();
                Some(Reply::Document(error_reply(code, name, error.to_string())))
            }
        }
    }
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
