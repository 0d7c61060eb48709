//! Checks of raw BSON that both ends of a write need: the wire server checks every document
//! a client sends, and the storage engine every document it is asked to store, whoever
//! calls it.
//!
//! * [`check_document`]: one validating walk over a document's bytes, at every depth,
//!   accepting exactly what `bson`'s conversion to a `Document` accepts.
//! * [`canonical`]: what makes a document encode back to the same bytes after that
//!   conversion (no repeated key, arrays keyed `"0"`, `"1"`, ...).
//! * [`decimal`]: a Decimal128 as sign, coefficient and exponent, which index keys and
//!   exact comparisons read.

pub mod canonical;
pub mod decimal;
mod walk;

pub use walk::{BsonError, Checked, MAX_DEPTH, check_document, cstring_end};
