//! The `distinct` command's value collection.

use bson::{Bson, Document};

use crate::compare::compare;
use crate::path;

/// Collects the distinct values at a dotted path across documents: arrays
/// are flattened one level (as the server does), values equal under
/// [`crate::compare()`] (e.g. `1` and `1.0`) are kept once, first seen wins.
#[derive(Debug, Clone, Default)]
pub struct Distinct {
    parts: Vec<String>,
    values: Vec<Bson>,
}

impl Distinct {
    /// Starts collecting values at `path`.
    pub fn new(path: &str) -> Distinct {
        Distinct {
            parts: path::split(path),
            values: Vec::new(),
        }
    }

    /// Adds the values found in `doc`.
    pub fn add(&mut self, doc: &Document) {
        for value in path::leaf_values(doc, &self.parts) {
            // Binary search keeps insertion O(log n) per lookup on the sorted set.
            if let Err(pos) = self.values.binary_search_by(|probe| compare(probe, value)) {
                self.values.insert(pos, value.clone());
            }
        }
    }

    /// The distinct values, in BSON comparison order.
    pub fn finish(self) -> Vec<Bson> {
        self.values
    }
}

/// Convenience: distinct values at `path` over `docs`.
pub fn distinct<'a, I: IntoIterator<Item = &'a Document>>(docs: I, path: &str) -> Vec<Bson> {
    let mut d = Distinct::new(path);
    for doc in docs {
        d.add(doc);
    }
    d.finish()
}
