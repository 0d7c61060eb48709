//! Filter document → [`Node`] tree.

use bson::{Bson, Document};

use super::{CmpOp, InItem, Node, Pred};
use crate::aggregate::expr::Expr;
use crate::compare::Num;
use crate::error::{QueryError, QueryResult};
use crate::path;
use crate::regex::MongoRegex;
use crate::types::TypeSpec;

/// Parses a whole filter document into an implicit `$and` of its clauses.
pub(super) fn parse_document(filter: &Document) -> QueryResult<Node> {
    let mut clauses = Vec::with_capacity(filter.len());
    for (key, value) in filter {
        if let Some(op) = key.strip_prefix('$') {
            if let Some(node) = parse_top_level(op, value)? {
                clauses.push(node);
            }
        } else {
            clauses.push(parse_field(key, value)?);
        }
    }
    Ok(Node::And(clauses))
}

fn parse_top_level(op: &str, value: &Bson) -> QueryResult<Option<Node>> {
    match op {
        "and" | "or" | "nor" => {
            let children = parse_clause_list(value)?;
            Ok(Some(match op {
                "and" => Node::And(children),
                "or" => Node::Or(children),
                _ => Node::Nor(children),
            }))
        }
        "comment" => Ok(None),
        "expr" => Ok(Some(Node::Expr(Box::new(Expr::parse(value)?)))),
        "where" | "text" | "jsonSchema" | "sampleRate" | "alwaysTrue" | "alwaysFalse" => Err(
            QueryError::not_implemented(format!("${op} is not supported by this server")),
        ),
        _ => Err(QueryError::bad_value(format!(
            "unknown top level operator: ${op}. If you have a field name that starts with a \
             '$' symbol, consider using $getField or $setField."
        ))),
    }
}

fn parse_clause_list(value: &Bson) -> QueryResult<Vec<Node>> {
    let Bson::Array(items) = value else {
        return Err(QueryError::bad_value(
            "$and/$or/$nor must be a nonempty array",
        ));
    };
    if items.is_empty() {
        return Err(QueryError::bad_value(
            "$and/$or/$nor must be a nonempty array",
        ));
    }
    items
        .iter()
        .map(|item| match item {
            Bson::Document(d) => parse_document(d),
            _ => Err(QueryError::bad_value(
                "$or/$and/$nor entries need to be full objects",
            )),
        })
        .collect()
}

/// The operators of `value` when it is an operator object (`{$gt: 1, ...}`): the server
/// decides on the first field alone, and one whose first field is `$ref` is a DBRef value.
fn is_operator_object(value: &Bson) -> Option<&Document> {
    match value {
        Bson::Document(d)
            if d.keys()
                .next()
                .is_some_and(|k| k.starts_with('$') && k != "$ref") =>
        {
            Some(d)
        }
        _ => None,
    }
}

fn parse_field(key: &str, value: &Bson) -> QueryResult<Node> {
    let pred = match is_operator_object(value) {
        Some(ops) => parse_operators(ops)?,
        None => implicit_equality(value),
    };
    Ok(Node::Path {
        path: key.to_owned(),
        parts: path::split(key),
        pred,
    })
}

/// `{a: <value>}`: a regex literal pattern-matches, anything else is `$eq`.
fn implicit_equality(value: &Bson) -> Pred {
    match value {
        Bson::RegularExpression(re) => match MongoRegex::from_bson(re) {
            Ok(compiled) => Pred::Regex(compiled),
            // An uncompilable stored regex can still match an identical regex value.
            Err(_) => Pred::Eq(value.clone()),
        },
        other => Pred::Eq(other.clone()),
    }
}

/// Parses `{$op: arg, ...}` on one field into a conjunction.
fn parse_operators(ops: &Document) -> QueryResult<Pred> {
    let mut preds = Vec::with_capacity(ops.len());
    let regex_options = ops.get("$options");
    if regex_options.is_some() && !ops.contains_key("$regex") {
        return Err(QueryError::bad_value("$options needs a $regex"));
    }
    for (op, arg) in ops {
        match op.as_str() {
            "$options" => {}
            "$regex" => preds.push(parse_regex(arg, regex_options)?),
            _ => preds.push(parse_operator(op, arg)?),
        }
    }
    Ok(if preds.len() == 1 {
        preds.swap_remove(0)
    } else {
        Pred::And(preds)
    })
}

