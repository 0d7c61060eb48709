//! String expressions counted in code points (`$strLenCP`, `$substrCP`, `$indexOfCP`) or
//! bytes (`$strLenBytes`), and `$split`, `$trim`/`$ltrim`/`$rtrim`, `$strcasecmp`,
//! `$replaceOne`/`$replaceAll`, with mongod's null handling and error codes.

use std::cell::RefCell;
use std::cmp::Ordering;

use bson::{Bson, Document};

use super::coerce::coerce_to_string;
use super::expr::Expr;
use crate::compare::{Num, whole_i32};
use crate::error::{QueryError, QueryResult};
use crate::regex::MongoRegex;
use crate::types::type_alias;

/// Which string operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringOp {
    /// `$strLenBytes`
    LenBytes,
    /// `$strLenCP`
    LenCodePoints,
    /// `$substrCP`
    SubstrCodePoints,
    /// `$indexOfCP`
    IndexOfCodePoints,
    /// `$split`
    Split,
    /// `$strcasecmp`
    CaseCompare,
    /// `$trim`
    Trim,
    /// `$ltrim`
    TrimStart,
    /// `$rtrim`
    TrimEnd,
    /// `$replaceOne`
    ReplaceOne,
    /// `$replaceAll`
    ReplaceAll,
    /// `$regexMatch`
    RegexMatch,
}

/// The characters `$trim` removes by default: mongod's whitespace list.
const WHITESPACE: &[char] = &[
    '\0', ' ', '\t', '\n', '\u{0B}', '\u{0C}', '\r', '\u{A0}', '\u{1680}', '\u{2000}', '\u{2001}',
    '\u{2002}', '\u{2003}', '\u{2004}', '\u{2005}', '\u{2006}', '\u{2007}', '\u{2008}', '\u{2009}',
    '\u{200A}',
];

/// Parses the named-argument forms: `$trim`-like `{input, chars}` as `[input]` or
/// `[input, chars]`, and `$replace*` `{input, find, replacement}` as
/// `[input, find, replacement]`; `None` for the operators whose arguments are an array.
pub(super) fn parse_named(op: StringOp, name: &str, arg: &Bson) -> QueryResult<Option<Vec<Expr>>> {
    if op == StringOp::RegexMatch {
        return parse_regex_match(arg).map(Some);
    }
    let trim = matches!(op, StringOp::Trim | StringOp::TrimStart | StringOp::TrimEnd);
    let replace = matches!(op, StringOp::ReplaceOne | StringOp::ReplaceAll);
    if !trim && !replace {
        return Ok(None);
    }
    let Bson::Document(spec) = arg else {
        let message = format!(
            "{name} requires an object as an argument, found: {}",
            type_alias(arg)
        );
        return Err(if trim {
            QueryError::location(50696, message)
        } else {
            QueryError::location(51751, message)
        });
    };
    let fields: &[&str] = if trim {
        &["input", "chars"]
    } else {
        &["input", "find", "replacement"]
    };
    if let Some(other) = spec.keys().find(|k| !fields.contains(&k.as_str())) {
        let message = format!("{name} found an unknown argument: {other}");
        return Err(if trim {
            QueryError::location(50694, message)
        } else {
            QueryError::location(51750, message)
        });
    }
    let mut args = Vec::with_capacity(fields.len());
    for field in fields {
        match spec.get(*field) {
            Some(value) => args.push(Expr::parse(value)?),
            // Only `chars` may be left out (the argument list is then shorter).
            None if *field == "chars" => {}
            None => {
                let message = format!("{name} requires '{field}' to be specified");
                return Err(match *field {
                    "input" if trim => {
                        QueryError::location(50695, format!("{name} requires an 'input' field"))
                    }
                    "input" => QueryError::location(51749, message),
                    "find" => QueryError::location(51748, message),
                    _ => QueryError::location(51747, message),
                });
            }
        }
    }
    Ok(Some(args))
}

