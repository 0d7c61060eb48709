//! Storage statistics: `dbStats`, `collStats` and the `$collStats` aggregation stage (what
//! mongosh's `db.stats()`, `db.c.stats()` and `rs.printReplicationInfo()` ask for).
//!
//! Sizes are the BSON bytes the engine stores: `size` and `storageSize` are the documents'
//! bytes (rewind does not compress), an index's size is the bytes of its keys.

use bson::{Bson, Document, doc};
use rewind_engine::{Engine, ReadView};
use rewind_wire::CommandRequest;

use crate::Commands;
use crate::error::{CommandError, Result};
use crate::oplog::OPLOG_NS;
use crate::options::{as_i64, check_all_fields, check_fields, command_ns, get_doc, type_name};
use crate::reply::count_value;

/// One namespace's sizes in bytes, unscaled.
struct Sizes {
    count: u64,
    data: u64,
    /// `(name, bytes)` of each index, `_id_` first.
    indexes: Vec<(String, u64)>,
    /// The cap of a capped collection (the oplog's retention size).
    max_size: Option<u64>,
}

impl Sizes {
    /// The sizes of `ns`, or NamespaceNotFound as mongod answers for a missing collection.
    fn of(engine: &Engine, view: &ReadView, ns: &str) -> Result<Self> {
        if ns == OPLOG_NS {
            let stats = view.oplog_stats()?;
            return Ok(Self {
                count: stats.count,
                data: stats.size_bytes,
                indexes: Vec::new(),
                max_size: Some(engine.options().oplog_max_bytes),
            });
        }
        if view.collection(ns).is_none() {
            return Err(CommandError::namespace_not_found(format!(
                "Collection [{ns}] not found."
            )));
        }
        let stats = view.stats(ns)?;
        Ok(Self {
            count: stats.count,
            data: stats.size_bytes,
            indexes: view.index_sizes(ns)?,
            max_size: None,
        })
    }

    fn index_bytes(&self) -> u64 {
        self.indexes.iter().map(|(_, bytes)| bytes).sum()
    }

    /// The `storageStats` document (the body of a `collStats` reply), in units of `scale`.
    fn storage_stats(&self, scale: u64) -> Document {
        let scaled = |bytes: u64| count_value(bytes / scale);
        let mut out = doc! {"size": scaled(self.data), "count": count_value(self.count)};
        if let Some(average) = self.data.checked_div(self.count) {
            out.insert("avgObjSize", count_value(average));
        }
        out.insert("numOrphanDocs", 0);
        out.insert("storageSize", scaled(self.data));
        out.insert("capped", self.max_size.is_some());
        if let Some(max) = self.max_size {
            out.insert("maxSize", scaled(max));
        }
        out.insert("nindexes", count_value(self.indexes.len() as u64));
        out.insert("indexBuilds", Bson::Array(Vec::new()));
        out.insert("totalIndexSize", scaled(self.index_bytes()));
        out.insert("totalSize", scaled(self.data + self.index_bytes()));
        let sizes: Document = self
            .indexes
            .iter()
            .map(|(name, bytes)| (name.clone(), scaled(*bytes)))
            .collect();
        out.insert("indexSizes", sizes);
        out.insert("scaleFactor", count_value(scale));
        out
    }
}

/// A `scale` option: a number of at least 1 (fractions are truncated, as in mongod).
fn parse_scale(value: Option<&Bson>, field: &str) -> Result<u64> {
    let Some(value) = value else {
        return Ok(1);
    };
    let scale = match value {
        Bson::Double(f) if f.is_finite() => {
            // Truncation toward zero is mongod's reading of a fractional scale.
            #[allow(clippy::cast_possible_truncation)]
            Some(*f as i64)
        }
        other => as_i64(other),
    }
    .ok_or_else(|| {
        CommandError::type_mismatch(format!(
            "BSON field '{field}' is the wrong type '{}', expected types '[long, int, decimal, double]'",
            type_name(value)
        ))
    })?;
    u64::try_from(scale)
        .ok()
        .filter(|s| *s >= 1)
        .ok_or_else(|| {
            CommandError::bad_value(format!(
                "BSON field '{field}' value must be >= 1, actual value '{scale}'"
            ))
        })
}

/// `collStats`: the storage statistics of one collection.
pub async fn coll_stats(cmds: &Commands, request: &CommandRequest) -> Result<Document> {
    let body = &request.body;
    check_fields(body, "collStats", &["scale", "verbose", "waitForLock"])?;
    let ns = command_ns(&request.db, body, &request.name)?;
    let scale = parse_scale(body.get("scale"), "collStats.scale")?;
    let mut out = doc! {"ns": &ns};
    let stats = cmds
        .blocking(move |engine| {
            let view = engine.read_view()?;
            Ok(Sizes::of(engine, &view, &ns)?.storage_stats(scale))
        })
        .await?;
    out.extend(stats);
    out.insert("ok", 1.0);
    Ok(out)
}

