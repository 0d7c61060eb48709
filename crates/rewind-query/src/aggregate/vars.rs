//! Expression variables: `$let`, and the per-element variables of `$map`, `$filter`
//! (`$$this` or their `as` name) and `$reduce` (`$$this`, `$$value`).
//!
//! Names in scope are tracked while an expression is parsed, so that an undefined one fails
//! at parse time (17276) as in mongod; values are bound while it is evaluated. Both are
//! thread-local stacks: parsing and evaluating an expression never leave the thread.

use std::cell::RefCell;
use std::thread::LocalKey;

use bson::{Bson, Document, doc};

use super::expr::{Expr, field_path, truthy};
use crate::compare::whole_i32;
use crate::error::{QueryError, QueryResult};
use crate::types::type_alias;

thread_local! {
    /// User variable names in scope while parsing, innermost last.
    static SCOPE: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    /// Values bound while evaluating, innermost last (`None`: bound to missing).
    static BOUND: RefCell<Vec<(String, Option<Bson>)>> = const { RefCell::new(Vec::new()) };
}

/// Restores a stack to its length when created, when dropped: even a panic unwinding
/// through an evaluation leaves no entry behind on the (reused) thread.
struct Restore<T: 'static> {
    stack: &'static LocalKey<RefCell<Vec<T>>>,
    len: usize,
}

impl<T: 'static> Restore<T> {
    fn push(stack: &'static LocalKey<RefCell<Vec<T>>>, items: impl IntoIterator<Item = T>) -> Self {
        let len = stack.with_borrow(Vec::len);
        stack.with_borrow_mut(|s| s.extend(items));
        Self { stack, len }
    }
}

impl<T: 'static> Drop for Restore<T> {
    fn drop(&mut self) {
        self.stack.with_borrow_mut(|s| s.truncate(self.len));
    }
}

/// Whether a user variable of this name is in scope (parsing).
pub(super) fn in_scope(name: &str) -> bool {
    SCOPE.with_borrow(|scope| scope.iter().any(|n| n == name))
}

/// Parses with `names` in scope.
fn parse_in<T>(names: &[String], parse: impl FnOnce() -> QueryResult<T>) -> QueryResult<T> {
    let _scope = Restore::push(&SCOPE, names.iter().cloned());
    parse()
}

/// Evaluates with `bindings` visible (over outer ones of the same names).
fn evaluate_with<T>(bindings: Vec<(String, Option<Bson>)>, f: impl FnOnce() -> T) -> T {
    let _bound = Restore::push(&BOUND, bindings);
    f()
}

/// The value of `$$name.parts` (missing when unbound, which parsing rules out).
pub(super) fn value_of(name: &str, parts: &[String]) -> Option<Bson> {
    let value = BOUND.with_borrow(|bound| {
        bound
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.clone())
    })?;
    if parts.is_empty() {
        return Some(value);
    }
    // Paths into a variable follow field-path rules (arrays give the values of their
    // elements), as through a field of a document holding it.
    let mut path = vec![String::new()];
    path.extend(parts.iter().cloned());
    field_path(&doc! {"": value}, &path)
}

/// Checks a user variable name: a lowercase ASCII letter or a non-ASCII character first,
/// then letters, digits and `_` (mongod's `variableValidation`).
fn check_name(name: &str) -> QueryResult<()> {
    let Some(first) = name.chars().next() else {
        return Err(QueryError::location(
            16866,
            "empty variable names are not allowed",
        ));
    };
    if first.is_ascii() && !first.is_ascii_lowercase() {
        return Err(QueryError::location(
            16867,
            format!("'{name}' starts with an invalid character for a user variable name"),
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| c.is_ascii() && !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        return Err(QueryError::location(
            16868,
            format!("'{name}' contains an invalid character for a variable name: '{bad}'"),
        ));
    }
    Ok(())
}

/// A parsed `$let`, `$map`, `$filter` or `$reduce`.
#[derive(Debug, Clone)]
pub enum Scoped {
    /// `$let`: variables, then the expression that sees them.
    Let(Vec<(String, Expr)>, Box<Expr>),
    /// `$map`: input, element name, expression per element.
    Map(Box<Expr>, String, Box<Expr>),
    /// `$filter`: input, element name, condition, optional limit.
    Filter(Box<Expr>, String, Box<Expr>, Option<Box<Expr>>),
    /// `$reduce`: input, initial value, expression of `$$value` and `$$this`.
    Reduce(Box<Expr>, Box<Expr>, Box<Expr>),
}

/// The named arguments of `spec`: `not_object` makes the error for an argument that is no
/// document, `unknown` the one for an unknown field.
fn arguments<'a>(
    name: &str,
    spec: &'a Bson,
    known: &[&str],
    not_object: fn(String) -> QueryError,
    unknown: fn(String) -> QueryError,
) -> QueryResult<&'a Document> {
    let Bson::Document(spec) = spec else {
        return Err(not_object(format!(
            "{name} only supports an object as its argument"
        )));
    };
    if let Some(other) = spec.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(unknown(format!(
            "Unrecognized parameter to {name}: {other}"
        )));
    }
    Ok(spec)
}