fn parse_operator(op: &str, arg: &Bson) -> QueryResult<Pred> {
    Ok(match op {
        "$eq" => Pred::Eq(arg.clone()),
        "$ne" => {
            if matches!(arg, Bson::RegularExpression(_)) {
                return Err(QueryError::bad_value("Can't have regex as arg to $ne."));
            }
            Pred::Not(Box::new(Pred::Eq(arg.clone())))
        }
        "$gt" | "$gte" | "$lt" | "$lte" if matches!(arg, Bson::RegularExpression(_)) => {
            return Err(QueryError::bad_value(format!(
                "Can't have RegEx as arg to {op}."
            )));
        }
        "$gt" => Pred::Cmp(CmpOp::Gt, arg.clone()),
        "$gte" => Pred::Cmp(CmpOp::Gte, arg.clone()),
        "$lt" => Pred::Cmp(CmpOp::Lt, arg.clone()),
        "$lte" => Pred::Cmp(CmpOp::Lte, arg.clone()),
        "$in" => Pred::In(parse_in_list(op, arg)?),
        "$nin" => Pred::Not(Box::new(Pred::In(parse_in_list(op, arg)?))),
        "$exists" => {
            if truthy(arg) {
                Pred::Exists
            } else {
                Pred::Not(Box::new(Pred::Exists))
            }
        }
        "$type" => Pred::Type(match arg {
            Bson::Array(items) => items
                .iter()
                .map(TypeSpec::parse)
                .collect::<QueryResult<_>>()?,
            single => vec![TypeSpec::parse(single)?],
        }),
        "$size" => parse_size(arg)?,
        "$mod" => parse_mod(arg)?,
        "$all" => parse_all(arg)?,
        "$elemMatch" => parse_elem_match(arg)?,
        "$not" => parse_not(arg)?,
        "$near" | "$nearSphere" | "$geoWithin" | "$geoIntersects" | "$within" | "$bitsAllSet"
        | "$bitsAllClear" | "$bitsAnySet" | "$bitsAnyClear" | "$jsonSchema" => {
            return Err(QueryError::not_implemented(format!(
                "{op} is not supported by this server"
            )));
        }
        _ => return Err(QueryError::bad_value(format!("unknown operator: {op}"))),
    })
}

/// MongoDB truthiness for `$exists` and friends: false, 0, null and
/// undefined are false; everything else is true.
pub(crate) fn truthy(value: &Bson) -> bool {
    match value {
        Bson::Boolean(b) => *b,
        Bson::Null | Bson::Undefined => false,
        other => Num::of(other).is_none_or(|n| n.as_f64() != 0.0),
    }
}

fn parse_regex(arg: &Bson, options: Option<&Bson>) -> QueryResult<Pred> {
    let explicit_options = match options {
        None => None,
        Some(Bson::String(s)) => Some(s.as_str()),
        Some(_) => return Err(QueryError::bad_value("$options has to be a string")),
    };
    let compiled = match arg {
        Bson::String(pattern) => MongoRegex::new(pattern, explicit_options.unwrap_or(""))?,
        Bson::RegularExpression(re) => {
            if explicit_options.is_some() && !re.options.as_str().is_empty() {
                return Err(QueryError::bad_value(
                    "options set in both $regex and $options",
                ));
            }
            let opts = explicit_options.unwrap_or(re.options.as_str());
            MongoRegex::new(re.pattern.as_str(), opts)?
        }
        _ => return Err(QueryError::bad_value("$regex has to be a string")),
    };
    Ok(Pred::Regex(compiled))
}

fn parse_in_list(op: &str, arg: &Bson) -> QueryResult<Vec<InItem>> {
    let Bson::Array(items) = arg else {
        return Err(QueryError::bad_value(format!("{} needs an array", op)));
    };
    items
        .iter()
        .map(|item| match item {
            Bson::RegularExpression(re) => Ok(InItem::Regex(MongoRegex::from_bson(re)?)),
            _ if is_operator_object(item).is_some() => {
                Err(QueryError::bad_value("cannot nest $ under $in"))
            }
            other => Ok(InItem::Eq(other.clone())),
        })
        .collect()
}

