//! Catalog commands: listDatabases, listCollections, create, drop, dropDatabase,
//! renameCollection.

use bson::{Bson, Document, RawDocumentBuf, doc};
use rewind_engine::{CollectionInfo, DatabaseInfo, EngineError, IndexSpec};
use rewind_query::filter::Filter;
use rewind_wire::CommandRequest;

use crate::Commands;
use crate::crud::find::{CursorFlags, DEFAULT_FIRST_BATCH, first_reply};
use crate::error::{CommandError, Result};
use crate::options::{
    check_collation, check_fields, command_ns, get_bool, get_doc, get_non_negative, get_str,
};
use crate::source::Source;

fn admin_only(request: &CommandRequest) -> Result<()> {
    if request.db != "admin" {
        return Err(CommandError::unauthorized(format!(
            "{} may only be run against the admin database.",
            request.name
        )));
    }
    Ok(())
}

/// `listDatabases` (admin only): `{databases: [{name, sizeOnDisk, empty}], totalSize, ...}`.
pub async fn list_databases(cmds: &Commands, request: &CommandRequest) -> Result<Document> {
    let body = &request.body;
    check_fields(
        body,
        "listDatabases",
        &["nameOnly", "filter", "authorizedDatabases"],
    )?;
    admin_only(request)?;
    let name_only = get_bool(body, "listDatabases", "nameOnly")?.unwrap_or(false);
    let filter = Filter::parse(
        &get_doc(body, "listDatabases", "filter")?
            .cloned()
            .unwrap_or_default(),
    )?;
    let dbs = cmds
        .blocking(|engine| {
            let view = engine.read_view()?;
            let mut dbs = view.list_databases()?;
            // `local` holds the oplog, which the catalog does not list (its size is kept by
            // the engine: summing the oplog table on every listDatabases would scan it).
            let oplog = engine.oplog_bytes();
            match dbs.iter_mut().find(|db| db.name == "local") {
                Some(local) => local.size_bytes += oplog,
                None => dbs.push(DatabaseInfo {
                    name: "local".to_owned(),
                    size_bytes: oplog,
                    collections: 1,
                }),
            }
            // In name order, as mongod lists them (the catalog's is namespace order).
            dbs.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(dbs)
        })
        .await?;
    let mut out = Vec::new();
    let mut total: i64 = 0;
    for db in dbs {
        let size = i64::try_from(db.size_bytes).unwrap_or(i64::MAX);
        let full = doc! {"name": &db.name, "sizeOnDisk": size, "empty": db.collections == 0};
        if !filter.try_matches(&full)? {
            continue;
        }
        total = total.saturating_add(size);
        out.push(if name_only {
            doc! {"name": db.name}
        } else {
            full
        });
    }
    if name_only {
        return Ok(doc! {"databases": out, "ok": 1.0});
    }
    Ok(doc! {
        "databases": out,
        "totalSize": total,
        "totalSizeMb": total / (1024 * 1024),
        "ok": 1.0,
    })
}

/// The `listCollections` entry of one collection.
fn collection_entry(info: &CollectionInfo) -> Document {
    doc! {
        "name": &info.name,
        "type": "collection",
        "options": info.options.clone(),
        "info": {"readOnly": false, "uuid": Bson::Binary(info.uuid.clone())},
        "idIndex": IndexSpec::id_index().spec,
    }
}

/// The `listCollections` entry of `local.oplog.rs`: capped at the engine's retention size,
/// with no `_id` index, as in mongod.
fn oplog_entry(max_bytes: u64) -> Document {
    doc! {
        "name": "oplog.rs",
        "type": "collection",
        "options": {
            "capped": true,
            "size": i64::try_from(max_bytes).unwrap_or(i64::MAX),
            "autoIndexId": false,
        },
        "info": {"readOnly": false},
    }
}

/// `listCollections`: a cursor over the database's collections.
pub async fn list_collections(cmds: &Commands, request: &CommandRequest) -> Result<RawDocumentBuf> {
    let body = &request.body;
    check_fields(
        body,
        "listCollections",
        &[
            "filter",
            "nameOnly",
            "authorizedCollections",
            "cursor",
            "includePendingDrops",
        ],
    )?;
    let name_only = get_bool(body, "listCollections", "nameOnly")?.unwrap_or(false);
    let filter = Filter::parse(
        &get_doc(body, "listCollections", "filter")?
            .cloned()
            .unwrap_or_default(),
    )?;
    let batch_size = match get_doc(body, "listCollections", "cursor")? {
        Some(c) => get_non_negative(c, "listCollections.cursor", "batchSize")?,
        None => None,
    }
    .unwrap_or(DEFAULT_FIRST_BATCH);
    let db = request.db.clone();
    let (source, batch) = cmds
        .blocking(move |engine| {
            let view = engine.read_view()?;
            let mut entries: Vec<Document> = view
                .list_collections(&db)
                .into_iter()
                .map(collection_entry)
                .collect();
            if db == "local" {
                entries.push(oplog_entry(engine.options().oplog_max_bytes));
                entries.sort_by(|a, b| a.get_str("name").ok().cmp(&b.get_str("name").ok()));
            }
            let mut out = Vec::new();
            for entry in entries {
                // The filter sees the full entry even when only names are returned.
                if filter.try_matches(&entry)? {
                    out.push(if name_only {
                        doc! {"name": entry.get("name").cloned().unwrap_or(Bson::Null), "type": "collection"}
                    } else {
                        entry
                    });
                }
            }
            std::mem::drop(view);
            let mut source = Source::buffered(out)?;
            let batch = source.next_batch(engine, Some(batch_size))?;
            Ok((source, batch))
        })
        .await?;
    let ns = format!("{}.$cmd.listCollections", request.db);
    Ok(first_reply(cmds, ns, source, batch, CursorFlags::default()))
}

