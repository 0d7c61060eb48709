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

/// A boolean index option's value (`unique: 1` is `unique: true`); other types were refused
/// when the spec was parsed.
fn truthy(value: &Bson) -> bool {
    match value {
        Bson::Boolean(b) => *b,
        Bson::Int32(n) => *n != 0,
        Bson::Int64(n) => *n != 0,
        Bson::Double(n) => *n != 0.0,
        _ => false,
    }
}

/// Whether a key pattern is `{_id: 1}` (the direction as any number type).
fn is_id_key(key: &Document) -> bool {
    key.len() == 1 && key.get("_id").and_then(direction) == Some(1.0)
}

/// A key direction as a number, so that `1`, `1.0` and `NumberLong(1)` compare equal.
fn direction(value: &Bson) -> Option<f64> {
    match value {
        Bson::Int32(n) => Some(f64::from(*n)),
        // Key directions are small; precision past 2^53 does not matter here.
        #[allow(clippy::cast_precision_loss)]
        Bson::Int64(n) => Some(*n as f64),
        Bson::Double(n) => Some(*n),
        _ => None,
    }
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
            if path == "$**" || path.ends_with(".$**") {
                return Err(bad(
                    "index type 'wildcard' is not supported by this server".into()
                ));
            }
            if path.is_empty() || path.split('.').any(str::is_empty) || path.starts_with('$') {
                return Err(bad(format!(
                    "Index key contains an illegal field name: '{path}'"
                )));
            }
            default_name.push(format!("{path}_{dir}"));
            fields.push((path.clone(), descending));
        }
        let name = match input.get("name") {
            Some(Bson::String(n)) if n == "*" => {
                return Err(EngineError::BadValue(
                    "The index name '*' is not valid.".into(),
                ));
            }
            Some(Bson::String(n)) if !n.is_empty() => n.clone(),
            None => default_name.join("_"),
            _ => return Err(bad("index name must be a non-empty string".into())),
        };
        // Booleans and numbers only, as mongod converts them; `unique: "yes"` is refused
        // rather than stored and ignored.
        for option in ["unique", "sparse", "hidden"] {
            if let Some(value) = input.get(option)
                && !matches!(
                    value,
                    Bson::Boolean(_) | Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_)
                )
            {
                return Err(EngineError::TypeMismatch(format!(
                    "The field '{option}' has value {option}: {value}, which is not convertible \
                     to bool"
                )));
            }
        }
        let flag = |f: &str| input.get(f).is_some_and(truthy);
        let is_id = is_id_key(&key);
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

    /// Refuses options a new `_id` index may not take (197): it is always unique, and takes
    /// only `key`, `name`, `ns`, `v` and `collation`. Checked where a user creates indexes, not
    /// where specs already stored are read back.
    pub(crate) fn check_new(input: &Document) -> Result<()> {
        let Ok(key) = input.get_document("key") else {
            return Ok(());
        };
        let is_id = is_id_key(key);
        match input
            .keys()
            .find(|k| !matches!(k.as_str(), "key" | "name" | "ns" | "v" | "collation"))
        {
            Some(field) if is_id => Err(EngineError::InvalidIndexSpecificationOption(format!(
                "The field '{field}' is not valid for an _id index specification. \
                 Specification: {input}"
            ))),
            _ => Ok(()),
        }
    }

    /// Whether `other` is the same index as mongod tells indexes apart: the same key pattern,
    /// `unique` and `sparse` (collation and partial filters, mongod's other identifying
    /// options, are not supported). Two such indexes cannot coexist.
    pub(crate) fn same_index(&self, other: &IndexSpec) -> bool {
        self.same_key(other) && self.unique == other.unique && self.sparse == other.sparse
    }

    /// Whether this is the primary `_id_` index (served by the document table itself).
    pub fn is_id(&self) -> bool {
        self.name == ID_INDEX_NAME
    }

    /// The options that tell two indexes on one key apart, as mongod compares them:
    /// `unique` and `sparse` as booleans (`1` is `true`, `false` is absent), and neither
    /// `background` (ignored since 4.2) nor `hidden`, `v`, `ns`, `key` or `name`.
    pub(crate) fn options(&self) -> Document {
        let mut options = Document::new();
        for (k, v) in &self.spec {
            match k.as_str() {
                "v" | "key" | "name" | "ns" | "background" | "hidden" => {}
                "unique" | "sparse" => {
                    if truthy(v) {
                        options.insert(k.clone(), true);
                    }
                }
                _ => {
                    options.insert(k.clone(), v.clone());
                }
            }
        }
        options
    }

    /// Whether `other` has the same key pattern: the same fields in the same order, with
    /// directions equal as numbers (`1`, `1.0` and `NumberLong(1)` are one).
    fn same_key(&self, other: &IndexSpec) -> bool {
        self.key.len() == other.key.len()
            && self
                .key
                .iter()
                .zip(&other.key)
                .all(|((a, x), (b, y))| a == b && direction(x) == direction(y))
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
    /// Fields whose paths run through the same array take their values element by element
    /// (`{"a.b": 1, "a.c": 1}` over `a: [{b: 1, c: 2}, ...]` gives `(1, 2), ...`); arrays
    /// at two different places are refused, as mongod refuses parallel arrays.
    pub(crate) fn keys_for(&self, doc: &Document) -> Result<Vec<IndexKey>> {
        let paths: Vec<Vec<&str>> = self
            .fields
            .iter()
            .map(|(path, _)| path.split('.').collect())
            .collect();
        let refs: Vec<&[&str]> = paths.iter().map(Vec::as_slice).collect();
        let mut unique: BTreeMap<Vec<u8>, Vec<Bson>> = BTreeMap::new();
        for found in combinations(doc, &refs)? {
            // A sparse index leaves out each key none of whose fields was found (mongod
            // checks key by key, so an array element without the field adds no null).
            if self.sparse && found.iter().all(Option::is_none) {
                continue;
            }
            let values: Vec<Bson> = found.into_iter().map(|v| v.unwrap_or(Bson::Null)).collect();
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

/// The value combinations of `paths` in `doc`, one value per path each (`None` where
/// the path finds nothing).
fn combinations(doc: &Document, paths: &[&[&str]]) -> Result<Vec<Vec<Option<Bson>>>> {
    // The first array on each path: every path that meets one must meet the same.
    let mut shared: Option<(usize, usize)> = None;
    for (i, path) in paths.iter().enumerate() {
        let Some(len) = first_array(doc, path) else {
            continue;
        };
        match shared {
            None => shared = Some((i, len)),
            Some((j, shared_len)) if paths[j][..shared_len] == path[..len] => {}
            Some((j, _)) => {
                return Err(EngineError::CannotIndexParallelArrays(
                    path.join("."),
                    paths[j].join("."),
                ));
            }
        }
    }
    let Some((j, len)) = shared else {
        // No array: one value per path.
        return Ok(vec![paths.iter().map(|p| plain_value(doc, p)).collect()]);
    };
    let prefix = &paths[j][..len];
    let under: Vec<bool> = paths.iter().map(|p| p.starts_with(prefix)).collect();
    let constants: Vec<Option<Bson>> = paths.iter().map(|p| plain_value(doc, p)).collect();
    let items = match array_at(doc, prefix) {
        Some(items) if !items.is_empty() => items,
        // An empty array: `undefined` where it is the indexed value, null below it.
        _ => {
            return Ok(vec![
                paths
                    .iter()
                    .zip(&under)
                    .zip(constants)
                    .map(|((p, u), c)| match (u, p.len() == len) {
                        (true, true) => Some(Bson::Undefined),
                        (true, false) => None,
                        (false, _) => c,
                    })
                    .collect(),
            ]);
        }
    };
    // The paths below the array, as each element sees them.
    let rests: Vec<&[&str]> = paths
        .iter()
        .zip(&under)
        .filter(|(p, u)| **u && p.len() > len)
        .map(|(p, _)| &p[len..])
        .collect();
    let mut out = Vec::new();
    for item in items {
        let inner = match item {
            Bson::Document(sub) if !rests.is_empty() => combinations(sub, &rests)?,
            _ => vec![vec![None; rests.len()]],
        };
        for inner_values in inner {
            let mut inner_values = inner_values.into_iter();
            let combo = paths
                .iter()
                .zip(&under)
                .zip(&constants)
                .map(|((p, u), c)| match (u, p.len() == len) {
                    (true, true) => Some(item.clone()),
                    (true, false) => inner_values.next().flatten(),
                    (false, _) => c.clone(),
                })
                .collect();
            out.push(combo);
        }
    }
    Ok(out)
}

/// How many components of `path` lead to the first array on it, if it meets one.
fn first_array(doc: &Document, path: &[&str]) -> Option<usize> {
    let mut current = doc.get(*path.first()?)?;
    for (i, part) in path.iter().enumerate().skip(1) {
        current = match current {
            Bson::Array(_) => return Some(i),
            Bson::Document(d) => d.get(*part)?,
            _ => return None,
        };
    }
    matches!(current, Bson::Array(_)).then_some(path.len())
}

/// The array at `path` (followed through documents only).
fn array_at<'a>(doc: &'a Document, path: &[&str]) -> Option<&'a [Bson]> {
    match value_at(doc, path)? {
        Bson::Array(items) => Some(items),
        _ => None,
    }
}

fn value_at<'a>(doc: &'a Document, path: &[&str]) -> Option<&'a Bson> {
    let (first, rest) = path.split_first()?;
    let mut current = doc.get(*first)?;
    for part in rest {
        current = match current {
            Bson::Document(d) => d.get(*part)?,
            _ => return None,
        };
    }
    Some(current)
}