/// `$regexMatch`'s `{input, regex, options}` as `[input, regex]` or `[input, regex, options]`.
fn parse_regex_match(arg: &Bson) -> QueryResult<Vec<Expr>> {
    let Bson::Document(spec) = arg else {
        return Err(QueryError::location(
            51103,
            format!(
                "$regexMatch expects an object of named arguments but found: {}",
                type_alias(arg)
            ),
        ));
    };
    if let Some(other) = spec
        .keys()
        .find(|k| !matches!(k.as_str(), "input" | "regex" | "options"))
    {
        return Err(QueryError::location(
            31024,
            format!("$regexMatch found an unknown argument: {other}"),
        ));
    }
    let input = spec
        .get("input")
        .ok_or_else(|| QueryError::location(31022, "$regexMatch requires 'input' parameter"))?;
    let regex = spec
        .get("regex")
        .ok_or_else(|| QueryError::location(31023, "$regexMatch requires 'regex' parameter"))?;
    let mut args = vec![Expr::parse(input)?, Expr::parse(regex)?];
    if let Some(options) = spec.get("options") {
        args.push(Expr::parse(options)?);
    }
    // A constant regex is checked when the pipeline is parsed, as mongod compiles it there.
    let constant = |e: Option<&Expr>| match e {
        None => Some(None),
        Some(Expr::Literal(v)) => Some(Some(v.clone())),
        Some(_) => None,
    };
    if let (Some(regex), Some(options)) = (constant(args.get(1)), constant(args.get(2))) {
        regex_of(regex, options)?;
    }
    Ok(args)
}

/// `$regexMatch`'s pattern and options, checked in mongod's order (regex 51105, options
/// 51106, both given 51107, NUL bytes 51109/51110, flags 51108) and compiled (51111);
/// `None` when the regex is null.
fn regex_of(regex: Option<Bson>, options: Option<Bson>) -> QueryResult<Option<MongoRegex>> {
    let nullish = |v: &Option<Bson>| matches!(v, None | Some(Bson::Null | Bson::Undefined));
    let (pattern, regex_options) = match &regex {
        v if nullish(v) => (None, String::new()),
        Some(Bson::String(p)) => (Some(p.clone()), String::new()),
        Some(Bson::RegularExpression(re)) => (
            Some(re.pattern.as_str().to_owned()),
            re.options.as_str().to_owned(),
        ),
        other => {
            return Err(QueryError::location(
                51105,
                format!(
                    "$regexMatch needs 'regex' to be of type string or regex, found: {}",
                    alias(other)
                ),
            ));
        }
    };
    let options = match &options {
        v if nullish(v) => regex_options,
        Some(Bson::String(o)) if regex_options.is_empty() => o.clone(),
        Some(Bson::String(_)) => {
            return Err(QueryError::location(
                51107,
                "$regexMatch: regex option(s) specified in both 'regex' and 'option' fields",
            ));
        }
        other => {
            return Err(QueryError::location(
                51106,
                format!(
                    "$regexMatch needs 'options' to be of type string, found: {}",
                    alias(other)
                ),
            ));
        }
    };
    let Some(pattern) = pattern else {
        return Ok(None);
    };
    if pattern.contains('\0') {
        return Err(QueryError::location(
            51109,
            "$regexMatch: regular expression cannot contain an embedded null byte",
        ));
    }
    if options.contains('\0') {
        return Err(QueryError::location(
            51110,
            "$regexMatch: regular expression options cannot contain an embedded null byte",
        ));
    }
    if let Some(flag) = options
        .chars()
        .find(|c| !matches!(c, 'i' | 'm' | 's' | 'x' | 'u'))
    {
        return Err(QueryError::location(
            51108,
            format!("$regexMatch invalid flag in regex options: {flag}"),
        ));
    }
    compile(&pattern, &options).map(Some).map_err(|e| {
        QueryError::location(
            51111,
            format!("Invalid Regex in $regexMatch: {}", e.message),
        )
    })
}

thread_local! {
    /// The regex `$regexMatch` compiled last on this thread, with its pattern and options: a
    /// constant regex (the usual case) is compiled once, not once per document.
    static LAST_REGEX: RefCell<Option<(String, String, MongoRegex)>> = const { RefCell::new(None) };
}

fn compile(pattern: &str, options: &str) -> QueryResult<MongoRegex> {
    let hit = LAST_REGEX.with_borrow(|last| {
        last.as_ref()
            .filter(|(p, o, _)| p == pattern && o == options)
            .map(|(_, _, re)| re.clone())
    });
    if let Some(re) = hit {
        return Ok(re);
    }
    let re = MongoRegex::new(pattern, options)?;
    LAST_REGEX.set(Some((pattern.to_owned(), options.to_owned(), re.clone())));
    Ok(re)
}

/// `$regexMatch`: the regex is checked and compiled first, then a null input (or regex)
/// gives false.
fn regex_match(args: &[Expr], doc: &Document) -> QueryResult<Bson> {
    let arg = |i: usize| args.get(i).map_or(Ok(None), |e| e.evaluate_opt(doc));
    let (input, regex, options) = (arg(0)?, arg(1)?, arg(2)?);
    let compiled = regex_of(regex, options)?;
    let text = match &input {
        None | Some(Bson::Null | Bson::Undefined) => return Ok(Bson::Boolean(false)),
        Some(Bson::String(s)) => s,
        other => {
            return Err(QueryError::location(
                51104,
                format!(
                    "$regexMatch needs 'input' to be of type string, found: {}",
                    alias(other)
                ),
            ));
        }
    };
    let Some(compiled) = compiled else {
        return Ok(Bson::Boolean(false));
    };
    compiled
        .try_match(text)
        .map(Bson::Boolean)
        .map_err(|reason| {
            QueryError::location(
                51156,
                format!(
                    "Error occurred while executing the regular expression in $regexMatch: {reason}"
                ),
            )
        })
}

