//! The engine's single error type.
//!
//! Every variant maps to a mongod error code through [`EngineError::code`], so the command
//! layer can build `{ok: 0, code, codeName, errmsg}` replies. `Display` never carries SQL text
//! or file paths: storage failures are reported as a generic message and keep their cause in
//! [`std::error::Error::source`] for logs only.

use std::fmt;

use bson::{Bson, Document};

/// Result alias used across the engine.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// What mongod's 11000 reply needs (`keyPattern`, `keyValue`, the index name).
#[derive(Debug, Clone, PartialEq)]
pub struct DuplicateKey {
    /// Namespace `db.coll` of the write.
    pub ns: String,
    /// Name of the violated index, e.g. `_id_`.
    pub index: String,
    /// The index key pattern, e.g. `{a: 1}` (mongod's `keyPattern`).
    pub key_pattern: Document,
    /// The duplicated value, e.g. `{a: 5}` (mongod's `keyValue`).
    pub key_value: Document,
}

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A unique index (including `_id_`) already holds the key (mongod 11000 DuplicateKey).
    #[error(
        "E11000 duplicate key error collection: {} index: {} dup key: {}",
        .0.ns, .0.index, Shell(&Bson::Document(.0.key_value.clone()))
    )]
    DuplicateKey(Box<DuplicateKey>),
    /// The collection or database does not exist (26 NamespaceNotFound).
    #[error("ns not found: {0}")]
    NamespaceNotFound(String),
    /// The collection already exists (48 NamespaceExists).
    #[error("Collection {0} already exists.")]
    NamespaceExists(String),
    /// The name breaks MongoDB's namespace rules (73 InvalidNamespace).
    #[error("{0}")]
    InvalidNamespace(String),
    /// No index of that name (27 IndexNotFound).
    #[error("index not found with name [{0}]")]
    IndexNotFound(String),
    /// An equivalent index exists with other options or name (85 IndexOptionsConflict).
    #[error("{0}")]
    IndexOptionsConflict(String),
    /// An index of that name exists with another key pattern (86 IndexKeySpecsConflict).
    #[error("{0}")]
    IndexKeySpecsConflict(String),
    /// The index specification is malformed or unsupported (67 CannotCreateIndex).
    #[error("{0}")]
    CannotCreateIndex(String),
    /// An option an index of this kind cannot take, e.g. `unique` on `_id` (197
    /// InvalidIndexSpecificationOption).
    #[error("{0}")]
    InvalidIndexSpecificationOption(String),
    /// A compound index would need two array fields of one document (171).
    #[error("cannot index parallel arrays [{0}] [{1}]")]
    CannotIndexParallelArrays(String, String),
    /// A replacement tried to change `_id` (66 ImmutableField).
    #[error("{0}")]
    ImmutableField(String),
    /// The operation is not allowed, e.g. dropping the `_id_` index (72 InvalidOptions).
    #[error("{0}")]
    InvalidOptions(String),
    /// The operation is not allowed in this state, e.g. renaming onto itself (20).
    #[error("{0}")]
    IllegalOperation(String),
    /// Bad input value, e.g. a document without `_id` or an unsupported oplog entry (2 BadValue).
    #[error("{0}")]
    BadValue(String),
    /// A value of the wrong type, e.g. an index option `unique: "yes"` (14 TypeMismatch).
    #[error("{0}")]
    TypeMismatch(String),
    /// The bytes are not a valid BSON document (22 InvalidBSON).
    #[error("invalid BSON: {0}")]
    InvalidBson(String),
    /// The on-disk store failed (1 InternalError); the cause is kept as the source only.
    #[error("internal storage error")]
    Storage(#[source] rusqlite::Error),
    /// A filesystem operation failed (1 InternalError); the cause is kept as the source only.
    #[error("internal I/O error")]
    Io(#[source] std::io::Error),
}

impl EngineError {
    /// The mongod error code for this error.
    pub fn code(&self) -> i32 {
        match self {
            Self::DuplicateKey(_) => 11000,
            Self::NamespaceNotFound(_) => 26,
            Self::NamespaceExists(_) => 48,
            Self::InvalidNamespace(_) => 73,
            Self::IndexNotFound(_) => 27,
            Self::IndexOptionsConflict(_) => 85,
            Self::IndexKeySpecsConflict(_) => 86,
            Self::CannotCreateIndex(_) => 67,
            Self::InvalidIndexSpecificationOption(_) => 197,
            Self::CannotIndexParallelArrays(..) => 171,
            Self::ImmutableField(_) => 66,
            Self::InvalidOptions(_) => 72,
            Self::IllegalOperation(_) => 20,
            Self::BadValue(_) => 2,
            Self::TypeMismatch(_) => 14,
            Self::InvalidBson(_) => 22,
            Self::Storage(_) | Self::Io(_) => 1,
        }
    }

    /// The mongod `codeName` for this error.
    pub fn code_name(&self) -> &'static str {
        match self {
            Self::DuplicateKey(_) => "DuplicateKey",
            Self::NamespaceNotFound(_) => "NamespaceNotFound",
            Self::NamespaceExists(_) => "NamespaceExists",
            Self::InvalidNamespace(_) => "InvalidNamespace",
            Self::IndexNotFound(_) => "IndexNotFound",
            Self::IndexOptionsConflict(_) => "IndexOptionsConflict",
            Self::IndexKeySpecsConflict(_) => "IndexKeySpecsConflict",
            Self::CannotCreateIndex(_) => "CannotCreateIndex",
            Self::InvalidIndexSpecificationOption(_) => "InvalidIndexSpecificationOption",
            Self::CannotIndexParallelArrays(..) => "CannotIndexParallelArrays",
            Self::ImmutableField(_) => "ImmutableField",
            Self::InvalidOptions(_) => "InvalidOptions",
            Self::IllegalOperation(_) => "IllegalOperation",
            Self::BadValue(_) => "BadValue",
            Self::TypeMismatch(_) => "TypeMismatch",
            Self::InvalidBson(_) => "InvalidBSON",
            Self::Storage(_) | Self::Io(_) => "InternalError",
        }
    }
}