/// `create` options rewind records but does not enforce: refused rather than ignored.
const UNSUPPORTED_CREATE: &[&str] = &[
    "capped",
    "size",
    "max",
    "validator",
    "validationLevel",
    "validationAction",
    "viewOn",
    "pipeline",
    "timeseries",
    "clusteredIndex",
    "expireAfterSeconds",
    "changeStreamPreAndPostImages",
    "encryptedFields",
];

/// `create`.
pub async fn create(cmds: &Commands, request: &CommandRequest) -> Result<Document> {
    let body = &request.body;
    let mut allowed: Vec<&str> = UNSUPPORTED_CREATE.to_vec();
    allowed.extend([
        "idIndex",
        "storageEngine",
        "indexOptionDefaults",
        "collation",
        "flags",
        "autoIndexId",
    ]);
    check_fields(body, "create", &allowed)?;
    check_collation(body, "create")?;
    for option in UNSUPPORTED_CREATE {
        let off = matches!(body.get(*option), Some(Bson::Boolean(false)));
        if body.contains_key(*option) && !off {
            return Err(CommandError::not_implemented(format!(
                "create option '{option}' is not supported by rewind"
            )));
        }
    }
    let ns = command_ns(&request.db, body, "create")?;
    // The oplog is there already (a view of the engine's log, not a collection).
    if ns == crate::oplog::OPLOG_NS {
        return Err(CommandError::namespace_exists(format!(
            "Collection {ns} already exists."
        )));
    }
    let options: Document = body
        .iter()
        .skip(1)
        .filter(|(k, _)| allowed.contains(&k.as_str()) && k.as_str() != "idIndex")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    cmds.blocking(move |engine| {
        engine
            .write(|txn| match txn.collection(&ns) {
                // mongod 7.0+: creating an existing collection with the same options succeeds.
                Some(info) if info.options == options => Ok(()),
                Some(_) => Err(EngineError::NamespaceExists(ns.clone())),
                None => txn.create_collection(&ns, &options),
            })
            .map_err(CommandError::from)
    })
    .await?;
    Ok(doc! {"ok": 1.0})
}

/// `drop`: `{nIndexesWas, ns, ok}`; dropping a missing collection succeeds (mongod 7.0+).
pub async fn drop(cmds: &Commands, request: &CommandRequest) -> Result<Document> {
    let body = &request.body;
    check_fields(body, "drop", &[])?;
    let ns = command_ns(&request.db, body, "drop")?;
    if ns == crate::oplog::OPLOG_NS {
        return Err(CommandError::illegal_operation(
            "can't drop live oplog while replicating",
        ));
    }
    let ns2 = ns.clone();
    let was = cmds
        .blocking(move |engine| {
            engine
                .write(|txn| {
                    let was = txn.collection(&ns2).map(|i| i.indexes.len());
                    txn.drop_collection(&ns2)?;
                    Ok(was)
                })
                .map_err(CommandError::from)
        })
        .await?;
    Ok(match was {
        Some(n) => doc! {"nIndexesWas": n as i32, "ns": ns, "ok": 1.0},
        None => doc! {"ok": 1.0},
    })
}

/// `dropDatabase`.
pub async fn drop_database(cmds: &Commands, request: &CommandRequest) -> Result<Document> {
    check_fields(&request.body, "dropDatabase", &[])?;
    if request.db == "local" || request.db == "admin" || request.db == "config" {
        return Err(CommandError::illegal_operation(format!(
            "Dropping the '{}' database is prohibited.",
            request.db
        )));
    }
    let db = request.db.clone();
    cmds.blocking(move |engine| Ok(engine.write(|txn| txn.drop_database(&db))?))
        .await?;
    Ok(doc! {"ok": 1.0})
}

/// `renameCollection` (admin only): `{renameCollection: "db.a", to: "db.b", dropTarget}`.
pub async fn rename_collection(cmds: &Commands, request: &CommandRequest) -> Result<Document> {
    let body = &request.body;
    let cmd = "renameCollection";
    check_fields(
        body,
        cmd,
        &["to", "dropTarget", "stayTemp", "collectionUUID"],
    )?;
    check_collation(body, cmd)?;
    admin_only(request)?;
    let from = get_str(body, cmd, cmd)?
        .ok_or_else(|| CommandError::new_missing(cmd, cmd))?
        .to_owned();
    let to = get_str(body, cmd, "to")?
        .ok_or_else(|| CommandError::new_missing(cmd, "to"))?
        .to_owned();
    let drop_target = get_bool(body, cmd, "dropTarget")?.unwrap_or(false);
    for (side, ns) in [("source", &from), ("target", &to)] {
        rewind_engine::parse_ns(ns)?;
        if ns.as_str() == crate::oplog::OPLOG_NS {
            return Err(CommandError::illegal_operation("can't rename live oplog"));
        }
        // System collections are mongod's own: none is renamed, nor renamed onto.
        if crate::crud::is_system(ns) {
            return Err(CommandError::illegal_operation(format!(
                "error with {side} namespace: Invalid system namespace: {ns}"
            )));
        }
    }
    let source = from.clone();
    let existed = cmds
        .blocking(move |engine| {
            engine
                .write(|txn| {
                    if txn.collection(&from).is_none() {
                        return Ok(false);
                    }
                    txn.rename_collection(&from, &to, drop_target)?;
                    Ok(true)
                })
                .map_err(CommandError::from)
        })
        .await?;
    if !existed {
        return Err(CommandError::namespace_not_found(format!(
            "Source collection {source} does not exist"
        )));
    }
    Ok(doc! {"ok": 1.0})
}
