//! Behavioural tests of rewind-query against MongoDB's documented semantics.

mod aggregate;
mod filter;
mod positional;
mod projection;
mod props;
mod update;

use bson::{Bson, Document};
use rewind_query::QueryError;

/// A BSON regular expression value.
pub fn re(pattern: &str, options: &str) -> Bson {
    Bson::RegularExpression(bson::Regex {
        pattern: pattern.to_owned().try_into().expect("pattern"),
        options: options.to_owned().try_into().expect("options"),
    })
}

/// The error code of a failed result.
pub fn code<T: std::fmt::Debug>(result: Result<T, QueryError>) -> i32 {
    match result {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code,
    }
}

/// Unwraps a `Document` from a `Bson`.
pub fn as_doc(b: Bson) -> Document {
    match b {
        Bson::Document(d) => d,
        other => panic!("not a document: {other:?}"),
    }
}
