//! Command-document parsing: field validation, typed option getters, namespaces.

use bson::{Bson, Document};

use crate::error::{CommandError, Result};

/// Fields any driver may send with any command: accepted, and checked where they matter
/// (`txnNumber` by retryable writes, `readConcern` by [`check_read_concern`]); rewind has one
/// node, and writes are durable on acknowledgement whatever the write concern.
const GENERIC_FIELDS: &[&str] = &[
    "$db",
    "lsid",
    "txnNumber",
    "$clusterTime",
    "readConcern",
    "writeConcern",
    "$readPreference",
    "comment",
    "maxTimeMS",
    "apiVersion",
    "apiStrict",
    "apiDeprecationErrors",
    "$client",
    "autocommit",
    "startTransaction",
    "mayBypassWriteBlocking",
];

/// Rejects fields the command does not know, as mongod's IDL parser does (code 40415), so an
/// unsupported option never silently changes the result.
pub fn check_fields(body: &Document, command: &str, allowed: &[&str]) -> Result<()> {
    for key in body.keys().skip(1) {
        let key = key.as_str();
        if !allowed.contains(&key) && !GENERIC_FIELDS.contains(&key) {
            return Err(CommandError::unknown_field(command, key));
        }
    }
    Ok(())
}

/// Like [`check_fields`] for a sub-document (a write statement): every key is checked.
pub fn check_all_fields(doc: &Document, context: &str, allowed: &[&str]) -> Result<()> {
    match doc.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => Err(CommandError::unknown_field(context, key)),
        None => Ok(()),
    }
}

/// Refuses a sub-document (a write statement) missing one of `required` (40414).
pub fn check_required(doc: &Document, context: &str, required: &[&str]) -> Result<()> {
    match required.iter().find(|field| !doc.contains_key(**field)) {
        Some(field) => Err(CommandError::new_missing(context, field)),
        None => Ok(()),
    }
}

/// Refuses multi-document transactions, which rewind does not support (238: a driver turns
/// mongod's 20 on a write into "this deployment does not support retryable writes").
pub fn check_no_transaction(body: &Document) -> Result<()> {
    let starts = matches!(body.get("startTransaction"), Some(Bson::Boolean(true)));
    let in_txn = matches!(body.get("autocommit"), Some(Bson::Boolean(false)));
    if starts || in_txn {
        return Err(CommandError::not_implemented(
            "Multi-document transactions are not supported by rewind",
        ));
    }
    Ok(())
}

/// Checks `readConcern`. Every level but `snapshot` holds on one node whose reads see every
/// acknowledged write (`afterClusterTime` included); `snapshot` and `atClusterTime` would need
/// reads at a past point in time, which rewind refuses rather than answer from the present.
pub fn check_read_concern(body: &Document) -> Result<()> {
    let concern = match body.get("readConcern") {
        None => return Ok(()),
        Some(Bson::Document(concern)) => concern,
        Some(other) => {
            return Err(CommandError::type_mismatch(format!(
                "BSON field 'readConcern' is the wrong type '{}', expected type 'object'",
                type_name(other)
            )));
        }
    };
    check_all_fields(
        concern,
        "readConcern",
        &[
            "level",
            "afterClusterTime",
            "atClusterTime",
            "afterOpTime",
            "provenance",
        ],
    )?;
    match concern.get("level") {
        None => {}
        Some(Bson::String(level)) => match level.as_str() {
            "local" | "available" | "majority" | "linearizable" => {}
            "snapshot" => {
                return Err(CommandError::not_implemented(
                    "readConcern level 'snapshot' is not supported by rewind",
                ));
            }
            other => {
                // mongod's IDL enum error (throwBadEnumValue) is BadValue.
                return Err(CommandError::bad_value(format!(
                    "Enumeration value '{other}' for field 'readConcern.level' is not a valid \
                     value."
                )));
            }
        },
        Some(other) => {
            return Err(CommandError::type_mismatch(format!(
                "BSON field 'readConcern.level' is the wrong type '{}', expected type 'string'",
                type_name(other)
            )));
        }
    }
    if concern.contains_key("atClusterTime") {
        return Err(CommandError::not_implemented(
            "readConcern 'atClusterTime' is not supported by rewind",
        ));
    }
    Ok(())
}

