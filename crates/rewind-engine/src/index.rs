//! Index specifications and index-key extraction (dotted paths, multikey, sparse).

use std::collections::BTreeMap;

use bson::{Bson, Document, doc};

use crate::error::{EngineError, Result};
use crate::keys::encode_component;

/// Name of the mandatory primary index.
pub const ID_INDEX_NAME: &str = "_id_";

/// One index definition as `createIndexes` received it and `listIndexes` returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexSpec {
    /// The index name, e.g. `a_1_b_-1`.
    pub name: String,
    /// The key pattern, e.g. `{a: 1, "b.c": -1}`.
    pub key: Document,
    /// Whether the index enforces uniqueness.
    pub unique: bool,
    /// Whether documents missing every indexed field are left out.
    pub sparse: bool,
    /// The full specification in `listIndexes` form: `{v: 2, key, name, ...other options}`.
    pub spec: Document,
    /// The key pattern as `(path, descending)` pairs.
    pub(crate) fields: Vec<(String, bool)>,
}

/// One index entry computed for a document: encoded key and the values it was built from.
pub(crate) struct IndexKey {
    pub bytes: Vec<u8>,
    pub values: Vec<Bson>,
}

impl IndexSpec {
    /// The `_id_` index every collection has.
    pub fn id_index() -> Self {
        let key = doc! {"_id": 1};
        Self {
            name: ID_INDEX_NAME.into(),
            spec: doc! {"v": 2, "key": key.clone(), "name": ID_INDEX_NAME},
            key,
            unique: true,
            sparse: false,
            fields: vec![("_id".into(), false)],
        }
    }

    /// Parses a `createIndexes` entry `{key, name, unique, sparse, ...}`; other options are
    /// recorded as given. A missing name gets mongod's default (`a_1_b_-1`).
    pub fn parse(input: &Document) -> Result<Self> {
        let bad = |m: String| EngineError::CannotCreateIndex(m);
        let key = match input.get("key") {
            Some(Bson::Document(k)) if !k.is_empty() => k.clone(),
            _ => {
                return Err(bad(
                    "index specification must contain a non-empty 'key' object".into(),
                ));
            }
        };
        let mut fields = Vec::with_capacity(key.len());
        let mut default_name = Vec::new();
        for (path, dir) in &key {
            let descending = match dir {
                Bson::Int32(n) if *n != 0 => *n < 0,
                Bson::Int64(n) if *n != 0 => *n < 0,
                Bson::Double(n) if *n != 0.0 && n.is_finite() => *n < 0.0,
                Bson::String(kind) => {
                    return Err(bad(format!(
                        "index type '{kind}' is not supported by this server"
                    )));
                }
                other => {
                    return Err(bad(format!(
                        "Values in the index key pattern must be non-zero numbers, got {path}: {other}"
                    )));
                }
            };
            if path.is_empty() || path.split('.').any(str::is_empty) || path.starts_with('$') {
                return Err(bad(format!(
                    "Index key contains an illegal field name: '{path}'"
                )));
            }
            default_name.push(format!("{path}_{dir}"));
            fields.push((path.clone(), descending));
        }
        let name = match input.get("name") {
            Some(Bson::String(n)) if !n.is_empty() => n.clone(),
            None => default_name.join("_"),
            _ => return Err(bad("index name must be a non-empty string".into())),
        };
        let flag = |f: &str| match input.get(f) {
            Some(Bson::Boolean(b)) => *b,
            Some(Bson::Int32(n)) => *n != 0,
            Some(Bson::Int64(n)) => *n != 0,
            Some(Bson::Double(n)) => *n != 0.0,
            _ => false,
        };
        let is_id = key == doc! {"_id": 1} || key == doc! {"_id": 1i64} || key == doc! {"_id": 1.0};
        if name == ID_INDEX_NAME && !is_id {
            return Err(bad(
                "The index name '_id_' is reserved for the _id index".into()
            ));
        }
        let mut spec = doc! {"v": 2, "key": key.clone(), "name": name.clone()};
        for (k, v) in input {
            if !matches!(k.as_str(), "v" | "key" | "name" | "ns") {
                spec.insert(k.clone(), v.clone());
            }
        }
        Ok(Self {
            unique: flag("unique") || is_id,
            sparse: flag("sparse"),
            name,
            key,
            spec,
            fields,
        })
    }

    /// Whether this is the primary `_id_` index (served by the document table itself).
    pub fn is_id(&self) -> bool {
        self.name == ID_INDEX_NAME
    }

