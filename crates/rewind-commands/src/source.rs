//! Where a cursor's results come from, and how the next batch is produced.

use std::collections::VecDeque;

use bson::{Bson, Document, RawDocument, RawDocumentBuf, Timestamp};
use rewind_engine::Engine;
use rewind_query::filter::Filter;
use rewind_query::projection::Projection;

use crate::crud::to_raw;
use crate::error::Result;
use crate::raw::{is_canonical, reduced};
use crate::reader::{SCAN_CHUNK, raw_id};

/// The byte budget of one batch (documents beyond the first stop a batch once it is reached),
/// leaving room for the reply envelope within mongod's 16 MiB + 16 KiB reply limit.
pub const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024 - 64 * 1024;

/// Filter, projection, skip and limit applied to streamed documents.
pub struct Matcher {
    /// The query filter.
    pub filter: Filter,
    /// The projection applied to each result.
    pub projection: Projection,
    /// The projection is `{}`: results are the stored documents as they are.
    pub identity: bool,
    /// The top-level fields the filter reads (`None`: it may read any).
    pub fields: Option<Vec<String>>,
    /// Matching documents still to skip.
    pub skip: u64,
    /// Results still allowed (`None`: no limit).
    pub remaining: Option<u64>,
}

impl Matcher {
    /// The projected document, encoded, if the stored document `raw` matches and is not
    /// skipped. With no projection, only the fields the filter reads are decoded and the
    /// result is `raw` itself, when re-encoding it would not change it.
    pub fn accept_raw(&mut self, raw: &RawDocument) -> Result<Option<RawDocumentBuf>> {
        if let (true, Some(fields)) = (self.identity, &self.fields)
            && is_canonical(raw)?
        {
            if !self.filter.try_matches(&reduced(raw, fields)?)? || self.skipped() {
                return Ok(None);
            }
            self.count();
            return Ok(Some(raw.to_owned()));
        }
        self.accept(&Document::try_from(raw)?)
    }

    /// Like [`Matcher::accept_raw`] for a document already known to match the filter.
    pub fn accept_raw_matching(&mut self, raw: &RawDocument) -> Result<Option<RawDocumentBuf>> {
        if self.identity && is_canonical(raw)? {
            if self.skipped() {
                return Ok(None);
            }
            self.count();
            return Ok(Some(raw.to_owned()));
        }
        // Decoding would keep the last of repeated keys: let the filter decide.
        self.accept_raw(raw)
    }

    /// Like [`Matcher::accept_raw`] for a decoded document.
    pub fn accept(&mut self, doc: &Document) -> Result<Option<RawDocumentBuf>> {
        if !self.filter.try_matches(doc)? || self.skipped() {
            return Ok(None);
        }
        let positional = if self.projection.has_positional() {
            self.filter.positional_index(doc)
        } else {
            None
        };
        let out = self.projection.apply_positional(doc, positional)?;
        self.count();
        Ok(Some(to_raw(&out)?))
    }

    /// Consumes one skip of a matching document.
    fn skipped(&mut self) -> bool {
        if self.skip > 0 {
            self.skip -= 1;
            return true;
        }
        false
    }

    /// Counts one result against the limit.
    fn count(&mut self) {
        if let Some(n) = &mut self.remaining {
            *n = n.saturating_sub(1);
        }
    }

    pub fn limit_reached(&self) -> bool {
        self.remaining == Some(0)
    }
}

/// A cursor's result source.
pub enum Source {
    /// Results computed up front (sorted finds, index lookups, aggregations ...), encoded.
    Buffered(VecDeque<RawDocumentBuf>),
    /// A collection scan in `_id` order, resumed after the last `_id` seen.
    Scan {
        /// Namespace scanned.
        ns: String,
        /// Filter/projection/skip/limit.
        matcher: Box<Matcher>,
        /// The last `_id` examined (`None` before the first).
        last_id: Option<Bson>,
        /// The scan reached the end.
        done: bool,
    },
    /// The oplog, resumed after the last `ts` seen.
    Oplog {
        /// Filter/projection/skip/limit.
        matcher: Box<Matcher>,
        /// Entries up to this optime have been examined.
        after: Option<Timestamp>,
        /// Tailable: reaching the end does not exhaust the cursor.
        tailable: bool,
        /// A non-tailable read reached the end.
        done: bool,
    },
}

/// A batch under construction, bounded by a document count and the byte budget.
struct Batch {
    docs: Vec<RawDocumentBuf>,
    bytes: usize,
    max_docs: Option<u64>,
}

impl Batch {
    fn new(max_docs: Option<u64>) -> Self {
        Self {
            docs: Vec::new(),
            bytes: 0,
            max_docs,
        }
    }

