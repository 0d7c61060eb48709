//! Sort specifications (`{a: 1, "b.c": -1}`) and document ordering.

use std::cmp::Ordering;

use bson::{Bson, Document};

use crate::compare::{Num, compare};
use crate::error::{QueryError, QueryResult};
use crate::path;

/// A parsed sort specification.
#[derive(Debug, Clone)]
pub struct SortSpec {
    keys: Vec<SortKey>,
}

#[derive(Debug, Clone)]
struct SortKey {
    parts: Vec<String>,
    descending: bool,
}

/// The value a document sorts by on one key. An empty array sorts before
/// null/missing, as the server documents.
#[derive(Debug, Clone, PartialEq)]
enum KeyValue<'a> {
    EmptyArray,
    Value(&'a Bson),
}

const NULL: Bson = Bson::Null;

impl SortSpec {
    /// Parses a sort document. Each value must be 1 or -1 (any numeric type);
    /// `{$meta: ...}` sorts are not supported.
    pub fn parse(spec: &Document) -> QueryResult<SortSpec> {
        let mut keys = Vec::with_capacity(spec.len());
        for (field, value) in spec {
            if field.is_empty() || field.split('.').any(str::is_empty) {
                return Err(QueryError::location(
                    15998,
                    "FieldPath field names may not be empty strings.",
                ));
            }
            let descending = match value {
                Bson::Document(d) if d.contains_key("$meta") => {
                    return Err(QueryError::not_implemented(
                        "$meta sort is not supported by this server",
                    ));
                }
                other => match Num::of(other).map(Num::as_f64) {
                    Some(1.0) => false,
                    Some(-1.0) => true,
                    Some(_) => {
                        return Err(QueryError::location(
                            15975,
                            "$sort key ordering must be 1 (for ascending) or -1 (for descending)",
                        ));
                    }
                    None => {
                        return Err(QueryError::location(
                            15974,
                            format!("Illegal key in $sort specification: {field}: {other}"),
                        ));
                    }
                },
            };
            keys.push(SortKey {
                parts: path::split(field),
                descending,
            });
        }
        Ok(SortSpec { keys })
    }

    /// Whether the spec has no keys (`{}`: natural order).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Orders two documents by this spec.
    pub fn compare(&self, a: &Document, b: &Document) -> Ordering {
        for key in &self.keys {
            let ord = compare_keys(&key.value(a), &key.value(b));
            let ord = if key.descending { ord.reverse() } else { ord };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    }

    /// Stable-sorts `docs` by this spec.
    pub fn sort(&self, docs: &mut [Document]) {
        docs.sort_by(|a, b| self.compare(a, b));
    }
}

impl SortKey {
    /// The document's key: arrays contribute their elements, ascending sorts
    /// use the smallest value and descending sorts the largest; a path that is
    /// missing everywhere sorts as null.
    fn value<'a>(&self, doc: &'a Document) -> KeyValue<'a> {
        let mut values: Vec<&Bson> = Vec::new();
        let mut saw_empty_array = false;
        let mut saw_missing = false;
        for candidate in path::sort_candidates(doc, &self.parts) {
            match candidate {
                None => saw_missing = true,
                Some(Bson::Array(items)) if items.is_empty() => saw_empty_array = true,
                Some(Bson::Array(items)) => values.extend(items.iter()),
                Some(v) => values.push(v),
            }
        }
        if values.is_empty() {
            return if saw_empty_array && !saw_missing {
                KeyValue::EmptyArray
            } else {
                KeyValue::Value(&NULL)
            };
        }
        if saw_missing {
            values.push(&NULL);
        }
        let pick = if self.descending {
            values.into_iter().max_by(|x, y| compare(x, y))
        } else {
            values.into_iter().min_by(|x, y| compare(x, y))
        };
        KeyValue::Value(pick.unwrap_or(&NULL))
    }
}

fn compare_keys(a: &KeyValue<'_>, b: &KeyValue<'_>) -> Ordering {
    match (a, b) {
        (KeyValue::EmptyArray, KeyValue::EmptyArray) => Ordering::Equal,
        (KeyValue::EmptyArray, KeyValue::Value(v)) => {
            if matches!(v, Bson::MinKey) {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        (KeyValue::Value(_), KeyValue::EmptyArray) => compare_keys(b, a).reverse(),
        (KeyValue::Value(x), KeyValue::Value(y)) => compare(x, y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn arrays_sort_by_min_or_max() {
        let spec = SortSpec::parse(&doc! {"a": 1}).expect("valid");
        let mut docs = vec![doc! {"a": [5, 1]}, doc! {"a": 3}, doc! {}, doc! {"a": []}];
        spec.sort(&mut docs);
        assert_eq!(
            docs,
            vec![doc! {"a": []}, doc! {}, doc! {"a": [5, 1]}, doc! {"a": 3}]
        );
        let spec = SortSpec::parse(&doc! {"a": -1}).expect("valid");
        spec.sort(&mut docs);
        assert_eq!(
            docs,
            vec![doc! {"a": [5, 1]}, doc! {"a": 3}, doc! {}, doc! {"a": []}]
        );
    }

    #[test]
    fn compound_and_dotted() {
        let spec = SortSpec::parse(&doc! {"a.b": 1, "c": -1_i64}).expect("valid");
        let mut docs = vec![
            doc! {"a": {"b": 2}, "c": 1},
            doc! {"a": {"b": 1}, "c": 1},
            doc! {"a": {"b": 1}, "c": 2},
        ];
        spec.sort(&mut docs);
        assert_eq!(docs[0], doc! {"a": {"b": 1}, "c": 2});
        assert_eq!(docs[2], doc! {"a": {"b": 2}, "c": 1});
    }

    #[test]
    fn invalid_specs() {
        let code = |d: Document| SortSpec::parse(&d).map_err(|e| e.code).err();
        assert_eq!(code(doc! {"a": 2}), Some(15975));
        assert_eq!(code(doc! {"a": "x"}), Some(15974));
        assert_eq!(code(doc! {"a": {"$meta": "textScore"}}), Some(238));
        assert_eq!(code(doc! {"a": 1.0}), None);
    }
}
