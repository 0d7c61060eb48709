//! Aggregation expressions: field paths, literals, `$literal`, and a small set
//! of operators. Used by `$project`, `$addFields`, `$group` and `$expr`.

use bson::{Bson, Document};

use super::convert::Target;
use super::dates::DatePart;
use super::strings::StringOp;
use super::vars::Scoped;
use crate::error::{QueryError, QueryResult};
use crate::path;
use crate::types::type_alias;

/// A parsed aggregation expression.
#[derive(Debug, Clone)]
pub enum Expr {
    /// A constant.
    Literal(Bson),
    /// `"$a.b"`: a path into the current document (empty for `$$ROOT`/`$$CURRENT`).
    Field(Vec<String>),
    /// `$$REMOVE`: evaluates to "missing".
    Remove,
    /// `$$NOW`: the command's start time (see [`crate::with_now`]).
    Now,
    /// `$$name.a.b`: a variable of `$let`, `$map`, `$filter` or `$reduce`, and a path into it.
    Var(String, Vec<String>),
    /// `$let`, `$map`, `$filter` or `$reduce`.
    Scoped(Box<Scoped>),
    /// `{a: <expr>, ...}`: a computed sub-document.
    Object(Vec<(String, Expr)>),
    /// `[<expr>, ...]`.
    Array(Vec<Expr>),
    /// `{$op: [args]}`.
    Op(Op, Vec<Expr>),
}

/// Supported expression operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `$add`
    Add,
    /// `$subtract`
    Subtract,
    /// `$multiply`
    Multiply,
    /// `$divide`
    Divide,
    /// `$eq`
    Eq,
    /// `$ne`
    Ne,
    /// `$gt`
    Gt,
    /// `$gte`
    Gte,
    /// `$lt`
    Lt,
    /// `$lte`
    Lte,
    /// `$cmp`
    Cmp,
    /// `$and`
    And,
    /// `$or`
    Or,
    /// `$not`
    Not,
    /// `$cond` (array form; the document form is normalised to it)
    Cond,
    /// `$ifNull`
    IfNull,
    /// `$concat`
    Concat,
    /// `$toLower`
    ToLower,
    /// `$toUpper`
    ToUpper,
    /// `$size`
    Size,
    /// `$isArray`
    IsArray,
    /// `$in`
    In,
    /// `$arrayElemAt`
    ArrayElemAt,
    /// `$type`
    Type,
    /// A date part: `$year`, `$month`, ... (UTC).
    DatePart(DatePart),
    /// `$dateToString` (UTC)
    DateToString,
    /// `$switch` (`[case, then, ..., default?]`)
    Switch,
    /// `$abs`
    Abs,
    /// `$ceil`
    Ceil,
    /// `$floor`
    Floor,
    /// `$concatArrays`
    ConcatArrays,
    /// `$mergeObjects` (expression form)
    MergeObjects,
    /// `$convert` (`[input, to, onError, onNull]`), and whether `onError` and `onNull` were
    /// given.
    Convert(bool, bool),
    /// `$toInt`, `$toString`, ...
    To(Target),
    /// `$strLenCP`, `$split`, `$trim`, ...
    Str(StringOp),
    /// `$round` (`[number, place?]`)
    Round,
    /// `$trunc` (`[number, place?]`)
    Trunc,
}