fn required<'a>(
    spec: &'a Document,
    field: &str,
    missing: fn(String) -> QueryError,
) -> QueryResult<&'a Bson> {
    spec.get(field)
        .ok_or_else(|| missing(format!("Missing '{field}' parameter")))
}

/// The `as` name (default `this`).
fn element_name(spec: &Document) -> QueryResult<String> {
    match spec.get("as") {
        None => Ok("this".to_owned()),
        Some(Bson::String(name)) => {
            check_name(name)?;
            Ok(name.clone())
        }
        Some(other) => Err(QueryError::failed_to_parse(format!(
            "'as' must be a string, found {}",
            type_alias(other)
        ))),
    }
}

impl Scoped {
    /// Parses the operator `name` (one of `$let`, `$map`, `$filter`, `$reduce`).
    pub(super) fn parse(name: &str, spec: &Bson) -> QueryResult<Option<Scoped>> {
        Ok(Some(match name {
            "$let" => {
                let spec = arguments(
                    name,
                    spec,
                    &["vars", "in"],
                    |m| QueryError::location(16874, m),
                    |m| QueryError::location(16875, m),
                )?;
                let Bson::Document(vars) =
                    required(spec, "vars", |m| QueryError::location(16876, m))?
                else {
                    return Err(QueryError::location(
                        16876,
                        "invalid parameter: expected an object (vars)",
                    ));
                };
                let mut bound = Vec::with_capacity(vars.len());
                for (var, value) in vars {
                    check_name(var)?;
                    bound.push((var.clone(), Expr::parse(value)?));
                }
                let names: Vec<String> = bound.iter().map(|(n, _)| n.clone()).collect();
                let body = required(spec, "in", |m| QueryError::location(16877, m))?;
                Scoped::Let(bound, Box::new(parse_in(&names, || Expr::parse(body))?))
            }
            "$map" => {
                let spec = arguments(
                    name,
                    spec,
                    &["input", "as", "in"],
                    |m| QueryError::location(16878, m),
                    |m| QueryError::location(16879, m),
                )?;
                let input =
                    Expr::parse(required(spec, "input", |m| QueryError::location(16880, m))?)?;
                let each = element_name(spec)?;
                let body = required(spec, "in", |m| QueryError::location(16882, m))?;
                let body = parse_in(std::slice::from_ref(&each), || Expr::parse(body))?;
                Scoped::Map(Box::new(input), each, Box::new(body))
            }
            "$filter" => {
                let spec = arguments(
                    name,
                    spec,
                    &["input", "as", "cond", "limit"],
                    |m| QueryError::location(28646, m),
                    |m| QueryError::location(28647, m),
                )?;
                let input =
                    Expr::parse(required(spec, "input", |m| QueryError::location(28648, m))?)?;
                let each = element_name(spec)?;
                let cond = required(spec, "cond", |m| QueryError::location(28650, m))?;
                let cond = parse_in(std::slice::from_ref(&each), || Expr::parse(cond))?;
                let limit = spec
                    .get("limit")
                    .map(Expr::parse)
                    .transpose()?
                    .map(Box::new);
                Scoped::Filter(Box::new(input), each, Box::new(cond), limit)
            }
            "$reduce" => {
                let spec = arguments(
                    name,
                    spec,
                    &["input", "initialValue", "in"],
                    |m| QueryError::location(40075, m),
                    |m| QueryError::location(40076, m),
                )?;
                let input =
                    Expr::parse(required(spec, "input", |m| QueryError::location(40077, m))?)?;
                let initial = Expr::parse(required(spec, "initialValue", |m| {
                    QueryError::location(40078, m)
                })?)?;
                let body = required(spec, "in", |m| QueryError::location(40079, m))?;
                let names = ["this".to_owned(), "value".to_owned()];
                let body = parse_in(&names, || Expr::parse(body))?;
                Scoped::Reduce(Box::new(input), Box::new(initial), Box::new(body))
            }
            _ => return Ok(None),
        }))
    }

