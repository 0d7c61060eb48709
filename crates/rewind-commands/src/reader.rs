//! Candidate selection: the documents of a namespace that may match a filter, found through
//! the primary key, a secondary index or a scan — inside a read view or a write transaction.

use std::collections::HashSet;

use bson::{Bson, Document, RawDocument, RawDocumentBuf, Timestamp};
use rewind_engine::{CollectionInfo, ReadView, WriteTxn, key_bytes};
use rewind_query::filter::Filter;

use crate::error::Result;

/// Documents fetched per scan step: large enough to amortize the query, small enough to
/// keep memory flat on big collections.
pub const SCAN_CHUNK: usize = 512;

/// The reads candidate selection needs, shared by [`ReadView`] and [`WriteTxn`] (whose reads
/// see its own uncommitted writes, so updates select from the state they modify).
pub trait Reader {
    /// The collection's catalog entry.
    fn info(&self, ns: &str) -> Option<&CollectionInfo>;
    /// The document with this `_id`.
    fn get_doc(&self, ns: &str, id: &Bson) -> Result<Option<RawDocumentBuf>>;
    /// Calls `f` with the document of each of `ids` that exists, in order, until it returns
    /// `false`.
    fn get_docs(
        &self,
        ns: &str,
        ids: &[Bson],
        f: &mut dyn FnMut(&RawDocument) -> Result<bool>,
    ) -> Result<()>;
    /// Up to `limit` documents in `_id` order after `start_after`.
    fn scan_docs(
        &self,
        ns: &str,
        start_after: Option<&Bson>,
        limit: usize,
    ) -> Result<Vec<RawDocumentBuf>>;
    /// Documents whose index key starts with `values`.
    fn by_index(&self, ns: &str, index: &str, values: &[Bson]) -> Result<Vec<RawDocumentBuf>>;
    /// Up to `limit` oplog entries after the optime `after`, oldest first.
    fn oplog_entries(&self, after: Option<Timestamp>, limit: usize) -> Result<Vec<RawDocumentBuf>>;
}

impl Reader for ReadView {
    fn info(&self, ns: &str) -> Option<&CollectionInfo> {
        self.collection(ns)
    }
    fn get_doc(&self, ns: &str, id: &Bson) -> Result<Option<RawDocumentBuf>> {
        Ok(self.get(ns, id)?)
    }
    fn get_docs(
        &self,
        ns: &str,
        ids: &[Bson],
        f: &mut dyn FnMut(&RawDocument) -> Result<bool>,
    ) -> Result<()> {
        // The engine's callback speaks engine errors: park ours and stop.
        let mut failure = None;
        self.get_many(ns, ids, |doc| match f(doc) {
            Ok(more) => Ok(more),
            Err(e) => {
                failure = Some(e);
                Ok(false)
            }
        })?;
        failure.map_or(Ok(()), Err)
    }
    fn scan_docs(
        &self,
        ns: &str,
        start_after: Option<&Bson>,
        limit: usize,
    ) -> Result<Vec<RawDocumentBuf>> {
        Ok(self.scan(ns, start_after, limit)?)
    }
    fn by_index(&self, ns: &str, index: &str, values: &[Bson]) -> Result<Vec<RawDocumentBuf>> {
        Ok(self.find_by_index(ns, index, values)?)
    }
    fn oplog_entries(&self, after: Option<Timestamp>, limit: usize) -> Result<Vec<RawDocumentBuf>> {
        Ok(self.oplog_range(after, None, limit)?)
    }
}

impl Reader for WriteTxn<'_> {
    fn info(&self, ns: &str) -> Option<&CollectionInfo> {
        self.collection(ns)
    }
    fn get_doc(&self, ns: &str, id: &Bson) -> Result<Option<RawDocumentBuf>> {
        Ok(self.get(ns, id)?)
    }
    fn get_docs(
        &self,
        ns: &str,
        ids: &[Bson],
        f: &mut dyn FnMut(&RawDocument) -> Result<bool>,
    ) -> Result<()> {
        for id in ids {
            if let Some(raw) = self.get(ns, id)?
                && !f(&raw)?
            {
                break;
            }
        }
        Ok(())
    }
    fn scan_docs(
        &self,
        ns: &str,
        start_after: Option<&Bson>,
        limit: usize,
    ) -> Result<Vec<RawDocumentBuf>> {
        Ok(self.scan(ns, start_after, limit)?)
    }
    fn by_index(&self, ns: &str, index: &str, values: &[Bson]) -> Result<Vec<RawDocumentBuf>> {
        Ok(self.find_by_index(ns, index, values)?)
    }
    fn oplog_entries(&self, after: Option<Timestamp>, limit: usize) -> Result<Vec<RawDocumentBuf>> {
        Ok(self.oplog_range(after, limit)?)
    }
}