/// The value at a path that meets no array.
fn plain_value(doc: &Document, path: &[&str]) -> Option<Bson> {
    value_at(doc, path).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_id_index_is_refused_when_created_not_when_read_back() {
        let old = doc! {"v": 2, "key": {"_id": 1}, "name": "_id_1", "unique": true};
        assert_eq!(IndexSpec::check_new(&old).unwrap_err().code(), 197);
        // A catalog or an oplog written by an older rewind still reads, as the `_id` index.
        let spec = IndexSpec::parse(&old).unwrap();
        assert!(spec.same_index(&IndexSpec::id_index()));
        assert!(IndexSpec::check_new(&doc! {"key": {"_id": 1}, "name": "_id_"}).is_ok());
        assert!(IndexSpec::check_new(&doc! {"key": {"a": 1}, "unique": true}).is_ok());
    }

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
        let code = |spec: Document| IndexSpec::parse(&spec).unwrap_err().code();
        assert_eq!(code(doc! {"key": {"a": 1}, "unique": "yes"}), 14);
        assert_eq!(code(doc! {"key": {"a": 1}, "sparse": "yes"}), 14);
        assert_eq!(code(doc! {"key": {"a": 1}, "name": "*"}), 2);
        assert_eq!(code(doc! {"key": {"t.$**": 1}, "name": "w"}), 67);
        assert_eq!(code(doc! {"key": {"$**": 1}, "name": "w"}), 67);
    }

    #[test]
    fn multikey_sparse_and_parallel_arrays() {
        let s = IndexSpec::parse(&doc! {"key": {"a.b": 1}, "name": "x"}).unwrap();
        let keys = s
            .keys_for(&doc! {"a": [{"b": 1}, {"b": 2}, {"b": 1}, {"c": 3}]})
            .unwrap();
        // 1, 2 and null (the element without `b`), once each.
        assert_eq!(keys.len(), 3);
        assert_eq!(
            s.keys_for(&doc! {"z": 1}).unwrap()[0].values,
            vec![Bson::Null]
        );
        let sparse =
            IndexSpec::parse(&doc! {"key": {"a": 1}, "name": "s", "sparse": true}).unwrap();
        assert!(sparse.keys_for(&doc! {"z": 1}).unwrap().is_empty());
        // Key by key: the element without `a.b` adds no null key to a sparse index.
        let sparse_path =
            IndexSpec::parse(&doc! {"key": {"a.b": 1}, "name": "s", "sparse": true}).unwrap();
        let keys = sparse_path
            .keys_for(&doc! {"a": [{"b": 1}, {"c": 1}]})
            .unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].values, vec![Bson::Int32(1)]);
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

    #[test]
    fn fields_through_one_array_take_its_elements_together() {
        let values = |spec: Document, doc: Document| -> Vec<Vec<Bson>> {
            let s = IndexSpec::parse(&doc! {"key": spec, "name": "x"}).unwrap();
            s.keys_for(&doc)
                .unwrap()
                .into_iter()
                .map(|k| k.values)
                .collect()
        };
        let mut got = values(
            doc! {"a.b": 1, "a.c": 1},
            doc! {"a": [{"b": 1, "c": 2}, {"b": 3, "c": 4}]},
        );
        got.sort_by_key(|v| v[0].as_i32());
        assert_eq!(
            got,
            vec![
                vec![Bson::Int32(1), Bson::Int32(2)],
                vec![Bson::Int32(3), Bson::Int32(4)]
            ]
        );
        assert_eq!(
            values(doc! {"a.b": 1, "a.c": 1}, doc! {"a": [{"b": 1}, {"c": 1}]}).len(),
            2
        );
        assert_eq!(values(doc! {"a": 1, "a.b": 1}, doc! {"a": [1, 2]}).len(), 2);
        // Nested arrays shared too, and a field outside the array held constant.
        assert_eq!(
            values(
                doc! {"a.b.c": 1, "a.b.d": 1, "z": 1},
                doc! {"a": [{"b": [{"c": 1, "d": 2}, {"c": 3, "d": 4}]}], "z": 9}
            )
            .len(),
            2
        );
        // Two different arrays are parallel arrays.
        let s = IndexSpec::parse(&doc! {"key": {"a.b": 1, "a.c": 1}, "name": "x"}).unwrap();
        let err = s.keys_for(&doc! {"a": {"b": [1], "c": [2]}}).err().unwrap();
        assert_eq!(err.code(), 171);
    }
}