    /// Evaluates against `doc`; `None` is missing.
    pub(super) fn evaluate(&self, doc: &Document) -> QueryResult<Option<Bson>> {
        match self {
            Scoped::Let(vars, body) => {
                let values = vars
                    .iter()
                    .map(|(n, e)| Ok((n.clone(), e.evaluate_opt(doc)?)))
                    .collect::<QueryResult<Vec<_>>>()?;
                evaluate_with(values, || body.evaluate_opt(doc))
            }
            Scoped::Map(input, each, body) => {
                let Some(items) = array_input(input, doc, |t| {
                    QueryError::location(16883, format!("input to $map must be an array not {t}"))
                })?
                else {
                    return Ok(Some(Bson::Null));
                };
                let mapped = items
                    .into_iter()
                    .map(|item| {
                        evaluate_with(vec![(each.clone(), Some(item))], || body.evaluate(doc))
                    })
                    .collect::<QueryResult<Vec<_>>>()?;
                Ok(Some(Bson::Array(mapped)))
            }
            Scoped::Filter(input, each, cond, limit) => {
                let Some(items) = array_input(input, doc, |t| {
                    QueryError::location(
                        28651,
                        format!("input to $filter must be an array not {t}"),
                    )
                })?
                else {
                    return Ok(Some(Bson::Null));
                };
                // An empty input is empty before the limit is looked at, as in mongod.
                if items.is_empty() {
                    return Ok(Some(Bson::Array(items)));
                }
                let limit = match limit {
                    None => None,
                    Some(limit) => match limit.evaluate(doc)? {
                        Bson::Null | Bson::Undefined => None,
                        value => Some(filter_limit(&value)?),
                    },
                };
                let mut kept = Vec::new();
                for item in items {
                    if limit.is_some_and(|l| kept.len() >= l) {
                        break;
                    }
                    let keep = evaluate_with(vec![(each.clone(), Some(item.clone()))], || {
                        cond.evaluate(doc)
                    })?;
                    if truthy(&keep) {
                        kept.push(item);
                    }
                }
                Ok(Some(Bson::Array(kept)))
            }
            Scoped::Reduce(input, initial, body) => {
                let Some(items) = array_input(input, doc, |t| {
                    QueryError::location(
                        40080,
                        format!("$reduce requires that 'input' be an array, found: {t}"),
                    )
                })?
                else {
                    return Ok(Some(Bson::Null));
                };
                // Missing stays missing through the steps, as in mongod.
                let mut value = initial.evaluate_opt(doc)?;
                for item in items {
                    let bindings =
                        vec![("this".to_owned(), Some(item)), ("value".to_owned(), value)];
                    value = evaluate_with(bindings, || body.evaluate_opt(doc))?;
                }
                Ok(value)
            }
        }
    }
}

/// An operator's array input: `None` for null or missing, refused when no array.
fn array_input(
    input: &Expr,
    doc: &Document,
    not_array: impl FnOnce(&str) -> QueryError,
) -> QueryResult<Option<Vec<Bson>>> {
    match input.evaluate_opt(doc)? {
        None | Some(Bson::Null | Bson::Undefined) => Ok(None),
        Some(Bson::Array(items)) => Ok(Some(items)),
        Some(other) => Err(not_array(type_alias(&other))),
    }
}

/// `$filter`'s `limit`: a positive whole number within 32 bits.
fn filter_limit(value: &Bson) -> QueryResult<usize> {
    match whole_i32(value) {
        Some(n) if n > 0 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
        Some(n) => Err(QueryError::location(
            327392,
            format!("$filter: limit must be greater than 0: {n}"),
        )),
        None => Err(QueryError::location(
            327391,
            format!("$filter: limit must be represented as a 32-bit integral value: {value}"),
        )),
    }
}
