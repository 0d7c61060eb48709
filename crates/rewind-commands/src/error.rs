//! The crate's single error type, mapping every failure to mongod's `code`/`codeName`.

use bson::{Document, doc};
use rewind_engine::EngineError;
use rewind_query::QueryError;

/// Result alias used across the crate.
pub type Result<T, E = CommandError> = std::result::Result<T, E>;

/// Everything a command can fail with; [`CommandError::to_reply`] gives mongod's error reply.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// A storage-engine failure (carries its own mongod code).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A query-language failure (filter, update, pipeline ...).
    #[error("{}", .0.message)]
    Query(#[from] QueryError),
    /// A command-level failure with an explicit mongod code.
    #[error("{message}")]
    Command {
        /// mongod's numeric code.
        code: i32,
        /// mongod's `codeName`.
        code_name: &'static str,
        /// The message (`errmsg`).
        message: String,
    },
}

impl CommandError {
    fn new(code: i32, code_name: &'static str, message: impl Into<String>) -> Self {
        Self::Command {
            code,
            code_name,
            message: message.into(),
        }
    }

    /// 2 BadValue.
    pub fn bad_value(message: impl Into<String>) -> Self {
        Self::new(2, "BadValue", message)
    }

    /// 9 FailedToParse.
    pub fn failed_to_parse(message: impl Into<String>) -> Self {
        Self::new(9, "FailedToParse", message)
    }

    /// 14 TypeMismatch.
    pub fn type_mismatch(message: impl Into<String>) -> Self {
        Self::new(14, "TypeMismatch", message)
    }

    /// 20 IllegalOperation.
    pub fn illegal_operation(message: impl Into<String>) -> Self {
        Self::new(20, "IllegalOperation", message)
    }

    /// 26 NamespaceNotFound.
    pub fn namespace_not_found(message: impl Into<String>) -> Self {
        Self::new(26, "NamespaceNotFound", message)
    }

    /// 40415 (IDL): a field the command does not know.
    pub fn unknown_field(command: &str, field: &str) -> Self {
        Self::new(
            40415,
            "Location40415",
            format!("BSON field '{command}.{field}' is an unknown field."),
        )
    }

    /// 43 CursorNotFound.
    pub fn cursor_not_found(id: i64) -> Self {
        Self::new(43, "CursorNotFound", format!("cursor id {id} not found"))
    }

    /// 73 InvalidNamespace.
    pub fn invalid_namespace(message: impl Into<String>) -> Self {
        Self::new(73, "InvalidNamespace", message)
    }

    /// 50 MaxTimeMSExpired: a read ran past its `maxTimeMS`.
    pub fn max_time_expired() -> Self {
        Self::new(50, "MaxTimeMSExpired", "operation exceeded time limit")
    }

    /// 51024: a field that must be `>= 0` was negative (mongod's IDL validator).
    pub fn negative(field: &str, value: i64) -> Self {
        Self::new(
            51024,
            "Location51024",
            format!("BSON field '{field}' value must be >= 0, actual value '{value}'"),
        )
    }

    /// 48 NamespaceExists.
    pub fn namespace_exists(message: impl Into<String>) -> Self {
        Self::new(48, "NamespaceExists", message)
    }

    /// 225 TransactionTooOld: a retryable write older than its session's latest.
    pub fn transaction_too_old(message: impl Into<String>) -> Self {
        Self::new(225, "TransactionTooOld", message)
    }

    /// 217 IncompleteTransactionHistory: whether a retried write ran cannot be told.
    pub fn incomplete_history(message: impl Into<String>) -> Self {
        Self::new(217, "IncompleteTransactionHistory", message)
    }

    /// 59 CommandNotFound.
    pub fn command_not_found(message: impl Into<String>) -> Self {
        Self::new(59, "CommandNotFound", message)
    }

    /// 238 NotImplemented: a real MongoDB feature rewind does not support.
    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(238, "NotImplemented", message)
    }

    /// 13 Unauthorized (mongod's code for a getMore on another namespace).
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(13, "Unauthorized", message)
    }

    /// mongod's numeric code.
    pub fn code(&self) -> i32 {
        match self {
            Self::Engine(e) => e.code(),
            Self::Query(e) => e.code,
            Self::Command { code, .. } => *code,
        }
    }

    /// mongod's `codeName`.
    pub fn code_name(&self) -> &'static str {
        match self {
            Self::Engine(e) => e.code_name(),
            Self::Query(e) => e.code_name,
            Self::Command { code_name, .. } => code_name,
        }
    }

    /// The `keyPattern`/`keyValue` of a duplicate-key error, which mongod adds to 11000 errors.
    pub fn duplicate_key_details(&self) -> Option<(Document, Document)> {
        match self {
            Self::Engine(EngineError::DuplicateKey(d)) => {
                Some((d.key_pattern.clone(), d.key_value.clone()))
            }
            _ => None,
        }
    }

    /// The command reply `{ok: 0, errmsg, code, codeName[, keyPattern, keyValue]}`.
    pub fn to_reply(&self) -> Document {
        let mut reply = doc! {
            "ok": 0.0,
            "errmsg": self.to_string(),
            "code": self.code(),
            "codeName": self.code_name(),
        };
        if let Some((pattern, value)) = self.duplicate_key_details() {
            reply.insert("keyPattern", pattern);
            reply.insert("keyValue", value);
        }
        reply
    }

    /// One `writeErrors` element `{index, code, [keyPattern, keyValue,] errmsg}`.
    pub fn to_write_error(&self, index: usize) -> Document {
        let mut out = doc! {"index": index as i32, "code": self.code()};
        if let Some((pattern, value)) = self.duplicate_key_details() {
            out.insert("keyPattern", pattern);
            out.insert("keyValue", value);
        }
        out.insert("errmsg", self.to_string());
        out
    }
}

impl From<bson::error::Error> for CommandError {
    fn from(e: bson::error::Error) -> Self {
        Self::new(22, "InvalidBSON", e.to_string())
    }
}

impl From<tokio::task::JoinError> for CommandError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::new(1, "InternalError", format!("command task failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_key_reply_carries_pattern_and_value() {
        let err = CommandError::Engine(EngineError::DuplicateKey(Box::new(
            rewind_engine::DuplicateKey {
                ns: "d.c".into(),
                index: "a_1".into(),
                key_pattern: doc! {"a": 1},
                key_value: doc! {"a": 5},
            },
        )));
        let reply = err.to_reply();
        assert_eq!(reply.get_i32("code").ok(), Some(11000));
        assert_eq!(reply.get_document("keyPattern").ok(), Some(&doc! {"a": 1}));
        let we = err.to_write_error(3);
        assert_eq!(we.get_i32("index").ok(), Some(3));
        assert_eq!(we.get_document("keyValue").ok(), Some(&doc! {"a": 5}));
    }

    #[test]
    fn query_error_keeps_its_code() {
        let err = CommandError::from(QueryError::bad_value("unknown operator: $foo"));
        assert_eq!((err.code(), err.code_name()), (2, "BadValue"));
        assert_eq!(err.to_string(), "unknown operator: $foo");
    }
}