const OPS: &[(&str, Op, Option<usize>)] = &[
    ("$add", Op::Add, None),
    ("$subtract", Op::Subtract, Some(2)),
    ("$multiply", Op::Multiply, None),
    ("$divide", Op::Divide, Some(2)),
    ("$eq", Op::Eq, Some(2)),
    ("$ne", Op::Ne, Some(2)),
    ("$gt", Op::Gt, Some(2)),
    ("$gte", Op::Gte, Some(2)),
    ("$lt", Op::Lt, Some(2)),
    ("$lte", Op::Lte, Some(2)),
    ("$cmp", Op::Cmp, Some(2)),
    ("$and", Op::And, None),
    ("$or", Op::Or, None),
    ("$not", Op::Not, Some(1)),
    ("$cond", Op::Cond, Some(3)),
    ("$ifNull", Op::IfNull, None),
    ("$concat", Op::Concat, None),
    ("$toLower", Op::ToLower, Some(1)),
    ("$toUpper", Op::ToUpper, Some(1)),
    ("$size", Op::Size, Some(1)),
    ("$isArray", Op::IsArray, Some(1)),
    ("$in", Op::In, Some(2)),
    ("$arrayElemAt", Op::ArrayElemAt, Some(2)),
    ("$type", Op::Type, Some(1)),
    ("$year", Op::DatePart(DatePart::Year), None),
    ("$month", Op::DatePart(DatePart::Month), None),
    ("$dayOfMonth", Op::DatePart(DatePart::DayOfMonth), None),
    ("$hour", Op::DatePart(DatePart::Hour), None),
    ("$minute", Op::DatePart(DatePart::Minute), None),
    ("$second", Op::DatePart(DatePart::Second), None),
    ("$millisecond", Op::DatePart(DatePart::Millisecond), None),
    ("$dayOfYear", Op::DatePart(DatePart::DayOfYear), None),
    ("$dayOfWeek", Op::DatePart(DatePart::DayOfWeek), None),
    ("$week", Op::DatePart(DatePart::Week), None),
    ("$isoWeek", Op::DatePart(DatePart::IsoWeek), None),
    ("$isoWeekYear", Op::DatePart(DatePart::IsoWeekYear), None),
    ("$isoDayOfWeek", Op::DatePart(DatePart::IsoDayOfWeek), None),
    ("$dateToString", Op::DateToString, None),
    ("$switch", Op::Switch, None),
    ("$abs", Op::Abs, Some(1)),
    ("$ceil", Op::Ceil, Some(1)),
    ("$floor", Op::Floor, Some(1)),
    ("$concatArrays", Op::ConcatArrays, None),
    ("$mergeObjects", Op::MergeObjects, None),
    ("$convert", Op::Convert(false, false), None),
    ("$toBool", Op::To(Target::Bool), Some(1)),
    ("$toInt", Op::To(Target::Int), Some(1)),
    ("$toLong", Op::To(Target::Long), Some(1)),
    ("$toDouble", Op::To(Target::Double), Some(1)),
    ("$toDecimal", Op::To(Target::Decimal), Some(1)),
    ("$toString", Op::To(Target::String), Some(1)),
    ("$toObjectId", Op::To(Target::ObjectId), Some(1)),
    ("$toDate", Op::To(Target::Date), Some(1)),
    ("$strLenBytes", Op::Str(StringOp::LenBytes), Some(1)),
    ("$strLenCP", Op::Str(StringOp::LenCodePoints), Some(1)),
    ("$substrCP", Op::Str(StringOp::SubstrCodePoints), Some(3)),
    ("$indexOfCP", Op::Str(StringOp::IndexOfCodePoints), None),
    ("$split", Op::Str(StringOp::Split), Some(2)),
    ("$strcasecmp", Op::Str(StringOp::CaseCompare), Some(2)),
    ("$trim", Op::Str(StringOp::Trim), None),
    ("$ltrim", Op::Str(StringOp::TrimStart), None),
    ("$rtrim", Op::Str(StringOp::TrimEnd), None),
    ("$replaceOne", Op::Str(StringOp::ReplaceOne), None),
    ("$replaceAll", Op::Str(StringOp::ReplaceAll), None),
    ("$regexMatch", Op::Str(StringOp::RegexMatch), None),
    ("$round", Op::Round, None),
    ("$trunc", Op::Trunc, None),
];

/// The name of an operator, for messages.
pub(super) fn op_name(op: Op) -> &'static str {
    OPS.iter()
        .find(|(_, o, _)| *o == op)
        .map_or("$expression", |(name, _, _)| name)
}

impl Expr {
    /// Parses an expression from its BSON form.
    pub fn parse(value: &Bson) -> QueryResult<Expr> {
        match value {
            Bson::String(s) => parse_string(s),
            Bson::Array(items) => Ok(Expr::Array(
                items.iter().map(Expr::parse).collect::<QueryResult<_>>()?,
            )),
            Bson::Document(d) => parse_object(d),
            other => Ok(Expr::Literal(other.clone())),
        }
    }

    /// Evaluates against `doc` (the `$$ROOT`/`$$CURRENT` document); a missing
    /// result is `null`.
    pub fn evaluate(&self, doc: &Document) -> QueryResult<Bson> {
        Ok(self.evaluate_opt(doc)?.unwrap_or(Bson::Null))
    }