/// Evaluates a string operator; `None` is missing.
pub(super) fn apply(op: StringOp, name: &str, args: &[Expr], doc: &Document) -> QueryResult<Bson> {
    let arg = |i: usize| args.get(i).map_or(Ok(None), |e| e.evaluate_opt(doc));
    let nullish = |v: &Option<Bson>| matches!(v, None | Some(Bson::Null | Bson::Undefined));
    match op {
        StringOp::RegexMatch => regex_match(args, doc),
        StringOp::LenBytes | StringOp::LenCodePoints => match arg(0)? {
            Some(Bson::String(s)) => Ok(count(if op == StringOp::LenBytes {
                s.len()
            } else {
                s.chars().count()
            })),
            other => Err(if op == StringOp::LenBytes {
                QueryError::location(
                    34473,
                    format!(
                        "$strLenBytes requires a string argument, found: {}",
                        alias(&other)
                    ),
                )
            } else {
                QueryError::location(
                    34471,
                    format!(
                        "$strLenCP requires a string argument, found: {}",
                        alias(&other)
                    ),
                )
            }),
        },
        StringOp::SubstrCodePoints => {
            let text = coerce_to_string(arg(0)?)?;
            let start = arg(1)?;
            let start = start.as_ref().and_then(whole_i32).ok_or_else(|| match start.as_ref().and_then(Num::of) {
                Some(_) => QueryError::location(
                    34451,
                    "$substrCP: starting index cannot be represented as a 32-bit integral value",
                ),
                None => QueryError::location(
                    34450,
                    format!(
                        "$substrCP: starting index must be a numeric type (is BSON type {})",
                        alias(&start)
                    ),
                ),
            })?;
            let length = arg(2)?;
            let length = length.as_ref().and_then(whole_i32).ok_or_else(|| {
                match length.as_ref().and_then(Num::of) {
                    Some(_) => QueryError::location(
                        34453,
                        "$substrCP: length cannot be represented as a 32-bit integral value",
                    ),
                    None => QueryError::location(
                        34452,
                        format!(
                            "$substrCP: length must be a numeric type (is BSON type {})",
                            alias(&length)
                        ),
                    ),
                }
            })?;
            // mongod checks the length's sign first.
            let length = usize::try_from(length).map_err(|_| {
                QueryError::location(34454, "$substrCP: length must be a nonnegative integer.")
            })?;
            let start = usize::try_from(start).map_err(|_| {
                QueryError::location(
                    34455,
                    "$substrCP: the starting index must be nonnegative integer.",
                )
            })?;
            Ok(Bson::String(
                text.chars().skip(start).take(length).collect(),
            ))
        }
        StringOp::IndexOfCodePoints => {
            let text = match arg(0)? {
                v if nullish(&v) => return Ok(Bson::Null),
                Some(Bson::String(s)) => s,
                other => {
                    return Err(QueryError::location(
                        40093,
                        format!(
                            "$indexOfCP requires a string as the first argument, found: {}",
                            alias(&other)
                        ),
                    ));
                }
            };
            let needle = match arg(1)? {
                Some(Bson::String(s)) => s,
                other => {
                    return Err(QueryError::location(
                        40094,
                        format!(
                            "$indexOfCP requires a string as the second argument, found: {}",
                            alias(&other)
                        ),
                    ));
                }
            };
            let chars: Vec<char> = text.chars().collect();
            // An index given must be a whole non-negative number (a missing one too: only an
            // index left out takes its default).
            let bound = |i: usize, which: &str, default: usize| -> QueryResult<usize> {
                let Some(expr) = args.get(i) else {
                    return Ok(default);
                };
                let value = expr.evaluate_opt(doc)?;
                let n = value.as_ref().and_then(whole_i32).ok_or_else(|| {
                    QueryError::location(
                        40096,
                        format!(
                            "$indexOfCP requires an integral {which} index, found a value of type: {}",
                            alias(&value)
                        ),
                    )
                })?;
                usize::try_from(n).map_err(|_| {
                    QueryError::location(
                        40097,
                        format!("$indexOfCP requires a nonnegative {which} index, found: {n}"),
                    )
                })
            };
            let (start, end) = (
                bound(2, "starting", 0)?,
                bound(3, "ending", chars.len())?.min(chars.len()),
            );
            let needle: Vec<char> = needle.chars().collect();
            // A match starts within [start, end) and may run past `end`; an empty string is
            // found at `start` only if that is before `end` (or in an empty string at 0).
            let found = if start > end {
                None
            } else if needle.is_empty() && chars.is_empty() && start == 0 {
                Some(0)
            } else {
                (start..end).find(|&i| chars.get(i..).is_some_and(|rest| rest.starts_with(&needle)))
            };
            Ok(found.map_or(Bson::Int32(-1), count))
        }
        StringOp::Split => {
            let (text, separator) = (arg(0)?, arg(1)?);
            if nullish(&text) || nullish(&separator) {
                return Ok(Bson::Null);
            }
            let Some(Bson::String(text)) = text else {
                return Err(QueryError::location(
                    40085,
                    format!(
                        "$split requires an expression that evaluates to a string as a first argument, found: {}",
                        alias(&text)
                    ),
                ));
            };
            let Some(Bson::String(separator)) = separator else {
                return Err(QueryError::location(
                    40086,
                    format!(
                        "$split requires an expression that evaluates to a string as a second argument, found: {}",
                        alias(&separator)
                    ),
                ));
            };
            if separator.is_empty() {
                return Err(QueryError::location(
                    40087,
                    "$split requires a non-empty separator",
                ));
            }
            Ok(Bson::Array(
                text.split(separator.as_str())
                    .map(|p| Bson::String(p.to_owned()))
                    .collect(),
            ))
        }
        StringOp::CaseCompare => {
            let (a, b) = (coerce_to_string(arg(0)?)?, coerce_to_string(arg(1)?)?);
            Ok(Bson::Int32(
                match a.to_ascii_uppercase().cmp(&b.to_ascii_uppercase()) {
                    Ordering::Less => -1,
                    Ordering::Equal => 0,
                    Ordering::Greater => 1,
                },
            ))
        }
        StringOp::Trim | StringOp::TrimStart | StringOp::TrimEnd => {
            let input = match arg(0)? {
                v if nullish(&v) => return Ok(Bson::Null),
                Some(Bson::String(s)) => s,
                other => {
                    return Err(QueryError::location(
                        50699,
                        format!(
                            "{name} requires its input to be a string, got {} instead.",
                            alias(&other)
                        ),
                    ));
                }
            };
            let chars: Vec<char> = match args.get(1) {
                // No `chars`: mongod's whitespace.
                None => WHITESPACE.to_vec(),
                Some(chars) => match chars.evaluate_opt(doc)? {
                    v if nullish(&v) => return Ok(Bson::Null),
                    Some(Bson::String(s)) => s.chars().collect(),
                    other => {
                        return Err(QueryError::location(
                            50700,
                            format!(
                                "{name} requires 'chars' to be a string, got {} instead.",
                                alias(&other)
                            ),
                        ));
                    }
                },
            };
            let trimmed = match op {
                StringOp::Trim => input.trim_matches(chars.as_slice()),
                StringOp::TrimStart => input.trim_start_matches(chars.as_slice()),
                _ => input.trim_end_matches(chars.as_slice()),
            };
            Ok(Bson::String(trimmed.to_owned()))
        }
        StringOp::ReplaceOne | StringOp::ReplaceAll => {
            // Every argument is type-checked before a null one makes the result null.
            let values = [arg(0)?, arg(1)?, arg(2)?];
            let mut texts = Vec::with_capacity(3);
            for (index, value) in values.iter().enumerate() {
                match value {
                    v if nullish(v) => {}
                    Some(Bson::String(s)) => texts.push(s.clone()),
                    other => {
                        let message = |field: &str| {
                            format!(
                                "{name} requires that '{field}' be a string, found: {}",
                                alias(other)
                            )
                        };
                        return Err(match index {
                            0 => QueryError::location(51746, message("input")),
                            1 => QueryError::location(51745, message("find")),
                            _ => QueryError::location(51744, message("replacement")),
                        });
                    }
                }
            }
            let [input, find, replacement] = texts.as_slice() else {
                return Ok(Bson::Null);
            };
            Ok(Bson::String(if op == StringOp::ReplaceOne {
                input.replacen(find.as_str(), replacement, 1)
            } else {
                input.replace(find.as_str(), replacement)
            }))
        }
    }
}

/// A count as an int32 (lengths of one BSON document fit).
fn count(n: usize) -> Bson {
    Bson::Int32(i32::try_from(n).unwrap_or(i32::MAX))
}

/// The type name of a possibly missing value, as mongod's messages print it.
fn alias(value: &Option<Bson>) -> &'static str {
    value.as_ref().map_or("missing", type_alias)
}