    /// The options other than `v`, `key` and `name`, used to compare two specs.
    pub(crate) fn options(&self) -> Document {
        self.spec
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "v" | "key" | "name"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Encodes a prefix of the key pattern for equality lookups on the leading fields.
    pub(crate) fn encode_prefix(&self, values: &[Bson]) -> Result<Vec<u8>> {
        if values.len() > self.fields.len() {
            return Err(EngineError::BadValue(format!(
                "index {} has {} fields, {} values given",
                self.name,
                self.fields.len(),
                values.len()
            )));
        }
        let mut out = Vec::new();
        for (value, (_, desc)) in values.iter().zip(&self.fields) {
            encode_component(value, *desc, &mut out);
        }
        Ok(out)
    }

    /// The distinct index keys of `doc`: one per array element for a multikey field, `null`
    /// for missing fields, none at all for a sparse index when every field is missing.
    pub(crate) fn keys_for(&self, doc: &Document) -> Result<Vec<IndexKey>> {
        let mut per_field: Vec<Vec<Bson>> = Vec::with_capacity(self.fields.len());
        let mut array_field: Option<&str> = None;
        let mut all_missing = true;
        for (path, _) in &self.fields {
            let mut values = Vec::new();
            let mut hit_array = false;
            let parts: Vec<&str> = path.split('.').collect();
            collect_values(doc, &parts, &mut values, &mut hit_array);
            if hit_array {
                if let Some(other) = array_field {
                    return Err(EngineError::CannotIndexParallelArrays(
                        path.clone(),
                        other.into(),
                    ));
                }
                array_field = Some(path);
            }
            if values.is_empty() {
                values.push(Bson::Null);
            } else {
                all_missing = false;
            }
            per_field.push(values);
        }
        if self.sparse && all_missing {
            return Ok(Vec::new());
        }
        // The common case, one value per field, is one key: no cross product to build.
        if per_field.iter().all(|v| v.len() == 1) {
            let values: Vec<Bson> = per_field.into_iter().flatten().collect();
            let mut bytes = Vec::new();
            for (v, (_, desc)) in values.iter().zip(&self.fields) {
                encode_component(v, *desc, &mut bytes);
            }
            return Ok(vec![IndexKey { bytes, values }]);
        }
        // At most one field has several values, so the cross product is linear in size.
        let mut combos: Vec<Vec<Bson>> = vec![Vec::with_capacity(per_field.len())];
        for values in per_field {
            let mut next = Vec::with_capacity(combos.len() * values.len());
            for combo in &combos {
                for v in &values {
                    let mut c = combo.clone();
                    c.push(v.clone());
                    next.push(c);
                }
            }
            combos = next;
        }
        let mut unique: BTreeMap<Vec<u8>, Vec<Bson>> = BTreeMap::new();
        for values in combos {
            let mut bytes = Vec::new();
            for (v, (_, desc)) in values.iter().zip(&self.fields) {
                encode_component(v, *desc, &mut bytes);
            }
            unique.entry(bytes).or_insert(values);
        }
        Ok(unique
            .into_iter()
            .map(|(bytes, values)| IndexKey { bytes, values })
            .collect())
    }

    /// The `keyValue` document of a duplicate-key error.
    pub(crate) fn key_value(&self, values: &[Bson]) -> Document {
        self.fields
            .iter()
            .zip(values)
            .map(|((p, _), v)| (p.clone(), v.clone()))
            .collect()
    }
}

/// Walks a dotted path, fanning out over arrays (mongod's multikey semantics). An empty
/// array at the leaf indexes as `undefined`, as mongod does.
fn collect_values(doc: &Document, parts: &[&str], out: &mut Vec<Bson>, hit_array: &mut bool) {
    let Some((first, rest)) = parts.split_first() else {
        return;
    };
    let Some(value) = doc.get(*first) else { return };
    match value {
        Bson::Array(items) => {
            *hit_array = true;
            if rest.is_empty() {
                if items.is_empty() {
                    out.push(Bson::Undefined);
                }
                out.extend(items.iter().cloned());
            } else {
                for item in items {
                    if let Bson::Document(sub) = item {
                        collect_values(sub, rest, out, hit_array);
                    }
                }
            }
        }
        Bson::Document(sub) if !rest.is_empty() => collect_values(sub, rest, out, hit_array),
        _ if rest.is_empty() => out.push(value.clone()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_and_options() {
        let s = IndexSpec::parse(
            &doc! {"key": {"a": 1, "b.c": -1}, "unique": true, "expireAfterSeconds": 5},
        )
        .unwrap();
        assert_eq!(s.name, "a_1_b.c_-1");
        assert!(s.unique && !s.sparse);
        assert_eq!(
            s.spec,
            doc! {"v": 2, "key": {"a": 1, "b.c": -1}, "name": "a_1_b.c_-1", "unique": true, "expireAfterSeconds": 5}
        );
        assert_eq!(IndexSpec::parse(&doc! {"key": {}}).unwrap_err().code(), 67);
        assert_eq!(
            IndexSpec::parse(&doc! {"key": {"a": "text"}})
                .unwrap_err()
                .code(),
            67
        );
        assert_eq!(
            IndexSpec::parse(&doc! {"key": {"a": 0}})
                .unwrap_err()
                .code(),
            67
        );
    }

    #[test]
    fn multikey_sparse_and_parallel_arrays() {
        let s = IndexSpec::parse(&doc! {"key": {"a.b": 1}, "name": "x"}).unwrap();
        let keys = s
            .keys_for(&doc! {"a": [{"b": 1}, {"b": 2}, {"b": 1}, {"c": 3}]})
            .unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(
            s.keys_for(&doc! {"z": 1}).unwrap()[0].values,
            vec![Bson::Null]
        );
        let sparse =
            IndexSpec::parse(&doc! {"key": {"a": 1}, "name": "s", "sparse": true}).unwrap();
        assert!(sparse.keys_for(&doc! {"z": 1}).unwrap().is_empty());
        let compound = IndexSpec::parse(&doc! {"key": {"a": 1, "b": 1}, "name": "c"}).unwrap();
        assert_eq!(
            compound
                .keys_for(&doc! {"a": [1, 2], "b": 3})
                .unwrap()
                .len(),
            2
        );
        let err = compound.keys_for(&doc! {"a": [1], "b": [2]}).err().unwrap();
        assert_eq!(err.code(), 171);
    }
}