    /// Evaluates against `doc`, `None` meaning "missing" (field absent or
    /// `$$REMOVE`), which `$project` omits from its output.
    pub fn evaluate_opt(&self, doc: &Document) -> QueryResult<Option<Bson>> {
        match self {
            Expr::Literal(v) => Ok(Some(v.clone())),
            Expr::Field(parts) if parts.is_empty() => Ok(Some(Bson::Document(doc.clone()))),
            Expr::Field(parts) => Ok(field_path(doc, parts)),
            Expr::Remove => Ok(None),
            Expr::Now => Ok(Some(Bson::DateTime(crate::now()))),
            Expr::Var(name, parts) => Ok(super::vars::value_of(name, parts)),
            Expr::Scoped(scoped) => scoped.evaluate(doc),
            Expr::Object(fields) => {
                let mut out = Document::new();
                for (name, expr) in fields {
                    if let Some(v) = expr.evaluate_opt(doc)? {
                        out.insert(name.clone(), v);
                    }
                }
                Ok(Some(Bson::Document(out)))
            }
            Expr::Array(items) => Ok(Some(Bson::Array(
                items
                    .iter()
                    .map(|e| e.evaluate(doc))
                    .collect::<QueryResult<_>>()?,
            ))),
            Expr::Op(op, args) => super::ops::apply(*op, args, doc),
        }
    }
}

/// An operator's arguments given as an array, or as one expression.
fn positional(arg: &Bson) -> QueryResult<Vec<Expr>> {
    match arg {
        Bson::Array(items) => items.iter().map(Expr::parse).collect(),
        single => Ok(vec![Expr::parse(single)?]),
    }
}

/// `{branches: [{case, then}, ...], default}` as `[case, then, ..., default?]`.
fn parse_switch(arg: &Bson) -> QueryResult<Vec<Expr>> {
    let Bson::Document(spec) = arg else {
        return Err(QueryError::location(
            40060,
            format!(
                "$switch requires an object as an argument, found: {}",
                type_alias(arg)
            ),
        ));
    };
    let mut args = Vec::new();
    let mut default = None;
    for (field, value) in spec {
        match (field.as_str(), value) {
            ("branches", Bson::Array(branches)) => {
                for branch in branches {
                    let Bson::Document(branch) = branch else {
                        return Err(QueryError::location(
                            40062,
                            format!(
                                "$switch expected each branch to be an object, found: {}",
                                type_alias(branch)
                            ),
                        ));
                    };
                    if let Some(other) = branch
                        .keys()
                        .find(|k| !matches!(k.as_str(), "case" | "then"))
                    {
                        return Err(QueryError::location(
                            40063,
                            format!("$switch found an unknown argument to a branch: {other}"),
                        ));
                    }
                    let case = branch.get("case").ok_or_else(|| {
                        QueryError::location(
                            40064,
                            "$switch requires each branch have a 'case' expression",
                        )
                    })?;
                    let then = branch.get("then").ok_or_else(|| {
                        QueryError::location(
                            40065,
                            "$switch requires each branch have a 'then' expression",
                        )
                    })?;
                    args.push(Expr::parse(case)?);
                    args.push(Expr::parse(then)?);
                }
            }
            ("branches", other) => {
                return Err(QueryError::location(
                    40061,
                    format!(
                        "$switch expected an array for 'branches', found: {}",
                        type_alias(other)
                    ),
                ));
            }
            ("default", value) => default = Some(Expr::parse(value)?),
            (other, _) => {
                return Err(QueryError::location(
                    40067,
                    format!("$switch found an unknown argument: {other}"),
                ));
            }
        }
    }
    if args.is_empty() {
        return Err(QueryError::location(
            40068,
            "$switch requires at least one branch.",
        ));
    }
    args.extend(default);
    Ok(args)
}

fn parse_string(s: &str) -> QueryResult<Expr> {
    if let Some(var) = s.strip_prefix("$$") {
        let (name, rest) = var.split_once('.').unwrap_or((var, ""));
        let parts = if rest.is_empty() {
            Vec::new()
        } else {
            path::split(rest)
        };
        return match name {
            "ROOT" | "CURRENT" => Ok(Expr::Field(parts)),
            "REMOVE" => Ok(Expr::Remove),
            "NOW" if parts.is_empty() => Ok(Expr::Now),
            user if super::vars::in_scope(user) => Ok(Expr::Var(user.to_owned(), parts)),
            _ => Err(super::unsupported::variable(name)),
        };
    }
    match s.strip_prefix('$') {
        Some("") => Err(QueryError::location(
            16872,
            "'$' by itself is not a valid FieldPath",
        )),
        Some(p) => Ok(Expr::Field(path::split(p))),
        None => Ok(Expr::Literal(Bson::String(s.to_owned()))),
    }
}

