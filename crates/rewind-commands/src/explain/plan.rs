//! The plan trees `explain` shows, in mongod's classic-engine shape, built from the access
//! path rewind's planner chose ([`Access`]) and the stages a find adds above it.

use bson::{Bson, Document, doc};
use rewind_engine::{CollectionInfo, ID_INDEX_NAME, IndexSpec};

use crate::reader::Access;
use crate::reply::count_value;

/// What the plan's stages did, for `executionStats` (absent under `queryPlanner`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    /// Index keys examined (one per document an index lookup found).
    pub keys: u64,
    /// Documents fetched and examined.
    pub docs: u64,
    /// Documents that passed the filter.
    pub matched: u64,
    /// Wall time of the whole execution.
    pub millis: u64,
}

/// A stage of the tree, leaf first; [`Tree::into_document`] nests them.
pub struct Tree {
    stages: Vec<Document>,
    counts: Option<Counts>,
}

impl Tree {
    /// The stage(s) reading storage for `access` in `ns` (`info`: its catalog entry).
    /// `filter` is the filter as given, shown where the stage applies it.
    pub fn access(
        info: Option<&CollectionInfo>,
        access: &Access,
        filter: &Document,
        backward: bool,
        counts: Option<Counts>,
    ) -> Self {
        let direction = if backward { "backward" } else { "forward" };
        let with_stats = |mut stage: Document, returned: u64, extra: (&str, u64)| {
            if let Some(c) = counts {
                stage.insert("nReturned", count_value(returned));
                stage.insert("executionTimeMillisEstimate", count_value(c.millis));
                stage.insert(extra.0, count_value(extra.1));
            }
            stage
        };
        let c = counts.unwrap_or_default();
        let mut stages = Vec::new();
        let lookup = match access {
            Access::Scan | Access::Oplog => None,
            Access::Id(id) => Some((IndexSpec::id_index(), vec![id.clone()])),
            Access::Ids(ids) => Some((IndexSpec::id_index(), ids.clone())),
            Access::Index(name, value) => Some((index(info, name), vec![value.clone()])),
            Access::IndexIn(name, values) => Some((index(info, name), values.clone())),
        };
        let by_id = matches!(access, Access::Id(_) | Access::Ids(_));
        match lookup {
            None => {
                let mut scan = doc! {"stage": "COLLSCAN"};
                if !filter.is_empty() {
                    scan.insert("filter", filter.clone());
                }
                scan.insert("direction", direction);
                stages.push(with_stats(scan, c.matched, ("docsExamined", c.docs)));
            }
            Some(_) if matches!(access, Access::Id(_)) && filter.len() == 1 && !backward => {
                // mongod 8.0's express path for a lone `_id` equality.
                let express = doc! {
                    "stage": "EXPRESS_IXSCAN",
                    "keyPattern": "{ _id: 1 }",
                    "indexName": ID_INDEX_NAME,
                };
                stages.push(with_stats(express, c.matched, ("keysExamined", c.keys)));
            }
            Some((spec, values)) => {
                // The equality is on the index's leading field; the others are unbounded. A
                // descending field lists its intervals from the top, as mongod prints them.
                let mut bounds = Document::new();
                for (position, (key, direction)) in spec.key.iter().enumerate() {
                    let descending = matches!(direction, Bson::Int32(n) if *n < 0)
                        || matches!(direction, Bson::Int64(n) if *n < 0)
                        || matches!(direction, Bson::Double(n) if *n < 0.0);
                    let mut intervals: Vec<Bson> = if position == 0 {
                        values
                            .iter()
                            .map(|v| Bson::String(format!("[{}, {}]", shown(v), shown(v))))
                            .collect()
                    } else if descending {
                        vec![Bson::String("[MaxKey, MinKey]".into())]
                    } else {
                        vec![Bson::String("[MinKey, MaxKey]".into())]
                    };
                    if descending {
                        intervals.reverse();
                    }
                    bounds.insert(key.clone(), intervals);
                }
                let scan = doc! {
                    "stage": "IXSCAN",
                    "keyPattern": spec.key.clone(),
                    "indexName": &spec.name,
                    "isUnique": spec.unique || by_id,
                    "isSparse": spec.sparse,
                    "isPartial": false,
                    "indexVersion": 2,
                    "direction": direction,
                    "indexBounds": bounds,
                };
                stages.push(with_stats(scan, c.keys, ("keysExamined", c.keys)));
                let mut fetch = doc! {"stage": "FETCH"};
                if filter.len() > 1 || !by_id {
                    fetch.insert("filter", filter.clone());
                }
                stages.push(with_stats(fetch, c.matched, ("docsExamined", c.docs)));
            }
        }
        Self { stages, counts }
    }

    /// A plan of one stage that reads no document (a count from the collection's size).
    pub fn single(mut stage: Document, counts: Option<Counts>) -> Self {
        if let Some(c) = counts {
            stage.insert("nReturned", 0);
            stage.insert("executionTimeMillisEstimate", count_value(c.millis));
        }
        Self {
            stages: vec![stage],
            counts,
        }
    }

    /// A stage over the current top that returned `returned` documents.
    pub fn push(&mut self, mut stage: Document, returned: u64) {
        if let Some(c) = self.counts {
            stage.insert("nReturned", count_value(returned));
            stage.insert("executionTimeMillisEstimate", count_value(c.millis));
        }
        self.stages.push(stage);
    }

    /// The nested plan: each stage holds the one below it as `inputStage`.
    pub fn into_document(self) -> Document {
        let mut nested: Option<Document> = None;
        for mut stage in self.stages {
            if let Some(input) = nested.take() {
                stage.insert("inputStage", input);
            }
            nested = Some(stage);
        }
        nested.unwrap_or_default()
    }
}

/// The spec of a collection's index by name.
fn index(info: Option<&CollectionInfo>, name: &str) -> IndexSpec {
    info.and_then(|i| i.indexes.iter().find(|s| s.name == name))
        .cloned()
        .unwrap_or_else(IndexSpec::id_index)
}

/// A value inside an index bound, as mongod prints it (`"a"`, `1`, `ObjectId('…')`).
fn shown(value: &Bson) -> String {
    match value {
        Bson::String(s) => format!("{s:?}"),
        Bson::ObjectId(oid) => format!("ObjectId('{oid}')"),
        other => other.to_string(),
    }
}
