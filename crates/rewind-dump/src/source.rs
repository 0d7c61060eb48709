//! What the writers read: namespaces with their catalog data, and each
//! namespace's documents as raw BSON.

use std::collections::HashSet;
use std::io;

use crate::error::DumpError;

/// What kind of namespace a [`DumpNamespace`] is; decides the files written
/// and the `type` recorded in its metadata, as mongodump does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceKind {
    /// An ordinary collection: data and metadata.
    Collection,
    /// A view: metadata only (mongodump writes no data for views).
    View,
    /// A time-series collection. The documents are the buckets
    /// (`system.buckets.<name>`); the metadata is under `<name>`.
    Timeseries,
    /// The oplog captured with the dump (`mongodump --oplog`): `oplog.bson`
    /// at the top of a directory dump, namespace `"".oplog` in an archive,
    /// no metadata. Always written last, as mongorestore requires.
    Oplog,
}

impl NamespaceKind {
    /// The `type` mongodump records (`listCollections`' `type`); empty for
    /// the oplog, which has no metadata.
    pub fn type_name(self) -> &'static str {
        match self {
            NamespaceKind::Collection => "collection",
            NamespaceKind::View => "view",
            NamespaceKind::Timeseries => "timeseries",
            NamespaceKind::Oplog => "",
        }
    }

    /// Whether documents are written for this namespace.
    pub fn has_data(self) -> bool {
        self != NamespaceKind::View
    }

    /// Whether a metadata document is written for this namespace.
    pub fn has_metadata(self) -> bool {
        self != NamespaceKind::Oplog
    }
}

/// One namespace to dump, with the catalog data mongodump reads from
/// `listCollections` and `listIndexes`.
#[derive(Debug, Clone, PartialEq)]
pub struct DumpNamespace {
    /// Database name (empty only for the oplog).
    pub db: String,
    /// Collection name; for a time-series collection the user-facing name,
    /// not the `system.buckets.` one.
    pub collection: String,
    /// What kind of namespace this is.
    pub kind: NamespaceKind,
    /// Collection options as `listCollections` reports them (`options`).
    /// Omitted from the metadata when empty, like mongodump.
    pub options: bson::Document,
    /// Index specifications as `listIndexes` reports them, in order.
    pub indexes: Vec<bson::Document>,
    /// The collection UUID (`info.uuid`), written as 32 lowercase hex digits.
    pub uuid: Option<[u8; 16]>,
}

impl DumpNamespace {
    /// An ordinary collection with no options, indexes or UUID yet.
    pub fn collection(db: impl Into<String>, collection: impl Into<String>) -> Self {
        DumpNamespace {
            db: db.into(),
            collection: collection.into(),
            kind: NamespaceKind::Collection,
            options: bson::Document::new(),
            indexes: Vec::new(),
            uuid: None,
        }
    }

    /// The oplog namespace (`"".oplog`), as mongodump names it.
    pub fn oplog() -> Self {
        DumpNamespace {
            kind: NamespaceKind::Oplog,
            ..DumpNamespace::collection("", "oplog")
        }
    }

    /// The collection that holds the documents: `system.buckets.<name>` for
    /// a time-series collection, the collection itself otherwise.
    pub fn data_collection(&self) -> String {
        match self.kind {
            NamespaceKind::Timeseries => format!("system.buckets.{}", self.collection),
            _ => self.collection.clone(),
        }
    }

    /// `db.collection`, for messages.
    pub fn display_name(&self) -> String {
        format!("{}.{}", self.db, self.collection)
    }
}

/// A snapshot to dump. Implementations must return the same namespaces and
/// the same bytes every time they are asked: the writers read a namespace's
/// documents twice (once for its size, once for its data), and callers that
/// announce a `Content-Length` measure the output before writing it.
pub trait DumpSource {
    /// Every namespace to dump, in the order to write them (the oplog is
    /// moved last whatever its position).
    fn namespaces(&self) -> io::Result<Vec<DumpNamespace>>;

