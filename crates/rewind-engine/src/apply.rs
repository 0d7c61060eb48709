//! Applying MongoDB-format oplog entries (what `applyOps` does), idempotently.
//!
//! Replaying an entry twice, or replaying entries over a snapshot taken while they were
//! happening, converges: inserts upsert, updates of missing documents upsert their
//! replacement (and are skipped for diffs), deletes and drops of missing things succeed,
//! `create` of an existing collection and identical `createIndexes` are no-ops. Applied
//! entries are logged again with fresh optimes, as mongod's `applyOps` does on a primary.

use bson::{Binary, Bson, Document, RawDocument, RawDocumentBuf, doc};

use crate::entries::parse_doc;
use crate::error::{EngineError, Result};
use crate::index::IndexSpec;
use crate::txn::WriteTxn;

fn bad(msg: impl Into<String>) -> EngineError {
    EngineError::BadValue(msg.into())
}

impl WriteTxn<'_> {
    /// Applies one oplog entry (`op` i/u/d/c/n). Updates may be replacements or `$v: 2`
    /// diffs (binary `b` sections excepted); commands: `create`, `drop`, `dropDatabase`,
    /// `renameCollection`, `createIndexes`, `commitIndexBuild`, `dropIndexes`/`deleteIndexes`,
    /// `applyOps`; `startIndexBuild`/`abortIndexBuild` and no-ops are skipped. Anything else is
    /// refused with [`EngineError::BadValue`].
    pub fn apply_oplog_entry(&mut self, entry: &RawDocument) -> Result<()> {
        self.atomically(|t| t.apply_inner(entry))
    }

    fn apply_inner(&mut self, entry: &RawDocument) -> Result<()> {
        let op = entry
            .get_str("op")
            .map_err(|_| bad("oplog entry has no 'op'"))?;
        let ns = entry.get_str("ns").unwrap_or_default();
        let ui = match entry.get("ui")? {
            Some(v) => match Bson::try_from(v)? {
                Bson::Binary(b) => Some(b),
                _ => None,
            },
            None => None,
        };
        let o = entry
            .get_document("o")
            .map_err(|_| bad("oplog entry has no 'o' document"))?;
        // Like mongod, resolve the collection by UUID first: a later rename must not make an
        // earlier entry recreate the old name when the log is replayed again.
        let resolved = if op == "c" {
            ns.to_string()
        } else {
            self.resolve(ns, ui.as_ref())
        };
        let ns = resolved.as_str();
        match op {
            "n" => Ok(()),
            "i" => {
                if !self.catalog.contains_key(ns) {
                    self.create_inner(ns, &Document::new(), ui)?;
                }
                self.insert_inner(ns, o, true)
            }
            "u" => self.apply_update(ns, ui, entry, o),
            "d" => {
                let id = Document::try_from(o)?
                    .get("_id")
                    .cloned()
                    .ok_or_else(|| bad("delete without _id"))?;
                self.delete(ns, &id).map(drop)
            }
            "c" => self.apply_command(ns, ui, &Document::try_from(o)?),
            other => Err(bad(format!("unsupported oplog op '{other}'"))),
        }
    }

    fn resolve(&self, ns: &str, ui: Option<&Binary>) -> String {
        ui.and_then(|u| self.collections().find(|c| &c.uuid == u))
            .map_or_else(|| ns.to_string(), |c| c.ns())
    }

    fn apply_update(
        &mut self,
        ns: &str,
        ui: Option<Binary>,
        entry: &RawDocument,
        o: &RawDocument,
    ) -> Result<()> {
        let o2 = entry
            .get_document("o2")
            .map_err(|_| bad("update entry has no 'o2'"))?;
        let id = Document::try_from(o2)?
            .get("_id")
            .cloned()
            .ok_or_else(|| bad("update o2 without _id"))?;
        let o_doc = Document::try_from(o)?;
        let is_modifier = o_doc.keys().next().is_some_and(|k| k.starts_with('$'));
        let new_doc = if is_modifier {
            if !matches!(o_doc.get("$v"), Some(Bson::Int32(2) | Bson::Int64(2))) {
                return Err(bad("only replacement and $v:2 diff updates can be applied"));
            }
            let diff = o_doc
                .get_document("diff")
                .map_err(|_| bad("$v:2 update without 'diff'"))?;
            let Some(current) = self.get(ns, &id)? else {
                return Ok(());
            };
            let mut current = Document::try_from(current)?;
            apply_diff(&mut current, diff)?;
            RawDocumentBuf::try_from(&current)?
        } else if o_doc.contains_key("_id") {
            o.to_owned()
        } else {
            let mut with_id = doc! {"_id": id.clone()};
            with_id.extend(o_doc);
            RawDocumentBuf::try_from(&with_id)?
        };
        if !self.catalog.contains_key(ns) {
            self.create_inner(ns, &Document::new(), ui)?;
        }
        if self.get(ns, &id)?.is_some() {
            let (parsed, _) = parse_doc(&new_doc)?;
            self.update_parsed(ns, &id, &new_doc, &parsed)
        } else {
            self.insert_inner(ns, &new_doc, true)
        }
    }

    fn apply_command(&mut self, ns: &str, ui: Option<Binary>, o: &Document) -> Result<()> {
        let db = ns
            .strip_suffix(".$cmd")
            .ok_or_else(|| bad(format!("command entry on '{ns}'")))?;
        let Some((name, first)) = o.iter().next() else {
            return Err(bad("empty command entry"));
        };
        let target = |v: &Bson| {
            v.as_str()
                .map(|c| format!("{db}.{c}"))
                .ok_or_else(|| bad(format!("bad {name} target")))
        };
        match name.as_str() {
            "create" => {
                let coll_ns = target(first)?;
                let uuid_exists = ui
                    .as_ref()
                    .is_some_and(|u| self.collections().any(|c| &c.uuid == u));
                if uuid_exists || self.catalog.contains_key(&coll_ns) {
                    return Ok(());
                }
                let options: Document = o
                    .iter()
                    .skip(1)
                    .filter(|(k, _)| *k != "idIndex")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                self.create_inner(&coll_ns, &options, ui)
            }
            "drop" => match ui {
                // Only the collection with that UUID, never a newer one of the same name.
                Some(u) => {
                    let found = self.collections().find(|c| c.uuid == u).map(|c| c.ns());
                    found.map_or(Ok(()), |coll_ns| self.drop_inner(&coll_ns).map(drop))
                }
                None => self.drop_inner(&target(first)?).map(drop),
            },
            "dropDatabase" => self.drop_database(db).map(drop),
            "renameCollection" => {
                let from = first
                    .as_str()
                    .ok_or_else(|| bad("bad renameCollection source"))?;
                let to = o
                    .get_str("to")
                    .map_err(|_| bad("renameCollection without 'to'"))?;
                if !self.catalog.contains_key(from) && self.catalog.contains_key(to) {
                    return Ok(());
                }
                let drop_target = !matches!(o.get("dropTarget"), None | Some(Bson::Boolean(false)));
                self.rename_collection(from, to, drop_target)
            }
            "createIndexes" => {
                let spec: Document = o
                    .iter()
                    .skip(1)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                self.apply_index(&target(first)?, &spec)
            }
            "commitIndexBuild" => {
                let coll_ns = self.resolve(&target(first)?, ui.as_ref());
                let specs = o
                    .get_array("indexes")
                    .map_err(|_| bad("commitIndexBuild without 'indexes'"))?;
                for spec in specs {
                    let spec = spec
                        .as_document()
                        .ok_or_else(|| bad("index spec is not a document"))?;
                    self.apply_index(&coll_ns, spec)?;
                }
                Ok(())
            }
            "startIndexBuild" | "abortIndexBuild" => Ok(()),
            "dropIndexes" | "deleteIndexes" => {
                let coll_ns = self.resolve(&target(first)?, ui.as_ref());
                let index = o
                    .get_str("index")
                    .map_err(|_| bad("dropIndexes without 'index' name"))?;
                let exists = self
                    .catalog
                    .get(&coll_ns)
                    .is_some_and(|c| c.index(index).is_some());
                if exists {
                    self.drop_index(&coll_ns, index)
                } else {
                    Ok(())
                }
            }
            "applyOps" => {
                let ops = o
                    .get_array("applyOps")
                    .map_err(|_| bad("applyOps is not an array"))?;
                for op in ops {
                    let op = op
                        .as_document()
                        .ok_or_else(|| bad("applyOps entry is not a document"))?;
                    self.apply_inner(&RawDocumentBuf::try_from(op)?)?;
                }
                Ok(())
            }
            other => Err(bad(format!("unsupported oplog command '{other}'"))),
        }
    }

    fn apply_index(&mut self, ns: &str, spec: &Document) -> Result<()> {
        let spec = IndexSpec::parse(spec)?;
        if !self.catalog.contains_key(ns) {
            self.create_inner(ns, &Document::new(), None)?;
        }
        // Every collection has its `_id` index; an older rewind logged a second one on `_id`
        // (under another name), which replays as nothing.
        if spec.same_index(&IndexSpec::id_index()) {
            return Ok(());
        }
        self.create_index(ns, spec).map(drop)
    }
}