fn parse_size(arg: &Bson) -> QueryResult<Pred> {
    let Some(num) = Num::of(arg) else {
        return Err(QueryError::bad_value("$size needs a number"));
    };
    let f = num.as_f64();
    if f.fract() != 0.0 || f.is_nan() {
        return Err(QueryError::bad_value("$size must be a whole number"));
    }
    if f < 0.0 {
        return Ok(Pred::Never);
    }
    // Whole, non-negative and saturating: no array is longer than usize::MAX.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(Pred::Size(f as usize))
}

fn parse_mod(arg: &Bson) -> QueryResult<Pred> {
    let Bson::Array(items) = arg else {
        return Err(QueryError::bad_value("malformed mod, needs to be an array"));
    };
    if items.len() < 2 {
        return Err(QueryError::bad_value("malformed mod, not enough elements"));
    }
    if items.len() > 2 {
        return Err(QueryError::bad_value("malformed mod, too many elements"));
    }
    let as_int = |b: &Bson, what: &str| -> QueryResult<i64> {
        let n = Num::of(b)
            .ok_or_else(|| QueryError::bad_value(format!("malformed mod, {what} not a number")))?;
        // Truncation toward zero is the server's documented behaviour; past the 64-bit
        // range (or NaN) it refuses the value.
        match n {
            Num::Int(i) => Some(i),
            other => super::eval::float_to_i64(other.as_f64()),
        }
        .ok_or_else(|| {
            QueryError::bad_value(format!(
                "malformed mod, {what} value is invalid :: caused by :: Out of bounds coercing \
                 to integral value"
            ))
        })
    };
    let divisor = as_int(&items[0], "divisor")?;
    let remainder = as_int(&items[1], "remainder")?;
    if divisor == 0 {
        return Err(QueryError::bad_value("divisor cannot be 0"));
    }
    Ok(Pred::Mod { divisor, remainder })
}

fn parse_all(arg: &Bson) -> QueryResult<Pred> {
    let Bson::Array(items) = arg else {
        return Err(QueryError::bad_value("$all needs an array"));
    };
    if items.is_empty() {
        // `$all: []` matches nothing.
        return Ok(Pred::Never);
    }
    let preds = items
        .iter()
        .map(|item| match is_operator_object(item) {
            Some(ops) => match ops.get("$elemMatch") {
                Some(inner) if ops.len() == 1 => parse_elem_match(inner),
                _ => Err(QueryError::bad_value("no $ expressions in $all")),
            },
            None => Ok(implicit_equality(item)),
        })
        .collect::<QueryResult<Vec<_>>>()?;
    Ok(Pred::And(preds))
}

pub(super) fn parse_elem_match(arg: &Bson) -> QueryResult<Pred> {
    let Bson::Document(spec) = arg else {
        return Err(QueryError::bad_value("$elemMatch needs an Object"));
    };
    // The value form applies operators to each element; the query form matches
    // embedded documents.
    if starts_with_value_operator(spec) {
        match parse_operators(spec)? {
            Pred::And(preds) => Ok(Pred::ElemMatchValue(preds)),
            single => Ok(Pred::ElemMatchValue(vec![single])),
        }
    } else {
        Ok(Pred::ElemMatchQuery(Box::new(parse_document(spec)?)))
    }
}

/// Whether `spec` holds operators on a value rather than a query: the server decides on the
/// first field, and an operator other than a logical one selects the value form (`$elemMatch`,
/// `$pull`).
pub(crate) fn starts_with_value_operator(spec: &Document) -> bool {
    spec.keys().next().is_some_and(|k| {
        k.starts_with('$') && !matches!(k.as_str(), "$and" | "$or" | "$nor" | "$expr" | "$where")
    })
}

fn parse_not(arg: &Bson) -> QueryResult<Pred> {
    match arg {
        Bson::RegularExpression(re) => {
            Ok(Pred::Not(Box::new(Pred::Regex(MongoRegex::from_bson(re)?))))
        }
        Bson::Document(ops) => {
            if ops.is_empty() {
                return Err(QueryError::bad_value("$not cannot be empty"));
            }
            Ok(Pred::Not(Box::new(parse_operators(ops)?)))
        }
        _ => Err(QueryError::bad_value("$not needs a regex or a document")),
    }
}