    fn full(&self) -> bool {
        self.max_docs.is_some_and(|m| self.docs.len() as u64 >= m) || self.bytes >= MAX_BATCH_BYTES
    }

    /// Whether a document of `size` bytes still fits (the first always does).
    fn fits(&self, size: usize) -> bool {
        self.docs.is_empty() || self.bytes + size <= MAX_BATCH_BYTES
    }

    fn push(&mut self, doc: RawDocumentBuf, size: usize) {
        self.bytes += size;
        self.docs.push(doc);
    }
}

impl Source {
    /// Computed results, encoded once here.
    pub fn buffered(docs: Vec<Document>) -> Result<Self> {
        Ok(Self::Buffered(
            docs.iter().map(to_raw).collect::<Result<_>>()?,
        ))
    }

    /// Whether no result can come any more (the cursor id becomes 0).
    pub fn is_exhausted(&self) -> bool {
        match self {
            Self::Buffered(docs) => docs.is_empty(),
            Self::Scan { matcher, done, .. } => *done || matcher.limit_reached(),
            Self::Oplog { matcher, done, .. } => *done || matcher.limit_reached(),
        }
    }

    /// Produces the next batch of at most `max_docs` documents (`None`: as many as fit).
    /// Blocking: run it on a blocking thread.
    pub fn next_batch(
        &mut self,
        engine: &Engine,
        max_docs: Option<u64>,
    ) -> Result<Vec<RawDocumentBuf>> {
        let mut batch = Batch::new(max_docs);
        if max_docs == Some(0) {
            return Ok(batch.docs);
        }
        match self {
            Self::Buffered(docs) => {
                while let Some(doc) = docs.front() {
                    let size = doc.as_bytes().len();
                    if batch.full() || !batch.fits(size) {
                        break;
                    }
                    if let Some(doc) = docs.pop_front() {
                        batch.push(doc, size);
                    }
                }
            }
            Self::Scan {
                ns,
                matcher,
                last_id,
                done,
            } => {
                let view = engine.read_view()?;
                while !*done && !matcher.limit_reached() && !batch.full() {
                    crate::deadline::check()?;
                    let chunk = view.scan(ns, last_id.as_ref(), SCAN_CHUNK)?;
                    let mut consumed = true;
                    for raw in &chunk {
                        let size = raw.as_bytes().len();
                        if batch.full() || matcher.limit_reached() || !batch.fits(size) {
                            consumed = false;
                            break;
                        }
                        *last_id = Some(raw_id(raw)?);
                        if let Some(out) = matcher.accept_raw(raw)? {
                            batch.push(out, size);
                        }
                    }
                    if consumed && chunk.len() < SCAN_CHUNK {
                        *done = true;
                    }
                    if !consumed {
                        break;
                    }
                }
            }
            Self::Oplog {
                matcher,
                after,
                tailable,
                done,
            } => {
                let view = engine.read_view()?;
                while !*done && !matcher.limit_reached() && !batch.full() {
                    let chunk = view.oplog_range(*after, None, SCAN_CHUNK)?;
                    let mut consumed = true;
                    for raw in &chunk {
                        let size = raw.as_bytes().len();
                        if batch.full() || matcher.limit_reached() || !batch.fits(size) {
                            consumed = false;
                            break;
                        }
                        let doc = Document::try_from(raw)?;
                        if let Some(Bson::Timestamp(ts)) = doc.get("ts") {
                            *after = Some(*ts);
                        }
                        if let Some(out) = matcher.accept(&doc)? {
                            batch.push(out, size);
                        }
                    }
                    if !consumed {
                        break;
                    }
                    if chunk.len() < SCAN_CHUNK {
                        // The end of the oplog as of this view: a tailable cursor waits here.
                        *done = !*tailable;
                        break;
                    }
                }
            }
        }
        Ok(batch.docs)
    }
}

#[cfg(test)]
mod tests {
    use bson::rawdoc;

    use super::*;

    #[test]
    fn buffered_batches_respect_counts() {
        let docs: VecDeque<RawDocumentBuf> = (0..5).map(|i| rawdoc! {"i": i}).collect();
        let mut source = Source::Buffered(docs);
        let dir = std::env::temp_dir().join(format!("rc-src-{}", std::process::id()));
        let engine = Engine::open(&dir, Default::default()).unwrap_or_else(|e| panic!("{e}"));
        let first = source.next_batch(&engine, Some(2)).unwrap_or_default();
        assert_eq!(first.len(), 2);
        assert!(!source.is_exhausted());
        let rest = source.next_batch(&engine, None).unwrap_or_default();
        assert_eq!(rest.len(), 3);
        assert!(source.is_exhausted());
        drop(engine);
        let _ = std::fs::remove_dir_all(dir);
    }
}
