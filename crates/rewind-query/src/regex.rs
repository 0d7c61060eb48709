//! MongoDB (PCRE-style) regular expressions mapped onto the `regex` crate.

use bson::Bson;

use crate::error::{QueryError, QueryResult};

/// A compiled regular expression remembering its MongoDB source form.
#[derive(Debug, Clone)]
pub struct MongoRegex {
    pattern: String,
    options: String,
    compiled: regex::Regex,
}

impl MongoRegex {
    /// Compiles `pattern` with MongoDB `options` (`i`, `m`, `s`, `x`; `u` and `l`
    /// are accepted and ignored since matching is always Unicode-aware).
    pub fn new(pattern: &str, options: &str) -> QueryResult<Self> {
        let mut flags = String::new();
        for c in options.chars() {
            match c {
                'i' | 'm' | 's' | 'x' => flags.push(c),
                'u' | 'l' => {}
                other => {
                    return Err(QueryError::location(
                        51108,
                        format!("invalid flag in regex options: {other}"),
                    ));
                }
            }
        }
        let source = if flags.is_empty() {
            pattern.to_owned()
        } else {
            format!("(?{flags}){pattern}")
        };
        let compiled = regex::Regex::new(&source).map_err(|e| {
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
            Bson::String(s) | Bson::Symbol(s) => self.compiled.is_match(s),
            Bson::RegularExpression(re) => {
                re.pattern.as_str() == self.pattern && re.options.as_str() == self.options
            }
            _ => false,
        }
    }

    /// Whether `text` matches the pattern.
    pub fn is_match(&self, text: &str) -> bool {
        self.compiled.is_match(text)
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
