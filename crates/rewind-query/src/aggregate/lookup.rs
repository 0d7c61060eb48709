//! `$lookup` with `localField`/`foreignField`: each document gets, as an array, the
//! documents of another collection of its database whose `foreignField` equals its
//! `localField`, compared as mongod's `$eq` (an array matches by any element; a missing or
//! null local value matches foreign documents where the field is null or missing).

use std::collections::HashMap;

use bson::{Bson, Document, doc};

use super::Foreign;
use crate::error::{QueryError, QueryResult};
use crate::filter::Filter;
use crate::path;

/// A parsed `$lookup`.
#[derive(Debug, Clone)]
pub(super) struct Lookup {
    from: String,
    local: Vec<String>,
    foreign_field: String,
    as_path: Vec<String>,
}

impl Lookup {
    /// Parses `{from, localField, foreignField, as}`; the `let`/`pipeline` forms are refused.
    pub(super) fn parse(spec: &Bson) -> QueryResult<Self> {
        let Bson::Document(spec) = spec else {
            return Err(QueryError::failed_to_parse(
                "the $lookup specification must be an Object",
            ));
        };
        for (field, _) in spec {
            match field.as_str() {
                "from" | "localField" | "foreignField" | "as" => {}
                "let" | "pipeline" => {
                    return Err(QueryError::not_implemented(format!(
                        "$lookup with '{field}' is not supported by rewind"
                    )));
                }
                other => {
                    return Err(QueryError::failed_to_parse(format!(
                        "unknown argument to $lookup: {other}"
                    )));
                }
            }
        }
        let text = |name: &str| match spec.get(name) {
            Some(Bson::String(s)) => Ok(s.clone()),
            Some(other) => Err(QueryError::failed_to_parse(format!(
                "$lookup argument '{name}: {other}' must be a string"
            ))),
            None => Err(QueryError::failed_to_parse(format!(
                "must specify '{name}' field for a $lookup"
            ))),
        };
        let from = match spec.get("from") {
            Some(Bson::Document(_)) => {
                return Err(QueryError::not_implemented(
                    "$lookup from another database is not supported by rewind",
                ));
            }
            _ => text("from")?,
        };
        let (local, foreign_field, as_field) =
            (text("localField")?, text("foreignField")?, text("as")?);
        for value in [&local, &foreign_field, &as_field] {
            field_path(value)?;
        }
        Ok(Self {
            from,
            local: path::split(&local),
            foreign_field,
            as_path: path::split(&as_field),
        })
    }

    /// The filter selecting the foreign documents of one local document, as mongod builds
    /// it: its local values (array elements one by one; null when there are none) in an
    /// `$in`, or each by `$eq` when one is a regex (`$in` would take it as a pattern).
    fn filter(&self, doc: &Document) -> Document {
        let mut values: Vec<Bson> = path::match_candidates(doc, &self.local)
            .into_iter()
            .flatten()
            .flat_map(|value| match value {
                Bson::Array(items) => items.clone(),
                other => vec![other.clone()],
            })
            .collect();
        if values.is_empty() {
            values.push(Bson::Null);
        }
        let field = &self.foreign_field;
        match values.as_slice() {
            [one] => doc! {field: {"$eq": one.clone()}},
            many if many.iter().any(|v| matches!(v, Bson::RegularExpression(_))) => doc! {
                "$or": many.iter().map(|v| Bson::Document(doc! {field: {"$eq": v.clone()}})).collect::<Vec<_>>()
            },
            many => doc! {field: {"$in": many.to_vec()}},
        }
    }

    /// Adds the matched foreign documents to each document. Documents with the same local
    /// values share one read of the foreign collection.
    pub(super) fn run(
        &self,
        docs: Vec<Document>,
        foreign: &dyn Foreign,
    ) -> QueryResult<Vec<Document>> {
        let mut seen: HashMap<Vec<u8>, Bson> = HashMap::new();
        docs.into_iter()
            .map(|mut doc| {
                let filter = self.filter(&doc);
                let key = filter
                    .to_vec()
                    .map_err(|e| QueryError::bad_value(e.to_string()))?;
                let joined = match seen.get(&key) {
                    Some(joined) => joined.clone(),
                    None => {
                        let matched = foreign.matching(&self.from, &Filter::parse(&filter)?)?;
                        let joined = Bson::Array(matched.into_iter().map(Bson::Document).collect());
                        seen.insert(key, joined.clone());
                        joined
                    }
                };
                set_path(&mut doc, &self.as_path, joined);
                Ok(doc)
            })
            .collect()
    }
}

/// Checks a field path as mongod's FieldPath does.
fn field_path(path: &str) -> QueryResult<()> {
    if path.is_empty() {
        return Err(QueryError::location(
            40352,
            "FieldPath cannot be constructed with empty string",
        ));
    }
    if path.starts_with('$') || path.split('.').any(|part| part.starts_with('$')) {
        return Err(QueryError::location(
            16410,
            format!(
                "FieldPath field names may not start with '$'. Consider using $getField or $setField. ({path})"
            ),
        ));
    }
    if path.split('.').any(str::is_empty) {
        return Err(QueryError::location(
            15998,
            format!("FieldPath field names may not be empty strings. ({path})"),
        ));
    }
    Ok(())
}

/// Sets `value` at a dotted path, creating (or replacing non-document values with)
/// sub-documents along the way, as `$lookup`'s `as` does.
fn set_path(doc: &mut Document, parts: &[String], value: Bson) {
    let Some((last, init)) = parts.split_last() else {
        return;
    };
    let mut current = doc;
    for part in init {
        if !matches!(current.get(part), Some(Bson::Document(_))) {
            current.insert(part.clone(), Document::new());
        }
        let Some(Bson::Document(next)) = current.get_mut(part) else {
            return;
        };
        current = next;
    }
    current.insert(last.clone(), value);
}
