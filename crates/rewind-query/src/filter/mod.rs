//! Query filters (`find`/`update`/`delete` predicates): parsing and matching.

mod eval;
mod helpers;
mod parse;
mod positional;

pub(crate) use parse::{starts_with_value_operator, truthy};

use bson::{Bson, Document};

use crate::aggregate::expr::Expr;
use crate::error::QueryResult;
use crate::regex::MongoRegex;
use crate::types::TypeSpec;

/// A parsed query filter such as `{a: {$gt: 1}, $or: [{b: 2}, {c: null}]}`.
#[derive(Debug, Clone)]
pub struct Filter {
    root: Node,
}

/// A boolean node of the filter tree.
#[derive(Debug, Clone)]
enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Nor(Vec<Node>),
    /// A predicate on the values found at a dotted path.
    Path {
        path: String,
        parts: Vec<String>,
        pred: Pred,
    },
    /// `$expr`: an aggregation expression evaluated against the document.
    Expr(Box<Expr>),
}

/// A predicate over the values at one path. Positive leaf predicates match when
/// any candidate value (or any element of an array candidate) satisfies them;
/// `Not` negates the whole path result, which is how `$ne`/`$nin`/`$not` work.
#[derive(Debug, Clone)]
enum Pred {
    /// All sub-predicates hold (several operators on one field, `$all`).
    And(Vec<Pred>),
    Not(Box<Pred>),
    Eq(Bson),
    Cmp(CmpOp, Bson),
    Regex(MongoRegex),
    In(Vec<InItem>),
    Exists,
    Type(Vec<TypeSpec>),
    Size(usize),
    /// `$size` with an operand no array length can equal (negative).
    Never,
    Mod {
        divisor: i64,
        remainder: i64,
    },
    ElemMatchQuery(Box<Node>),
    ElemMatchValue(Vec<Pred>),
}

/// An `$elemMatch` predicate on its own, as the find projection operator of that name uses
/// it: which element of an array it picks.
#[derive(Debug, Clone)]
pub struct ElemMatch(Pred);

impl ElemMatch {
    /// Parses the operator's argument, as `{field: {$elemMatch: spec}}` in a filter would.
    pub fn parse(spec: &Document) -> QueryResult<ElemMatch> {
        Ok(ElemMatch(parse::parse_elem_match(&Bson::Document(
            spec.clone(),
        ))?))
    }

    /// The index of the first element of `items` the predicate matches.
    pub fn first_match(&self, items: &[Bson]) -> QueryResult<Option<usize>> {
        eval::elem_match_position(&self.0, items)
    }
}

/// Range comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

/// One `$in`/`$nin` element: a value compared for equality or a regex.
#[derive(Debug, Clone)]
enum InItem {
    Eq(Bson),
    Regex(MongoRegex),
}

impl Filter {
    /// Parses a filter document, rejecting unknown or unsupported operators
    /// with the server's error codes.
    pub fn parse(filter: &Document) -> QueryResult<Filter> {
        Ok(Filter {
            root: parse::parse_document(filter)?,
        })
    }

    /// Whether `doc` matches. A runtime error inside `$expr` counts as no match;
    /// use [`Filter::try_matches`] to surface it as mongod would.
    pub fn matches(&self, doc: &Document) -> bool {
        self.try_matches(doc).unwrap_or(false)
    }

    /// Whether `doc` matches, reporting `$expr` evaluation errors.
    pub fn try_matches(&self, doc: &Document) -> QueryResult<bool> {
        eval::node_matches(&self.root, doc)
    }

    /// Whether the filter is empty (`{}`) and so matches every document.
    pub fn is_match_all(&self) -> bool {
        matches!(&self.root, Node::And(children) if children.is_empty())
    }
}
