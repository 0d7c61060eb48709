//! Strict reading of JSON request bodies: unknown and read-only fields are refused, and every
//! type or range failure names the field it is about.

use serde_json::{Map, Value};

use crate::DomainError;

/// A request body object whose field names were checked against what the resource accepts.
pub struct BodyReader<'a> {
    object: &'a Map<String, Value>,
}

impl<'a> BodyReader<'a> {
    /// Checks that `body` is an object whose fields are all in `writable`; a field listed in
    /// `read_only` is refused as read-only, any other unknown field as invalid.
    pub fn new(
        body: &'a Value,
        writable: &[&str],
        read_only: &[&str],
    ) -> Result<Self, DomainError> {
        let Value::Object(object) = body else {
            return Err(DomainError::MalformedJson {
                reason: "the request body must be a JSON object".to_owned(),
            });
        };
        for name in object.keys() {
            if writable.contains(&name.as_str()) {
                continue;
            }
            if read_only.contains(&name.as_str()) {
                return Err(DomainError::AttributeReadOnly {
                    field: name.clone(),
                });
            }
            return Err(DomainError::UnknownAttribute {
                field: name.clone(),
            });
        }
        Ok(Self { object })
    }

    /// Whether the field is present with a non-null value.
    pub fn has(&self, field: &str) -> bool {
        self.object.get(field).is_some_and(|value| !value.is_null())
    }

    /// The raw value of a field, `None` when absent or null.
    pub fn raw(&self, field: &str) -> Option<&'a Value> {
        self.object.get(field).filter(|value| !value.is_null())
    }

    /// A string field; `None` when absent or null.
    pub fn string(&self, field: &str) -> Result<Option<&'a str>, DomainError> {
        match self.raw(field) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(wrong_type(field)),
        }
    }

    /// A boolean field; `None` when absent or null.
    pub fn bool(&self, field: &str) -> Result<Option<bool>, DomainError> {
        match self.raw(field) {
            None => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(*flag)),
            Some(_) => Err(wrong_type(field)),
        }
    }

    /// An `int32` field at least `minimum`; `None` when absent or null.
    pub fn int32_at_least(&self, field: &str, minimum: i32) -> Result<Option<i32>, DomainError> {
        let Some(value) = self.raw(field) else {
            return Ok(None);
        };
        let Some(number) = value.as_i64() else {
            return Err(wrong_type(field));
        };
        let Ok(number) = i32::try_from(number) else {
            return Err(DomainError::Validation {
                field: field.to_owned(),
                rule: "must fit in a 32-bit signed integer".to_owned(),
            });
        };
        if number < minimum {
            return Err(DomainError::Validation {
                field: field.to_owned(),
                rule: format!("must be at least {minimum}"),
            });
        }
        Ok(Some(number))
    }

    /// An array field; `None` when absent or null.
    pub fn array(&self, field: &str) -> Result<Option<&'a Vec<Value>>, DomainError> {
        match self.raw(field) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(_) => Err(wrong_type(field)),
        }
    }
}

/// The error for a field holding a JSON value of the wrong type.
pub fn wrong_type(field: &str) -> DomainError {
    DomainError::WrongJsonType {
        field: field.to_owned(),
    }
}

/// The error for a field breaking a pattern, length or range rule.
pub fn invalid(field: &str, rule: &str) -> DomainError {
    DomainError::Validation {
        field: field.to_owned(),
        rule: rule.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn refuses_unknown_and_read_only_fields_by_name() {
        let body = json!({"a": 1, "id": "x"});
        let error = BodyReader::new(&body, &["a"], &["id"]).err();
        assert_eq!(
            error,
            Some(DomainError::AttributeReadOnly { field: "id".into() })
        );
        let body = json!({"a": 1, "zzz": 2});
        let error = BodyReader::new(&body, &["a"], &["id"]).err();
        assert_eq!(
            error,
            Some(DomainError::UnknownAttribute {
                field: "zzz".into()
            })
        );
    }

    #[test]
    fn checks_int32_types_and_ranges() {
        let body = json!({"n": 3_000_000_000_i64, "m": "7", "k": 0, "ok": 5});
        let reader = BodyReader::new(&body, &["n", "m", "k", "ok"], &[]).unwrap();
        assert!(matches!(
            reader.int32_at_least("n", 1),
            Err(DomainError::Validation { .. })
        ));
        assert!(matches!(
            reader.int32_at_least("m", 1),
            Err(DomainError::WrongJsonType { .. })
        ));
        assert!(matches!(
            reader.int32_at_least("k", 1),
            Err(DomainError::Validation { .. })
        ));
        assert_eq!(reader.int32_at_least("ok", 1), Ok(Some(5)));
        assert_eq!(reader.int32_at_least("absent", 1), Ok(None));
    }
}