/// A parsed `{$collStats: {...}}` stage: which sections to report.
pub struct CollStatsStage {
    /// `storageStats`, with its scale.
    storage_scale: Option<u64>,
    /// `count: {}`.
    count: bool,
}

impl CollStatsStage {
    /// Parses the stage's argument; `latencyStats` and `queryExecStats` are refused.
    pub fn parse(spec: &Bson) -> Result<Self> {
        let Bson::Document(spec) = spec else {
            return Err(CommandError::failed_to_parse(format!(
                "$collStats must take a nested object but found: {spec}"
            )));
        };
        check_all_fields(
            spec,
            "$collStats",
            &["latencyStats", "storageStats", "count", "queryExecStats"],
        )?;
        if let Some(section) = ["latencyStats", "queryExecStats"]
            .iter()
            .find(|s| spec.contains_key(**s))
        {
            return Err(CommandError::not_implemented(format!(
                "$collStats option '{section}' is not supported by rewind"
            )));
        }
        let storage_scale = match spec.get("storageStats") {
            None => None,
            Some(Bson::Document(storage)) => {
                check_all_fields(
                    storage,
                    "$collStats.storageStats",
                    &["scale", "verbose", "waitForLock", "numericOnly"],
                )?;
                Some(parse_scale(
                    storage.get("scale"),
                    "$collStats.storageStats.scale",
                )?)
            }
            Some(other) => {
                return Err(CommandError::type_mismatch(format!(
                    "BSON field '$collStats.storageStats' is the wrong type '{}', expected type 'object'",
                    type_name(other)
                )));
            }
        };
        let count = match get_doc(spec, "$collStats", "count")? {
            None => false,
            Some(c) if c.is_empty() => true,
            Some(_) => {
                return Err(CommandError::failed_to_parse(
                    "count option to $collStats stage must be empty",
                ));
            }
        };
        Ok(Self {
            storage_scale,
            count,
        })
    }

    /// The stage's one output document for `ns`. Blocking.
    pub fn run(&self, engine: &Engine, view: &ReadView, ns: &str) -> Result<Document> {
        let mut out = doc! {"ns": ns, "localTime": bson::DateTime::now()};
        if self.storage_scale.is_none() && !self.count {
            return Ok(out);
        }
        let sizes = Sizes::of(engine, view, ns)?;
        if let Some(scale) = self.storage_scale {
            out.insert("storageStats", sizes.storage_stats(scale));
        }
        if self.count {
            out.insert("count", count_value(sizes.count));
        }
        Ok(out)
    }
}

/// `dbStats`: totals over one database's collections (its oplog too, for `local`).
pub async fn db_stats(cmds: &Commands, request: &CommandRequest) -> Result<Document> {
    let body = &request.body;
    check_fields(body, "dbStats", &["scale", "freeStorage"])?;
    let truthy = |v: &Bson| match v {
        Bson::Boolean(b) => *b,
        other => as_i64(other) != Some(0),
    };
    if body.get("freeStorage").is_some_and(truthy) {
        return Err(CommandError::not_implemented(
            "dbStats option 'freeStorage' is not supported by rewind",
        ));
    }
    let scale = parse_scale(body.get("scale"), "dbStats.scale")?;
    let db = request.db.clone();
    let all = cmds
        .blocking(move |engine| {
            let view = engine.read_view()?;
            let mut names: Vec<String> = view
                .list_collections(&db)
                .into_iter()
                .map(|info| info.ns())
                .collect();
            if db == "local" {
                names.push(OPLOG_NS.to_owned());
            }
            names
                .iter()
                .map(|ns| Sizes::of(engine, &view, ns))
                .collect::<Result<Vec<_>>>()
        })
        .await?;
    let objects: u64 = all.iter().map(|s| s.count).sum();
    let data: u64 = all.iter().map(|s| s.data).sum();
    let index: u64 = all.iter().map(Sizes::index_bytes).sum();
    let indexes: u64 = all.iter().map(|s| s.indexes.len() as u64).sum();
    let avg = data.checked_div(objects).unwrap_or(0);
    Ok(doc! {
        "db": &request.db,
        "collections": count_value(all.len() as u64),
        "views": 0,
        "objects": count_value(objects),
        "avgObjSize": count_value(avg),
        "dataSize": count_value(data / scale),
        "storageSize": count_value(data / scale),
        "indexes": count_value(indexes),
        "indexSize": count_value(index / scale),
        "totalSize": count_value((data + index) / scale),
        "scaleFactor": count_value(scale),
        "ok": 1.0,
    })
}