/// mongod's type alias of a value, for error messages.
pub fn type_name(value: &Bson) -> &'static str {
    match value {
        Bson::Double(_) => "double",
        Bson::String(_) => "string",
        Bson::Document(_) => "object",
        Bson::Array(_) => "array",
        Bson::Binary(_) => "binData",
        Bson::Undefined => "undefined",
        Bson::ObjectId(_) => "objectId",
        Bson::Boolean(_) => "bool",
        Bson::DateTime(_) => "date",
        Bson::Null => "null",
        Bson::RegularExpression(_) => "regex",
        Bson::DbPointer(_) => "dbPointer",
        Bson::JavaScriptCode(_) => "javascript",
        Bson::Symbol(_) => "symbol",
        Bson::JavaScriptCodeWithScope(_) => "javascriptWithScope",
        Bson::Int32(_) => "int",
        Bson::Timestamp(_) => "timestamp",
        Bson::Int64(_) => "long",
        Bson::Decimal128(_) => "decimal",
        Bson::MinKey => "minKey",
        Bson::MaxKey => "maxKey",
    }
}

fn wrong_type(command: &str, field: &str, value: &Bson, expected: &str) -> CommandError {
    CommandError::type_mismatch(format!(
        "BSON field '{command}.{field}' is the wrong type '{}', expected type{expected}",
        type_name(value)
    ))
}

/// An integral number of any numeric type (doubles only when whole).
pub fn as_i64(value: &Bson) -> Option<i64> {
    match value {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        Bson::Double(f) if f.fract() == 0.0 && f.is_finite() && f.abs() < 9.0e18 => Some(*f as i64),
        _ => None,
    }
}

/// An optional integer option.
pub fn get_i64(body: &Document, command: &str, field: &str) -> Result<Option<i64>> {
    match body.get(field) {
        None | Some(Bson::Null) => Ok(None),
        Some(v) => as_i64(v)
            .map(Some)
            .ok_or_else(|| wrong_type(command, field, v, "s '[long, int, decimal, double]'")),
    }
}

/// An optional non-negative integer option (`skip`, `batchSize` ...), refused when
/// negative as mongod's IDL validator does (51024).
pub fn get_non_negative(body: &Document, command: &str, field: &str) -> Result<Option<u64>> {
    match get_i64(body, command, field)? {
        None => Ok(None),
        Some(n) => u64::try_from(n)
            .map(Some)
            .map_err(|_| CommandError::negative(field, n)),
    }
}

/// An optional boolean option (numbers are accepted as mongod does).
pub fn get_bool(body: &Document, command: &str, field: &str) -> Result<Option<bool>> {
    match body.get(field) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::Boolean(b)) => Ok(Some(*b)),
        Some(v) => match as_i64(v) {
            Some(n) => Ok(Some(n != 0)),
            None => Err(wrong_type(command, field, v, " 'bool'")),
        },
    }
}

/// An optional document option.
pub fn get_doc<'a>(body: &'a Document, command: &str, field: &str) -> Result<Option<&'a Document>> {
    match body.get(field) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::Document(d)) => Ok(Some(d)),
        Some(v) => Err(wrong_type(command, field, v, " 'object'")),
    }
}

/// An optional string option.
pub fn get_str<'a>(body: &'a Document, command: &str, field: &str) -> Result<Option<&'a str>> {
    match body.get(field) {
        None => Ok(None),
        Some(Bson::String(s)) => Ok(Some(s)),
        Some(v) => Err(wrong_type(command, field, v, " 'string'")),
    }
}

/// A required array of documents (`documents`, `updates`, `deletes`, `pipeline`).
pub fn get_doc_array(body: &Document, command: &str, field: &str) -> Result<Vec<Document>> {
    match body.get(field) {
        None => Err(CommandError::new_missing(command, field)),
        Some(Bson::Array(items)) => items
            .iter()
            .map(|item| match item {
                Bson::Document(d) => Ok(d.clone()),
                other => Err(wrong_type(command, field, other, " 'object'")),
            })
            .collect(),
        Some(v) => Err(wrong_type(command, field, v, " 'array'")),
    }
}

