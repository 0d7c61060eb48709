//! MongoDB query semantics over BSON: the comparison order, query filters,
//! projections, sorts, update operators, aggregation pipelines and `distinct`.
//!
//! Everything here is pure: no I/O, no storage, no async. A command layer
//! parses the user's documents once and then applies them to candidate
//! documents fetched from storage. Every failure is a [`QueryError`] carrying
//! mongod's `code`, `codeName` and message, so it can be returned verbatim as
//! `{ok: 0, errmsg, code, codeName}`.
//!
//! ```
//! use bson::doc;
//! use rewind_query::filter::Filter;
//! use rewind_query::projection::Projection;
//! use rewind_query::sort::SortSpec;
//! use rewind_query::update::{Update, UpdateContext};
//!
//! let filter = Filter::parse(&doc! {"qty": {"$gte": 10}, "tags": "red"})?;
//! let mut docs = vec![
//!     doc! {"_id": 1, "qty": 25, "tags": ["red", "blank"]},
//!     doc! {"_id": 2, "qty": 50, "tags": ["red"]},
//!     doc! {"_id": 3, "qty": 5, "tags": ["red"]},
//! ];
//! docs.retain(|d| filter.matches(d));
//! SortSpec::parse(&doc! {"qty": -1})?.sort(&mut docs);
//! let projection = Projection::parse(&doc! {"qty": 1, "_id": 0})?;
//! assert_eq!(projection.apply(&docs[0])?, doc! {"qty": 50});
//!
//! let update = Update::parse_document(&doc! {"$inc": {"qty": 1}})?;
//! let ctx = UpdateContext {
//!     is_upsert_insert: false,
//!     now: bson::DateTime::now(),
//!     positional_index: None,
//! };
//! assert!(update.apply(&mut docs[0], &ctx)?);
//! assert_eq!(docs[0].get_i32("qty").ok(), Some(51));
//! # Ok::<(), rewind_query::QueryError>(())
//! ```
//!
//! Known deviations from mongod are listed on the items concerned; unsupported
//! features fail with code 238 `NotImplemented`. Regular expressions are PCRE2's,
//! as mongod's are; Decimal128 values compare exactly and compute as IEEE 754
//! decimal128 (decNumber), as mongod's do.
#![deny(missing_docs)]

pub mod aggregate;
mod arith;
pub mod compare;
mod decimal;
pub mod distinct;
pub mod error;
pub mod filter;
mod now;
mod path;
pub mod projection;
pub mod regex;
pub mod sort;
mod types;
pub mod update;

pub use compare::{compare, values_equal};
pub use error::{QueryError, QueryResult};
pub(crate) use now::now;
pub use now::with_now;