/// How candidates are found for a filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    /// The filter pins `_id`: one primary-key lookup.
    Id(Bson),
    /// The filter's `_id` is one of these (`$in`): one primary-key lookup each.
    Ids(Vec<Bson>),
    /// An equality on the leading field of this secondary index.
    Index(String, Bson),
    /// An `$in` on the leading field of this secondary index: one lookup per value, in key
    /// order, each document once.
    IndexIn(String, Vec<Bson>),
    /// Every document in `_id` order.
    Scan,
    /// Every entry of the oplog (`local.oplog.rs`), in optime order.
    Oplog,
}

/// Whether an equality value can be looked up in an index and give exactly the documents
/// the filter could match. Arrays (whole-array vs element matching), null (matches missing
/// fields), embedded documents (cross-type numbers inside), regexes and undefined are left
/// to a scan.
fn indexable(value: &Bson) -> bool {
    !matches!(
        value,
        Bson::Array(_)
            | Bson::Null
            | Bson::Undefined
            | Bson::Document(_)
            | Bson::RegularExpression(_)
    )
}

/// Picks the access path for `filter` on a collection (`info` = `None` when it is missing).
pub fn plan(info: Option<&CollectionInfo>, filter: &Filter) -> Access {
    if let Some(id) = filter.id_equality()
        && indexable(id)
    {
        return Access::Id(id.clone());
    }
    if let Some(ids) = filter.in_values("_id")
        && ids.iter().all(|id| indexable(id))
    {
        // Sorted and deduplicated, so results come in `_id` order as a scan would give them.
        // By storage key: keys order as values compare, and one key finds one document (a
        // bytewise sort is also far cheaper than comparing values).
        return Access::Ids(sorted_by_key(ids));
    }
    let Some(info) = info else {
        return Access::Scan;
    };
    for spec in info.indexes.iter().filter(|s| !s.is_id()) {
        // Partial and collated indexes may not hold every document with the value; the
        // planner never uses a hidden index.
        if spec.spec.contains_key("partialFilterExpression")
            || spec.spec.contains_key("collation")
            || matches!(spec.spec.get("hidden"), Some(Bson::Boolean(true)))
        {
            continue;
        }
        let Some(leading) = spec.key.keys().next() else {
            continue;
        };
        if let Some(value) = filter.equality_value(leading)
            && indexable(value)
        {
            return Access::Index(spec.name.clone(), value.clone());
        }
        if let Some(values) = filter.in_values(leading)
            && values.iter().all(|v| indexable(v))
        {
            return Access::IndexIn(spec.name.clone(), sorted_by_key(values));
        }
    }
    Access::Scan
}

/// Values sorted by storage key and deduplicated: keys order as values compare, and a
/// bytewise sort is far cheaper than comparing values.
fn sorted_by_key(values: Vec<&Bson>) -> Vec<Bson> {
    let mut keyed: Vec<(Vec<u8>, &Bson)> = values.into_iter().map(|v| (key_bytes(v), v)).collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.dedup_by(|a, b| a.0 == b.0);
    keyed.into_iter().map(|(_, v)| v.clone()).collect()
}

/// How candidates for `filter` are found in `ns`: the oplog's own order, or [`plan`]'s choice.
pub fn access_path(reader: &impl Reader, ns: &str, filter: &Filter) -> Access {
    if ns == crate::oplog::OPLOG_NS {
        Access::Oplog
    } else {
        plan(reader.info(ns), filter)
    }
}

/// How many documents `ns` holds (entries, for the oplog), from its size: nothing is read.
pub fn stored_count(view: &ReadView, ns: &str) -> Result<u64> {
    Ok(if ns == crate::oplog::OPLOG_NS {
        view.oplog_stats()?.count
    } else {
        view.stats(ns)?.count
    })
}

