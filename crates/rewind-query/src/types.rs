//! `$type` codes and aliases.

use bson::Bson;

use crate::compare::Num;
use crate::error::{QueryError, QueryResult};

/// A `$type` operand: one BSON type code or the `"number"` alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TypeSpec {
    /// Any numeric type.
    Number,
    /// A specific BSON type code (`-1` MinKey, `127` MaxKey).
    Code(i32),
}

/// BSON type names and codes, as `$type` and `$convert` name them.
pub(crate) const ALIASES: &[(&str, i32)] = &[
    ("double", 1),
    ("string", 2),
    ("object", 3),
    ("array", 4),
    ("binData", 5),
    ("undefined", 6),
    ("objectId", 7),
    ("bool", 8),
    ("date", 9),
    ("null", 10),
    ("regex", 11),
    ("dbPointer", 12),
    ("javascript", 13),
    ("symbol", 14),
    ("javascriptWithScope", 15),
    ("int", 16),
    ("timestamp", 17),
    ("long", 18),
    ("decimal", 19),
    ("minKey", -1),
    ("maxKey", 127),
];

/// The BSON type code of a value.
pub(crate) fn type_code(value: &Bson) -> i32 {
    match value {
        Bson::Double(_) => 1,
        Bson::String(_) => 2,
        Bson::Document(_) => 3,
        Bson::Array(_) => 4,
        Bson::Binary(_) => 5,
        Bson::Undefined => 6,
        Bson::ObjectId(_) => 7,
        Bson::Boolean(_) => 8,
        Bson::DateTime(_) => 9,
        Bson::Null => 10,
        Bson::RegularExpression(_) => 11,
        Bson::DbPointer(_) => 12,
        Bson::JavaScriptCode(_) => 13,
        Bson::Symbol(_) => 14,
        Bson::JavaScriptCodeWithScope(_) => 15,
        Bson::Int32(_) => 16,
        Bson::Timestamp(_) => 17,
        Bson::Int64(_) => 18,
        Bson::Decimal128(_) => 19,
        Bson::MinKey => -1,
        Bson::MaxKey => 127,
    }
}

/// The `$type` alias of a value (`"int"`, `"string"`, ...), as `$type` in
/// aggregation reports it.
pub(crate) fn type_alias(value: &Bson) -> &'static str {
    let code = type_code(value);
    ALIASES
        .iter()
        .find(|(_, c)| *c == code)
        .map_or("unknown", |(name, _)| name)
}

impl TypeSpec {
    /// Parses one `$type` operand.
    pub(crate) fn parse(value: &Bson) -> QueryResult<Self> {
        match value {
            Bson::String(name) if name == "number" => Ok(TypeSpec::Number),
            Bson::String(name) => ALIASES
                .iter()
                .find(|(alias, _)| alias == name)
                .map(|(_, code)| TypeSpec::Code(*code))
                .ok_or_else(|| QueryError::bad_value(format!("Unknown type name alias: {name}"))),
            other => match Num::of(other) {
                Some(num) => {
                    let f = num.as_f64();
                    let valid = f.fract() == 0.0 && ALIASES.iter().any(|(_, c)| f64::from(*c) == f);
                    if valid {
                        // Checked above to be one of the integral codes.
                        #[allow(clippy::cast_possible_truncation)]
                        Ok(TypeSpec::Code(f as i32))
                    } else {
                        Err(QueryError::bad_value(format!(
                            "Invalid numerical type code: {f}"
                        )))
                    }
                }
                None => Err(QueryError::bad_value(
                    "type must be represented as a number or a string",
                )),
            },
        }
    }

    /// Whether `value` has this type.
    pub(crate) fn matches(self, value: &Bson) -> bool {
        match self {
            TypeSpec::Number => Num::of(value).is_some(),
            TypeSpec::Code(code) => type_code(value) == code,
        }
    }
}
