//! `$lookup` with `localField`/`foreignField`: each document gets, as an array, the
//! documents of another collection of its database whose `foreignField` equals its
//! `localField`, compared as mongod's `$eq` (an array matches by any element; a missing or
//! null local value matches foreign documents where the field is null or missing).

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
        for (name, value) in [("localField", &local), ("foreignField", &foreign_field)] {
            if value.is_empty() || value.starts_with('$') {
                return Err(QueryError::location(
                    16410,
                    format!("FieldPath field names may not start with '$'. ({name}: {value})"),
                ));
            }
        }
        Ok(Self {
            from,
            local: path::split(&local),
            foreign_field,
            as_path: path::split(&as_field),
        })
    }

    /// The filter selecting the foreign documents of one local document; `None` when it
    /// selects none (its local value is an empty array).
    fn filter(&self, doc: &Document) -> QueryResult<Option<Filter>> {
        let candidates = path::match_candidates(doc, &self.local);
        let values: Vec<&Bson> = if candidates.iter().all(Option::is_none) {
            vec![&Bson::Null]
        } else {
            candidates
                .into_iter()
                .flatten()
                .flat_map(|value| match value {
                    Bson::Array(items) => items.iter().collect::<Vec<_>>(),
                    other => vec![other],
                })
                .collect()
        };
        // `$eq` each (an `$in` would take a regex as a pattern).
        let equal = |v: &Bson| doc! {&self.foreign_field: {"$eq": v.clone()}};
        let filter = match values.as_slice() {
            [] => return Ok(None),
            [one] => equal(one),
            many => doc! {"$or": many.iter().map(|v| Bson::Document(equal(v))).collect::<Vec<_>>()},
        };
        Filter::parse(&filter).map(Some)
    }

    /// Adds the matched foreign documents to each document.
    pub(super) fn run(
        &self,
        docs: Vec<Document>,
        foreign: &dyn Foreign,
    ) -> QueryResult<Vec<Document>> {
        docs.into_iter()
            .map(|mut doc| {
                let matched = match self.filter(&doc)? {
                    Some(filter) => foreign.matching(&self.from, &filter)?,
                    None => Vec::new(),
                };
                let joined = Bson::Array(matched.into_iter().map(Bson::Document).collect());
                set_path(&mut doc, &self.as_path, joined);
                Ok(doc)
            })
            .collect()
    }
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