/// Calls `f` with every document of `ns` matching `filter`, in access-path order, until it
/// returns `false`.
pub fn for_each_match(
    reader: &impl Reader,
    ns: &str,
    filter: &Filter,
    mut f: impl FnMut(Document) -> Result<bool>,
) -> Result<()> {
    let access = access_path(reader, ns, filter);
    for_each_candidate(reader, ns, access, |raw| {
        let doc = Document::try_from(raw)?;
        if filter.try_matches(&doc)? {
            return f(doc);
        }
        Ok(true)
    })
}

/// Calls `f` with every candidate document `access` finds in `ns` (which the filter must
/// still check), in access-path order, until it returns `false`.
pub fn for_each_candidate(
    reader: &impl Reader,
    ns: &str,
    access: Access,
    mut f: impl FnMut(&RawDocument) -> Result<bool>,
) -> Result<()> {
    match access {
        Access::Id(id) => {
            if let Some(raw) = reader.get_doc(ns, &id)? {
                f(&raw)?;
            }
        }
        Access::Ids(ids) => reader.get_docs(ns, &ids, &mut f)?,
        Access::Index(name, value) => {
            for raw in reader.by_index(ns, &name, &[value])? {
                if !f(&raw)? {
                    break;
                }
            }
        }
        Access::IndexIn(name, values) => {
            // A multikey document may hold several of the values: it is a candidate once.
            let mut seen = HashSet::new();
            for value in values {
                crate::deadline::check()?;
                for raw in reader.by_index(ns, &name, &[value])? {
                    if seen.insert(key_bytes(&raw_id(&raw)?)) && !f(&raw)? {
                        return Ok(());
                    }
                }
            }
        }
        Access::Scan => {
            let mut last: Option<Bson> = None;
            loop {
                crate::deadline::check()?;
                let chunk = reader.scan_docs(ns, last.as_ref(), SCAN_CHUNK)?;
                let full = chunk.len() == SCAN_CHUNK;
                for raw in &chunk {
                    if !f(raw)? {
                        return Ok(());
                    }
                }
                match chunk.last() {
                    Some(raw) if full => last = Some(raw_id(raw)?),
                    _ => break,
                }
            }
        }
        Access::Oplog => {
            let mut after = None;
            loop {
                crate::deadline::check()?;
                let chunk = reader.oplog_entries(after, SCAN_CHUNK)?;
                for raw in &chunk {
                    if !f(raw)? {
                        return Ok(());
                    }
                }
                match chunk.last() {
                    Some(raw) if chunk.len() == SCAN_CHUNK => {
                        after = Some(raw.get_timestamp("ts")?)
                    }
                    _ => break,
                }
            }
        }
    }
    Ok(())
}

/// Every matching document, up to `limit` (0 = all).
pub fn matching(
    reader: &impl Reader,
    ns: &str,
    filter: &Filter,
    limit: usize,
) -> Result<Vec<Document>> {
    let mut out = Vec::new();
    for_each_match(reader, ns, filter, |doc| {
        out.push(doc);
        Ok(limit == 0 || out.len() < limit)
    })?;
    Ok(out)
}

/// The `_id` of a stored document.
pub fn raw_id(raw: &RawDocumentBuf) -> Result<Bson> {
    match raw.get("_id")? {
        Some(value) => Ok(Bson::try_from(value)?),
        None => Ok(Bson::Null),
    }
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;

    #[test]
    fn plan_prefers_id_then_index_then_scan() {
        let f = Filter::parse(&doc! {"_id": 5, "a": 1}).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan(None, &f), Access::Id(Bson::Int32(5)));
        let f = Filter::parse(&doc! {"_id": {"$in": [3, 1, 3.0]}}).unwrap();
        assert_eq!(
            plan(None, &f),
            Access::Ids(vec![Bson::Int32(1), Bson::Int32(3)]),
            "primary-key lookups in _id order, once each"
        );
        let regex = Bson::RegularExpression(bson::Regex {
            pattern: "x".try_into().unwrap_or_else(|e| panic!("{e}")),
            options: "".try_into().unwrap_or_else(|e| panic!("{e}")),
        });
        let f = Filter::parse(&doc! {"_id": {"$in": [1, regex]}}).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan(None, &f), Access::Scan, "a regex in $in needs a scan");
        let f = Filter::parse(&doc! {"_id": {"$gt": 5}}).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan(None, &f), Access::Scan);
        let f = Filter::parse(&doc! {"_id": [1, 2]}).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan(None, &f), Access::Scan);
    }
}