/// Refuses a non-simple collation: rewind compares strings bytewise only.
pub fn check_collation(body: &Document, command: &str) -> Result<()> {
    match get_doc(body, command, "collation")? {
        None => Ok(()),
        Some(c) if c.is_empty() || c.get_str("locale").is_ok_and(|l| l == "simple") => Ok(()),
        Some(_) => Err(CommandError::not_implemented(
            "collations other than 'simple' are not supported by rewind",
        )),
    }
}

/// The full namespace `db.coll` named by the command's first field.
pub fn command_ns(db: &str, body: &Document, command: &str) -> Result<String> {
    match body.get(command) {
        Some(Bson::String(coll)) if !coll.is_empty() => {
            let ns = format!("{db}.{coll}");
            rewind_engine::parse_ns(&ns)?;
            Ok(ns)
        }
        Some(Bson::String(_)) => Err(CommandError::invalid_namespace(
            "Collection names cannot be empty",
        )),
        Some(other) => Err(CommandError::invalid_namespace(format!(
            "collection name has invalid type {}",
            type_name(other)
        ))),
        None => Err(CommandError::invalid_namespace("missing collection name")),
    }
}

impl CommandError {
    /// 40414 (IDL): a required field is missing.
    pub fn new_missing(command: &str, field: &str) -> Self {
        Self::Command {
            code: 40414,
            code_name: "Location40414",
            message: format!("BSON field '{command}.{field}' is missing but a required field"),
        }
    }
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;

    #[test]
    fn unknown_fields_are_refused_generic_ones_ignored() {
        let body = doc! {"find": "c", "lsid": {}, "$db": "d", "filter": {}};
        assert!(check_fields(&body, "find", &["filter"]).is_ok());
        let err = check_fields(&doc! {"find": "c", "frob": 1}, "find", &["filter"]).unwrap_err();
        assert_eq!(err.code(), 40415);
        assert_eq!(
            err.to_string(),
            "BSON field 'find.frob' is an unknown field."
        );
    }

    #[test]
    fn transactions_are_refused() {
        assert!(check_no_transaction(&doc! {"find": "c", "startTransaction": true}).is_err());
        assert!(check_no_transaction(&doc! {"find": "c", "autocommit": false}).is_err());
        assert!(check_no_transaction(&doc! {"find": "c", "txnNumber": 1i64}).is_ok());
        let concern = |rc: Document| check_read_concern(&doc! {"find": "c", "readConcern": rc});
        for ok in [
            doc! {},
            doc! {"level": "majority"},
            doc! {"level": "local", "afterClusterTime": bson::Timestamp { time: 1, increment: 1 }},
        ] {
            assert!(concern(ok.clone()).is_ok(), "{ok}");
        }
        let refused = |rc: Document| concern(rc).err().map(|e| e.code());
        assert_eq!(refused(doc! {"level": "snapshot"}), Some(238));
        assert_eq!(
            refused(doc! {"atClusterTime": bson::Timestamp { time: 1, increment: 1 }}),
            Some(238)
        );
        assert_eq!(refused(doc! {"level": "foo"}), Some(2));
        assert_eq!(refused(doc! {"level": 1}), Some(14));
        assert_eq!(refused(doc! {"bogus": 1}), Some(40415));
    }

    #[test]
    fn numbers_parse_across_types() {
        let body = doc! {"limit": 2.0, "skip": -1, "bad": "x", "b": 1};
        assert_eq!(get_i64(&body, "find", "limit").ok().flatten(), Some(2));
        assert_eq!(
            get_non_negative(&body, "find", "skip").map_err(|e| e.code()),
            Err(51024)
        );
        assert_eq!(get_i64(&body, "find", "bad").map_err(|e| e.code()), Err(14));
        assert_eq!(get_bool(&body, "find", "b").ok().flatten(), Some(true));
        assert_eq!(as_i64(&Bson::Double(1.5)), None);
    }

    #[test]
    fn namespaces_are_validated() {
        let body = doc! {"find": "c"};
        assert_eq!(command_ns("d", &body, "find").ok().as_deref(), Some("d.c"));
        assert!(command_ns("d", &doc! {"find": 1}, "find").is_err());
        assert!(command_ns("d", &doc! {"find": "a$b"}, "find").is_err());
    }
}