impl From<rusqlite::Error> for EngineError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Storage(e)
    }
}

impl From<rusqlite::types::FromSqlError> for EngineError {
    fn from(e: rusqlite::types::FromSqlError) -> Self {
        Self::Storage(rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Blob,
            Box::new(e),
        ))
    }
}

impl From<std::io::Error> for EngineError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<rewind_bson::BsonError> for EngineError {
    fn from(e: rewind_bson::BsonError) -> Self {
        Self::InvalidBson(e.to_string())
    }
}

impl From<bson::error::Error> for EngineError {
    fn from(e: bson::error::Error) -> Self {
        Self::InvalidBson(e.to_string())
    }
}

/// A value as mongod prints one in messages (`BSONElement::toString`): `{ a: 1, b: "x" }`,
/// doubles with a fraction (`1.0`), `ObjectId('…')`, `new Date(…)`, `[ 1, 2 ]`.
struct Shell<'a>(&'a Bson);

impl fmt::Display for Shell<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Bson::Document(doc) if doc.is_empty() => f.write_str("{}"),
            Bson::Document(doc) => {
                f.write_str("{ ")?;
                for (i, (key, value)) in doc.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{key}: {}", Shell(value))?;
                }
                f.write_str(" }")
            }
            Bson::Array(items) if items.is_empty() => f.write_str("[]"),
            Bson::Array(items) => {
                f.write_str("[ ")?;
                for (i, item) in items.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{}", Shell(item))?;
                }
                f.write_str(" ]")
            }
            Bson::String(s) | Bson::Symbol(s) => write!(f, "{s:?}"),
            Bson::Double(d) if d.is_finite() && d.fract() == 0.0 && d.abs() < 1e15 => {
                write!(f, "{d:.1}")
            }
            Bson::Double(d) => write!(f, "{d}"),
            Bson::Int32(i) => write!(f, "{i}"),
            Bson::Int64(i) => write!(f, "{i}"),
            Bson::Decimal128(d) => write!(f, "{d}"),
            Bson::Boolean(b) => write!(f, "{b}"),
            Bson::Null => f.write_str("null"),
            Bson::Undefined => f.write_str("undefined"),
            Bson::MinKey => f.write_str("MinKey"),
            Bson::MaxKey => f.write_str("MaxKey"),
            Bson::ObjectId(oid) => write!(f, "ObjectId('{oid}')"),
            Bson::DateTime(date) => write!(f, "new Date({})", date.timestamp_millis()),
            Bson::Timestamp(ts) => write!(f, "Timestamp({}, {})", ts.time, ts.increment),
            Bson::RegularExpression(re) => write!(f, "/{}/{}", re.pattern, re.options),
            other => write!(f, "{other}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use bson::{doc, oid::ObjectId};

    use super::*;

    #[test]
    fn duplicate_keys_print_as_mongod_prints_them() {
        let err = |key_value: Document| {
            EngineError::DuplicateKey(Box::new(DuplicateKey {
                ns: "db.c".into(),
                index: "a_1".into(),
                key_pattern: doc! {"a": 1},
                key_value,
            }))
            .to_string()
        };
        assert_eq!(
            err(doc! {"a": 1}),
            "E11000 duplicate key error collection: db.c index: a_1 dup key: { a: 1 }"
        );
        assert!(err(doc! {"_id": 1.0}).ends_with("dup key: { _id: 1.0 }"));
        assert!(err(doc! {"a": "a@x", "b": [1, 2.5]}).ends_with(r#"{ a: "a@x", b: [ 1, 2.5 ] }"#));
        let oid = ObjectId::parse_str("5f0000000000000000000001").unwrap();
        assert!(
            err(doc! {"a": oid, "b": null})
                .ends_with("{ a: ObjectId('5f0000000000000000000001'), b: null }")
        );
    }
}
