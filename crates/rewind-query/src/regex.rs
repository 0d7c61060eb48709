//! MongoDB regular expressions, compiled as mongod compiles them: PCRE2 in UTF mode without
//! Unicode properties (so `\d`, `\w`, `\s` and `\b` are ASCII-only, `$` also matches before
//! a final newline, and look-around and back-references are there).

use bson::Bson;
use pcre2::bytes::{Regex, RegexBuilder};

use crate::error::{QueryError, QueryResult};

/// A compiled regular expression remembering its MongoDB source form.
#[derive(Debug, Clone)]
pub struct MongoRegex {
    pattern: String,
    options: String,
    compiled: Regex,
}

impl MongoRegex {
    /// Compiles `pattern` with MongoDB `options` (`i`, `m`, `s`, `x`; `u` and `l` are
    /// accepted and ignored, as mongod does).
    pub fn new(pattern: &str, options: &str) -> QueryResult<Self> {
        let mut builder = RegexBuilder::new();
        builder.utf(true).jit_if_available(true);
        for c in options.chars() {
            match c {
                'i' => {
                    builder.caseless(true);
                }
                'm' => {
                    builder.multi_line(true);
                }
                's' => {
                    builder.dotall(true);
                }
                'x' => {
                    builder.extended(true);
                }
                'u' | 'l' => {}
                other => {
                    return Err(QueryError::location(
                        51108,
                        format!("invalid flag in regex options: {other}"),
                    ));
                }
            }
        }
        let compiled = builder.build(pattern).map_err(|e| {
            QueryError::location(51091, format!("Regular expression is invalid: {e}"))
        })?;
        Ok(Self {
            pattern: pattern.to_owned(),
            options: options.to_owned(),
            compiled,
        })
    }

    /// Builds from a BSON regular expression value.
    pub fn from_bson(re: &bson::Regex) -> QueryResult<Self> {
        Self::new(re.pattern.as_str(), re.options.as_str())
    }

    /// Whether `value` matches: strings and symbols by pattern, and a stored
    /// regular expression when it is the very same regex.
    pub fn matches(&self, value: &Bson) -> bool {
        match value {
            Bson::String(s) | Bson::Symbol(s) => self.is_match(s),
            Bson::RegularExpression(re) => {
                re.pattern.as_str() == self.pattern && re.options.as_str() == self.options
            }
            _ => false,
        }
    }

    /// Whether `text` matches the pattern. A match that PCRE2 abandons (its match limit, hit
    /// by catastrophic backtracking) counts as no match.
    pub fn is_match(&self, text: &str) -> bool {
        self.compiled.is_match(text.as_bytes()).unwrap_or(false)
    }

    /// Whether `text` matches, or why PCRE2 abandoned the match (its match limit, hit by
    /// catastrophic backtracking), for the callers that report it.
    pub fn try_match(&self, text: &str) -> Result<bool, String> {
        self.compiled
            .is_match(text.as_bytes())
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_apply() {
        let re = MongoRegex::new("^ab", "i").expect("valid");
        assert!(re.is_match("ABc"));
        let re = MongoRegex::new("a.b", "s").expect("valid");
        assert!(re.is_match("a\nb"));
        let re = MongoRegex::new("a b # comment", "x").expect("valid");
        assert!(re.is_match("ab"));
        let re = MongoRegex::new("^b", "m").expect("valid");
        assert!(re.is_match("a\nb"));
    }

    /// Where PCRE2 and other engines differ, mongod's answers (its regex tests and docs).
    #[test]
    fn pcre_semantics() {
        let is_match = |p: &str, o: &str, text: &str| {
            MongoRegex::new(p, o)
                .unwrap_or_else(|e| panic!("{p}: {e}"))
                .is_match(text)
        };
        assert!(is_match("hello$", "", "hello\n"));
        assert!(!is_match("^\\d$", "", "\u{663}"));
        assert!(!is_match("^\\w$", "", "é"));
        assert!(!is_match("^\\s$", "", "\u{a0}"));
        assert!(!is_match("\\bé", "", "é"));
        assert!(is_match("a[ ]b", "x", "a b"));
        assert!(is_match("(?<=a)b", "", "ab"));
        assert!(is_match("(a)\\1", "", "aa"));
        assert!(is_match("^ÉCOLE$", "i", "école"));
        assert!(!is_match("a.c", "", "a\nc"));
    }

    #[test]
    fn errors() {
        assert_eq!(
            MongoRegex::new("a", "z").map_err(|e| e.code).err(),
            Some(51108)
        );
        assert_eq!(
            MongoRegex::new("(", "").map_err(|e| e.code).err(),
            Some(51091)
        );
    }
}