/// Applies a `$v: 2` document diff in place (sections `d`, `u`, `i`, `s<field>`).
fn apply_diff(doc: &mut Document, diff: &Document) -> Result<()> {
    for (section, value) in diff {
        match section.as_str() {
            "d" => {
                for field in as_doc(value)?.keys() {
                    doc.remove(field);
                }
            }
            // `insert` keeps an existing field's position, as mongod's update does.
            "u" => {
                for (field, v) in as_doc(value)? {
                    doc.insert(field.clone(), v.clone());
                }
            }
            "i" => {
                for (field, v) in as_doc(value)? {
                    doc.remove(field);
                    doc.insert(field.clone(), v.clone());
                }
            }
            s if s.len() > 1 && s.starts_with('s') => {
                let sub = as_doc(value)?;
                match doc.get_mut(&s[1..]) {
                    Some(Bson::Document(inner)) => apply_diff(inner, sub)?,
                    Some(Bson::Array(items)) => apply_array_diff(items, sub)?,
                    _ => {
                        return Err(bad(format!(
                            "diff descends into missing field '{}'",
                            &s[1..]
                        )));
                    }
                }
            }
            other => return Err(bad(format!("unsupported $v:2 diff section '{other}'"))),
        }
    }
    Ok(())
}

/// Applies an array diff: `a: true`, optional `l` (new length), `u<i>` and `s<i>` entries.
fn apply_array_diff(items: &mut Vec<Bson>, diff: &Document) -> Result<()> {
    for (key, value) in diff {
        if key == "a" {
            continue;
        }
        if key == "l" {
            let len = value
                .as_i64()
                .or(value.as_i32().map(i64::from))
                .unwrap_or(0);
            items.resize(usize::try_from(len).unwrap_or(0), Bson::Null);
            continue;
        }
        let (kind, index) = key.split_at(1.min(key.len()));
        let index: usize = index
            .parse()
            .map_err(|_| bad(format!("bad array diff key '{key}'")))?;
        match kind {
            "u" => {
                if index >= items.len() {
                    items.resize(index + 1, Bson::Null);
                }
                items[index] = value.clone();
            }
            "s" => match items.get_mut(index) {
                Some(Bson::Document(inner)) => apply_diff(inner, as_doc(value)?)?,
                Some(Bson::Array(inner)) => apply_array_diff(inner, as_doc(value)?)?,
                _ => return Err(bad(format!("diff descends into missing element {index}"))),
            },
            _ => return Err(bad(format!("unsupported array diff key '{key}'"))),
        }
    }
    Ok(())
}

fn as_doc(v: &Bson) -> Result<&Document> {
    v.as_document()
        .ok_or_else(|| bad("diff section is not a document"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_sections() {
        let mut d = doc! {"_id": 1, "a": 1, "b": {"c": 1, "d": [1, 2, 3]}, "x": 0};
        let diff = doc! {"d": {"x": false}, "u": {"a": 2}, "i": {"n": 5}, "sb": {"u": {"c": 9}, "sd": {"a": true, "l": 2, "u1": 7}}};
        apply_diff(&mut d, &diff).unwrap();
        assert_eq!(
            d,
            doc! {"_id": 1, "a": 2, "b": {"c": 9, "d": [1, 7]}, "n": 5}
        );
        assert!(apply_diff(&mut d, &doc! {"b": {"a": 1}}).is_err());
    }
}