    /// Calls `f` with each document of `ns`, as one complete raw BSON
    /// document, in the order they should be restored; stops at the first
    /// error `f` returns and returns it.
    fn for_each_document(
        &self,
        ns: &DumpNamespace,
        f: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()>;

    /// Total bytes of `ns`'s documents. The default reads them all; override
    /// it when the size is known more cheaply. It must equal what
    /// `for_each_document` produces, or the write fails.
    fn data_size(&self, ns: &DumpNamespace) -> io::Result<u64> {
        let mut total = 0u64;
        self.for_each_document(ns, &mut |doc| {
            total = total.saturating_add(doc.len() as u64);
            Ok(())
        })?;
        Ok(total)
    }
}

/// `db.MaxBSONSize`: the largest document mongorestore reads from an archive
/// and from a collection's `.bson` file.
pub(crate) const MAX_BSON_SIZE: usize = 16 * 1024 * 1024;

/// mongorestore reads `oplog.bson` with 16 KiB of slack over the document
/// limit, because an oplog entry wraps a document of up to the limit.
pub(crate) const MAX_OPLOG_ENTRY_SIZE: usize = MAX_BSON_SIZE + 16 * 1024;

/// Checks that `doc` is one framed BSON document: its length prefix is its
/// length, it ends in NUL and it fits mongorestore's buffer. The content is
/// not parsed: the source is trusted to hold documents its server accepted.
pub(crate) fn check_document(ns: &DumpNamespace, doc: &[u8], max: usize) -> Result<(), DumpError> {
    let invalid = |reason: String| DumpError::InvalidDocument {
        namespace: ns.display_name(),
        reason,
    };
    let Some(prefix) = doc.first_chunk::<4>() else {
        return Err(invalid(format!(
            "{} bytes is shorter than a BSON document",
            doc.len()
        )));
    };
    let declared = u32::from_le_bytes(*prefix) as usize;
    if declared != doc.len() {
        return Err(invalid(format!(
            "length prefix says {declared} bytes, the document has {}",
            doc.len()
        )));
    }
    if doc.len() < 5 || doc.last() != Some(&0) {
        return Err(invalid("document does not end in NUL".to_owned()));
    }
    if doc.len() > max {
        return Err(invalid(format!(
            "{} bytes is over the {max}-byte limit",
            doc.len()
        )));
    }
    Ok(())
}

/// Checks the names of `namespaces` and puts the oplog last, where
/// mongorestore needs it. Returns the namespaces in writing order.
pub(crate) fn prepare(mut namespaces: Vec<DumpNamespace>) -> Result<Vec<DumpNamespace>, DumpError> {
    let mut seen = HashSet::new();
    let mut oplogs = 0;
    for ns in &namespaces {
        check_names(ns)?;
        if ns.kind == NamespaceKind::Oplog {
            oplogs += 1;
        }
        // A time-series collection occupies both its own name and its
        // buckets collection's (the `.bson` file is named after the latter).
        let mut names = vec![ns.collection.clone()];
        if ns.kind == NamespaceKind::Timeseries {
            names.push(ns.data_collection());
        }
        for name in names {
            let key = format!("{}.{}", ns.db, name);
            if !seen.insert(key.clone()) {
                return Err(DumpError::Duplicate(key));
            }
        }
    }
    if oplogs > 1 {
        return Err(DumpError::MultipleOplogs);
    }
    // A stable sort keeps the source's order among the others.
    namespaces.sort_by_key(|ns| ns.kind == NamespaceKind::Oplog);
    Ok(namespaces)
}

fn check_names(ns: &DumpNamespace) -> Result<(), DumpError> {
    let bad = |reason| DumpError::InvalidName {
        db: ns.db.clone(),
        collection: ns.collection.clone(),
        reason,
    };
    if ns.kind == NamespaceKind::Oplog {
        return if ns.db.is_empty() && ns.collection == "oplog" {
            Ok(())
        } else {
            Err(bad("the oplog namespace is \"\".oplog"))
        };
    }
    if ns.db.is_empty() {
        return Err(bad("database name is empty"));
    }
    // The database name becomes a directory in the tarball: MongoDB's own
    // restrictions (no `/\. "$`) also keep it from escaping the dump root,
    // and no control characters keeps SHA256SUMS one line per file.
    if ns
        .db
        .chars()
        .any(|c| matches!(c, '/' | '\\' | '.' | ' ' | '"' | '$') || c.is_control())
    {
        return Err(bad("database name has a character MongoDB forbids"));
    }
    if ns.collection.is_empty() {
        return Err(bad("collection name is empty"));
    }
    if ns.collection.contains('\0') {
        return Err(bad("collection name contains NUL"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(db: &str, coll: &str) -> DumpNamespace {
        DumpNamespace::collection(db, coll)
    }

    #[test]
    fn documents_must_be_framed() {
        let n = ns("d", "c");
        let good = bson::doc! { "a": 1 }.to_vec().unwrap();
        assert!(check_document(&n, &good, MAX_BSON_SIZE).is_ok());
        assert!(check_document(&n, &[5, 0, 0, 0, 0], MAX_BSON_SIZE).is_ok());
        assert!(check_document(&n, &[], MAX_BSON_SIZE).is_err());
        assert!(check_document(&n, &[4, 0, 0, 0], MAX_BSON_SIZE).is_err());
        assert!(check_document(&n, &good[..good.len() - 1], MAX_BSON_SIZE).is_err());
        let mut unterminated = good.clone();
        *unterminated.last_mut().unwrap() = 1;
        assert!(check_document(&n, &unterminated, MAX_BSON_SIZE).is_err());
        assert!(check_document(&n, &good, good.len() - 1).is_err());
    }

    #[test]
    fn oplog_goes_last_and_order_is_kept_otherwise() {
        let got = prepare(vec![
            ns("b", "x"),
            DumpNamespace::oplog(),
            ns("a", "y"),
            ns("b", "a"),
        ])
        .unwrap();
        let names: Vec<_> = got.iter().map(DumpNamespace::display_name).collect();
        assert_eq!(names, ["b.x", "a.y", "b.a", ".oplog"]);
    }

    #[test]
    fn bad_namespaces_are_refused() {
        for (db, coll) in [
            ("", "c"),
            ("a/b", "c"),
            ("..", "c"),
            ("a b", "c"),
            ("d", ""),
            ("d", "a\0b"),
            ("d\n", "c"),
        ] {
            assert!(prepare(vec![ns(db, coll)]).is_err(), "{db:?}.{coll:?}");
        }
        assert!(prepare(vec![ns("d", "c"), ns("d", "c")]).is_err());
        assert!(prepare(vec![DumpNamespace::oplog(), DumpNamespace::oplog()]).is_err());
        let mut wrong_oplog = DumpNamespace::oplog();
        wrong_oplog.db = "local".to_owned();
        assert!(prepare(vec![wrong_oplog]).is_err());

        let mut ts = ns("d", "weather");
        ts.kind = NamespaceKind::Timeseries;
        assert!(prepare(vec![ts.clone(), ns("d", "system.buckets.weather")]).is_err());
        assert!(prepare(vec![ts, ns("d", "other")]).is_ok());
    }

    #[test]
    fn kinds_decide_files() {
        assert!(!NamespaceKind::View.has_data());
        assert!(NamespaceKind::Oplog.has_data());
        assert!(!NamespaceKind::Oplog.has_metadata());
        let mut ts = ns("d", "weather");
        ts.kind = NamespaceKind::Timeseries;
        assert_eq!(ts.data_collection(), "system.buckets.weather");
    }
}