fn parse_object(d: &Document) -> QueryResult<Expr> {
    let Some(first) = d.keys().next() else {
        return Ok(Expr::Object(Vec::new()));
    };
    if !first.starts_with('$') {
        let fields = d
            .iter()
            .map(|(k, v)| {
                if k.starts_with('$') {
                    return Err(QueryError::location(
                        16410,
                        format!("FieldPath field names may not start with '$'. Got '{k}'"),
                    ));
                }
                Ok((k.clone(), Expr::parse(v)?))
            })
            .collect::<QueryResult<_>>()?;
        return Ok(Expr::Object(fields));
    }
    if d.len() != 1 {
        return Err(QueryError::location(
            15983,
            format!(
                "an expression specification must contain exactly one field, the name of the \
                 expression. Found {} fields in {d}",
                d.len()
            ),
        ));
    }
    let arg = d.get(first).unwrap_or(&Bson::Null);
    if first == "$literal" {
        return Ok(Expr::Literal(arg.clone()));
    }
    if let Some(scoped) = Scoped::parse(first, arg)? {
        return Ok(Expr::Scoped(Box::new(scoped)));
    }
    let Some((name, op, arity)) = OPS.iter().find(|(name, _, _)| name == first) else {
        return Err(super::unsupported::expression(first));
    };
    let args = match (op, arg) {
        (Op::Cond, Bson::Document(spec)) => {
            let get = |k: &str| {
                spec.get(k).ok_or_else(|| {
                    QueryError::location(17080, format!("Missing '{k}' parameter to $cond"))
                })
            };
            vec![
                Expr::parse(get("if")?)?,
                Expr::parse(get("then")?)?,
                Expr::parse(get("else")?)?,
            ]
        }
        (Op::DatePart(_), _) => super::dates::parse_date_argument(name, arg)?,
        (Op::DateToString, _) => super::dates::parse_date_to_string(arg)?,
        (Op::Switch, _) => parse_switch(arg)?,
        (Op::Convert(..), _) => {
            let (args, on_error, on_null) = super::convert::parse_convert(arg)?;
            return Ok(Expr::Op(Op::Convert(on_error, on_null), args));
        }
        (Op::Str(string_op), _) => match super::strings::parse_named(*string_op, name, arg)? {
            Some(args) => args,
            None => positional(arg)?,
        },
        _ => positional(arg)?,
    };
    if matches!(op, Op::Round | Op::Trunc) && !(1..=2).contains(&args.len()) {
        return Err(QueryError::location(
            28667,
            format!(
                "Expression {name} takes at least 1 arguments, and at most 2, but {} were passed in.",
                args.len()
            ),
        ));
    }
    if *op == Op::Str(StringOp::IndexOfCodePoints) && !(2..=4).contains(&args.len()) {
        return Err(QueryError::location(
            28667,
            format!(
                "Expression $indexOfCP takes at least 2 arguments, and at most 4, but {} were passed in.",
                args.len()
            ),
        ));
    }
    if let Some(n) = arity
        && args.len() != *n
    {
        return Err(QueryError::location(
            16020,
            format!(
                "Expression {name} takes exactly {n} arguments. {} were passed in.",
                args.len()
            ),
        ));
    }
    if *op == Op::IfNull && args.len() < 2 {
        return Err(QueryError::location(
            1257300,
            format!("$ifNull needs at least two arguments, had: {}", args.len()),
        ));
    }
    Ok(Expr::Op(*op, args))
}

/// `"$a.b"` semantics: arrays along the path map over their elements,
/// dropping elements where the rest of the path is missing.
pub(crate) fn field_path(doc: &Document, parts: &[String]) -> Option<Bson> {
    let (head, rest) = parts.split_first()?;
    follow(doc.get(head)?, rest)
}

fn follow(value: &Bson, parts: &[String]) -> Option<Bson> {
    let Some((head, rest)) = parts.split_first() else {
        return Some(value.clone());
    };
    match value {
        Bson::Document(d) => follow(d.get(head)?, rest),
        Bson::Array(items) => Some(Bson::Array(
            items
                .iter()
                .filter(|item| matches!(item, Bson::Document(_) | Bson::Array(_)))
                .filter_map(|item| follow(item, parts))
                .collect(),
        )),
        _ => None,
    }
}

/// Aggregation truthiness: false, null, missing, undefined and numeric zero
/// are false; everything else (including empty strings and arrays) is true.
pub fn truthy(value: &Bson) -> bool {
    crate::filter::truthy(value)
}
