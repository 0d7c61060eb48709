//! Namespace (`db.collection`) parsing and validation with mongod's rules.

use crate::error::{EngineError, Result};

/// Longest database name mongod accepts, in bytes.
const MAX_DB_NAME: usize = 63;
/// Longest full namespace mongod accepts, in bytes.
const MAX_NS: usize = 255;

/// Checks a database name: non-empty, at most 63 bytes, none of `/\. "$` or NUL.
pub fn validate_db_name(db: &str) -> Result<()> {
    if db.is_empty() {
        return Err(EngineError::InvalidNamespace(
            "database name cannot be empty".into(),
        ));
    }
    if db.len() > MAX_DB_NAME {
        return Err(EngineError::InvalidNamespace(format!(
            "db name is too long: {} bytes, max {MAX_DB_NAME}",
            db.len()
        )));
    }
    if let Some(c) = db
        .chars()
        .find(|c| matches!(c, '/' | '\\' | '.' | ' ' | '"' | '$' | '\0'))
    {
        return Err(EngineError::InvalidNamespace(format!(
            "Invalid database name: '{}' contains an invalid character {c:?}",
            db.replace('\0', "\\0")
        )));
    }
    Ok(())
}

/// Checks a collection name: non-empty, no `$`, no NUL, not starting with `.`.
pub fn validate_collection_name(coll: &str) -> Result<()> {
    if coll.is_empty() {
        return Err(EngineError::InvalidNamespace(
            "Collection names cannot be empty".into(),
        ));
    }
    if coll.contains('$') || coll.contains('\0') || coll.starts_with('.') {
        return Err(EngineError::InvalidNamespace(format!(
            "Invalid collection name: {}",
            coll.replace('\0', "\\0")
        )));
    }
    Ok(())
}

/// Splits and validates a full namespace `db.coll` (split at the first dot).
pub fn parse_ns(ns: &str) -> Result<(&str, &str)> {
    let Some((db, coll)) = ns.split_once('.') else {
        return Err(EngineError::InvalidNamespace(format!(
            "Invalid namespace specified '{ns}'"
        )));
    };
    validate_db_name(db)?;
    validate_collection_name(coll)?;
    if ns.len() > MAX_NS {
        return Err(EngineError::InvalidNamespace(format!(
            "Fully qualified namespace is too long. Namespace: {ns} Max: {MAX_NS}"
        )));
    }
    Ok((db, coll))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_rejects_like_mongod() {
        assert_eq!(parse_ns("test.users").unwrap(), ("test", "users"));
        assert_eq!(parse_ns("test.a.b").unwrap(), ("test", "a.b"));
        for bad in [
            "test", ".c", "te st.c", "a$b.c", "a/b.c", "db.", "db.a$b", "db.\0", "d\"b.c",
        ] {
            let e = parse_ns(bad).unwrap_err();
            assert_eq!(e.code(), 73, "{bad}");
        }
        let long_db = "d".repeat(64);
        assert!(parse_ns(&format!("{long_db}.c")).is_err());
        assert!(parse_ns(&format!("{}.c", "d".repeat(63))).is_ok());
        assert!(parse_ns(&format!("db.{}", "c".repeat(253))).is_err());
        assert!(parse_ns(&format!("db.{}", "c".repeat(252))).is_ok());
    }
}
