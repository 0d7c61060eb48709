//! Update documents: replacement or operator form (`$set`, `$inc`, ...).

mod apply;
mod array_ops;
mod parse;
pub(crate) mod paths;

use bson::{Bson, Document};

use crate::error::QueryResult;
use crate::filter::Filter;
use crate::sort::SortSpec;

/// A parsed update.
#[derive(Debug, Clone)]
pub enum Update {
    /// A whole-document replacement (`_id` is preserved).
    Replacement(Document),
    /// Field-level update operators, pre-sorted into application order.
    Operators(Vec<FieldUpdate>),
}

/// Per-call context for [`Update::apply`].
#[derive(Debug, Clone, Copy)]
pub struct UpdateContext {
    /// True when applying to an upsert's seed document (enables `$setOnInsert`
    /// and allows setting `_id`).
    pub is_upsert_insert: bool,
    /// The time `$currentDate` writes.
    pub now: bson::DateTime,
    /// The array index the positional `$` operator stands for: pass
    /// [`Filter::positional_index`] of the document being updated.
    pub positional_index: Option<usize>,
}

/// One operator applied to one path.
#[derive(Debug, Clone)]
pub struct FieldUpdate {
    path: String,
    parts: Vec<String>,
    op: UpdateOp,
}

/// A [`FieldUpdate`] whose positional components (`$`, `$[]`) have been
/// resolved against one document.
#[derive(Debug)]
struct Target<'a> {
    path: String,
    parts: Vec<String>,
    op: &'a UpdateOp,
}

#[derive(Debug, Clone)]
enum UpdateOp {
    Set(Bson),
    SetOnInsert(Bson),
    Unset,
    Inc(Bson),
    Mul(Bson),
    Min(Bson),
    Max(Bson),
    CurrentDate { timestamp: bool },
    Rename { to: String, to_parts: Vec<String> },
    Push(PushSpec),
    AddToSet(Vec<Bson>),
    Pull(PullCond),
    PullAll(Vec<Bson>),
    Pop { first: bool },
}

/// `$push` with its modifiers.
#[derive(Debug, Clone)]
struct PushSpec {
    each: Vec<Bson>,
    position: Option<i64>,
    slice: Option<i64>,
    sort: Option<PushSort>,
}

#[derive(Debug, Clone)]
enum PushSort {
    /// Sort whole elements (`$sort: 1 | -1`).
    Whole { descending: bool },
    /// Sort embedded documents by fields.
    Fields(SortSpec),
}

/// A `$pull` condition.
#[derive(Debug, Clone)]
enum PullCond {
    /// Remove elements equal to the value.
    Equal(Bson),
    /// Remove elements matching an operator expression or a regex
    /// (evaluated as the predicate on a wrapper field).
    Value(Box<Filter>),
    /// Remove embedded documents matching a query.
    Query(Box<Filter>),
}

impl Update {
    /// Parses an update: a document (replacement or operators). Pipeline-style
    /// updates (arrays) are rejected as unsupported.
    pub fn parse(update: &Bson) -> QueryResult<Update> {
        parse::parse(update)
    }

    /// Parses an update document.
    pub fn parse_document(update: &Document) -> QueryResult<Update> {
        parse::parse_document(update)
    }

    /// Whether this is a replacement document.
    pub fn is_replacement(&self) -> bool {
        matches!(self, Update::Replacement(_))
    }

    /// Applies the update to `doc` in place, returning whether the document
    /// changed (mongod's `nModified`). On error `doc` may be partially updated;
    /// callers must discard it, as the server does.
    ///
    /// For an upsert insert, pass the filter's [`Filter::upsert_seed`] as `doc`
    /// with `ctx.is_upsert_insert` set; `_id` is moved first in the result.
    pub fn apply(&self, doc: &mut Document, ctx: &UpdateContext) -> QueryResult<bool> {
        apply::apply(self, doc, ctx)
    }
}
