//! The single error type of this crate, shaped like a mongod command error.

/// A query-language error carrying the same `code`/`codeName`/`errmsg` triple
/// mongod returns, so the command layer can reply
/// `{ok: 0, errmsg: message, code, codeName: code_name}` verbatim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (code {code}, {code_name})")]
pub struct QueryError {
    /// Numeric server error code (e.g. 2 for `BadValue`).
    pub code: i32,
    /// The server's symbolic code name (e.g. `"BadValue"`); numbered assertion
    /// sites are named `"Location<code>"` as mongod does.
    pub code_name: &'static str,
    /// Human-readable message, matching the server's wording where known.
    pub message: String,
}

impl QueryError {
    /// Builds an error from its parts.
    pub fn new(code: i32, code_name: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            code_name,
            message: message.into(),
        }
    }

    /// Code 2, `BadValue`.
    pub fn bad_value(message: impl Into<String>) -> Self {
        Self::new(2, "BadValue", message)
    }

    /// Code 9, `FailedToParse`.
    pub fn failed_to_parse(message: impl Into<String>) -> Self {
        Self::new(9, "FailedToParse", message)
    }

    /// Code 14, `TypeMismatch`.
    pub fn type_mismatch(message: impl Into<String>) -> Self {
        Self::new(14, "TypeMismatch", message)
    }

    /// Code 28, `PathNotViable`.
    pub fn path_not_viable(message: impl Into<String>) -> Self {
        Self::new(28, "PathNotViable", message)
    }

    /// Code 40, `ConflictingUpdateOperators`.
    pub fn conflicting_update_operators(message: impl Into<String>) -> Self {
        Self::new(40, "ConflictingUpdateOperators", message)
    }

    /// Code 54, `NotSingleValueField`.
    pub fn not_single_value_field(message: impl Into<String>) -> Self {
        Self::new(54, "NotSingleValueField", message)
    }

    /// Code 66, `ImmutableField`.
    pub fn immutable_field(message: impl Into<String>) -> Self {
        Self::new(66, "ImmutableField", message)
    }

    /// Code 168, `InvalidPipelineOperator`.
    pub fn invalid_pipeline_operator(message: impl Into<String>) -> Self {
        Self::new(168, "InvalidPipelineOperator", message)
    }

    /// Code 238, `NotImplemented`: a real MongoDB feature this crate does not
    /// support. Used instead of silently returning wrong results.
    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(238, "NotImplemented", message)
    }

    /// An assertion-site code (e.g. 31253) which mongod reports with the code name
    /// `Location<code>`.
    pub fn location(code: i32, message: impl Into<String>) -> Self {
        Self::new(code, location_name(code), message)
    }
}

/// mongod names errors raised at numbered assertion sites `Location<code>`.
/// `code_name` is `&'static str`, so the names of the (closed) set of codes this
/// crate raises are generated here; add a code to the list when raising it.
macro_rules! location_names {
    ($($code:literal),* $(,)?) => {
        fn location_name(code: i32) -> &'static str {
            match code {
                $($code => concat!("Location", stringify!($code)),)*
                _ => "Location",
            }
        }
    };
}

location_names!(
    16874, 16878, 28646, 40075, 40147, 40149, 16412, 34450, 34451, 34452, 34453, 34454, 34455,
    34471, 34473, 40085, 40086, 40087, 40093, 40094, 40096, 40097, 50694, 50695, 50696, 50699,
    50700, 51744, 51745, 51746, 51747, 51748, 51749, 51750, 51751, 28667, 31022, 31023, 31024,
    16004, 31109, 51080, 51081, 51082, 51083, 51103, 51104, 51105, 51106, 51107, 51109, 51110,
    51111, 51156, 40237, 16866, 16867, 16868, 16875, 16876, 16877, 16879, 16880, 16882, 16883,
    28647, 28648, 28650, 28651, 40076, 40077, 40078, 40079, 40080, 327391, 327392, 16006, 18533,
    18534, 18535, 18536, 18628, 18629, 28664, 28680, 28765, 40060, 40061, 40062, 40063, 40064,
    40065, 40066, 40067, 40068, 40148, 40169, 40170, 40171, 40352, 40400, 40414, 40415, 40485,
    40517, 40533, 40535, 40536, 40539, 40600, 15947, 15952, 15955, 15956, 15957, 15958, 15959,
    15969, 15972, 15973, 15974, 15975, 15976, 15981, 15983, 15998, 16007, 16020, 18537, 16410,
    16608, 16702, 16872, 17080, 17124, 17276, 28689, 28766, 28808, 28809, 28810, 28811, 28812,
    28818, 28822, 31002, 31120, 31249, 31250, 31253, 31254, 31255, 31256, 31274, 31275, 31324,
    40081, 40156, 40158, 40160, 40228, 40229, 40231, 40234, 40235, 40236, 40238, 40272, 40323,
    40324, 40602, 51091, 51108, 51246, 51272, 1257300,
);

/// Shorthand for results in this crate.
pub type QueryResult<T> = Result<T, QueryError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_codes_are_named() {
        let e = QueryError::location(40324, "Unrecognized pipeline stage name: '$foo'");
        assert_eq!(e.code_name, "Location40324");
        assert_eq!(QueryError::bad_value("x").code_name, "BadValue");
    }

    /// Every `QueryError::location(<code>` in the sources has a generated name.
    #[test]
    fn every_raised_location_code_is_listed() {
        let sources = [
            include_str!("aggregate/expr.rs"),
            include_str!("aggregate/group.rs"),
            include_str!("aggregate/ops.rs"),
            include_str!("aggregate/unwind.rs"),
            include_str!("aggregate/stages.rs"),
            include_str!("aggregate/unsupported.rs"),
            include_str!("aggregate/dates.rs"),
            include_str!("aggregate/lookup.rs"),
            include_str!("aggregate/compose.rs"),
            include_str!("aggregate/vars.rs"),
            include_str!("aggregate/strings.rs"),
            include_str!("aggregate/coerce.rs"),
            include_str!("aggregate/convert.rs"),
            include_str!("projection.rs"),
            include_str!("regex.rs"),
            include_str!("sort.rs"),
        ];
        for source in sources {
            for chunk in source.split("QueryError::location(").skip(1) {
                let digits: String = chunk
                    .trim_start()
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                let code: i32 = digits.parse().expect("literal code");
                assert_ne!(location_name(code), "Location", "code {code} missing");
            }
        }
    }
}
