//! What a bulk load computes for each document before it is stored: its `_id` key and its
//! secondary index entries, found in the one walk over the document that checks its framing
//! when every index is on top-level fields (the index key of a number or a string is then
//! encoded straight from the bytes), through the general path otherwise (nested paths,
//! arrays, embedded documents).

use bson::RawDocument;

use super::frame::{self, Field};
use super::runs::Entry;
use crate::entries::keys_of;
use crate::error::Result;
use crate::keys::encode_component;
use crate::store::CollectionInfo;

/// How to compute the keys of one collection's documents.
pub(super) struct KeyPlan {
    info: CollectionInfo,
    /// Top-level field names the indexes use, when every index uses only such fields.
    wanted: Vec<String>,
    flat: Option<Vec<FlatIndex>>,
}

/// A secondary index on top-level fields only: index id, fields (an index into
/// `KeyPlan::wanted` and whether descending) and sparseness.
struct FlatIndex {
    id: i64,
    fields: Vec<(usize, bool)>,
    sparse: bool,
}

impl KeyPlan {
    /// The plan for a collection (its catalog entry is copied: the plan goes to another thread).
    pub(super) fn new(info: &CollectionInfo) -> Self {
        let mut wanted: Vec<String> = Vec::new();
        let mut flat = Some(Vec::new());
        for (spec, id) in info.secondary() {
            let mut fields = Vec::new();
            for (path, descending) in &spec.fields {
                if path.contains('.') {
                    flat = None;
                    break;
                }
                let w = match wanted.iter().position(|w| w == path) {
                    Some(w) => w,
                    None => {
                        wanted.push(path.clone());
                        wanted.len() - 1
                    }
                };
                fields.push((w, *descending));
            }
            if let Some(flat) = &mut flat {
                flat.push(FlatIndex {
                    id,
                    fields,
                    sparse: spec.sparse,
                });
            }
        }
        if flat.is_none() {
            wanted.clear();
        }
        Self {
            info: info.clone(),
            wanted,
            flat,
        }
    }

    fn indexed(&self) -> bool {
        self.info.secondary().next().is_some()
    }
}

/// The keys of a batch of documents.
pub(super) struct Keys {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    /// Every index entry of the batch.
    pub(super) entries: Vec<Entry>,
}

impl Keys {
    /// Checks each document's framing and `_id`, encodes the `_id` and the index entries.
    pub(super) fn of(docs: &[&RawDocument], plan: &KeyPlan) -> Result<Self> {
        let mut keys = Keys {
            bytes: Vec::with_capacity(docs.len() * 16),
            ends: Vec::with_capacity(docs.len()),
            entries: Vec::new(),
        };
        let wanted: Vec<&str> = plan.wanted.iter().map(String::as_str).collect();
        let mut found: Vec<Option<Field>> = vec![None; wanted.len()];
        for doc in docs {
            let id = frame::walk(doc, &wanted, &mut found)?;
            let start = keys.bytes.len();
            encode_component(&id, false, &mut keys.bytes);
            keys.ends.push(keys.bytes.len());
            if plan.indexed() {
                let k = &keys.bytes[start..];
                let flat = plan
                    .flat
                    .as_ref()
                    .is_some_and(|flat| flat_entries(doc, flat, &found, k, &mut keys.entries));
                if !flat {
                    general_entries(doc, &plan.info, k, &mut keys.entries)?;
                }
            }
        }
        Ok(keys)
    }

    /// The `_id` key of the `i`th document.
    pub(super) fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }
}

/// Adds the entries of `doc` for indexes on top-level fields, if each value is one whose
/// key is encoded here; returns `false` (adding nothing) when the general path must do it.
fn flat_entries(
    doc: &RawDocument,
    indexes: &[FlatIndex],
    found: &[Option<Field>],
    k: &[u8],
    out: &mut Vec<Entry>,
) -> bool {
    let added = out.len();
    for index in indexes {
        let mut bytes = Vec::with_capacity(16 + k.len());
        let mut all_missing = true;
        for &(w, descending) in &index.fields {
            let value = match found[w] {
                None => bson::Bson::Null,
                Some(field) => match frame::simple_value(doc, field) {
                    Some(value) => {
                        all_missing = false;
                        value
                    }
                    None => {
                        out.truncate(added);
                        return false; // an array (multikey), a document, binary data, …
                    }
                },
            };
            encode_component(&value, descending, &mut bytes);
        }
        if index.sparse && all_missing {
            continue;
        }
        let split = bytes.len();
        bytes.extend_from_slice(k);
        out.push((index.id, bytes, split));
    }
    true
}

/// Adds the entries of `doc` as the engine's insert path computes them.
fn general_entries(
    doc: &RawDocument,
    info: &CollectionInfo,
    k: &[u8],
    out: &mut Vec<Entry>,
) -> Result<()> {
    for ((_, index_id), keys) in info.secondary().zip(keys_of(info, doc, false)?) {
        for key in keys {
            let split = key.bytes.len();
            let mut bytes = key.bytes;
            bytes.extend_from_slice(k);
            out.push((index_id, bytes, split));
        }
    }
    Ok(())
}
