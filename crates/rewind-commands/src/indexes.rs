//! createIndexes, listIndexes, dropIndexes.

use bson::{Bson, Document, RawDocumentBuf, doc};
use rewind_engine::EngineError;
use rewind_wire::CommandRequest;

use crate::Commands;
use crate::crud::find::{CursorFlags, DEFAULT_FIRST_BATCH, first_reply};
use crate::error::{CommandError, Result};
use crate::options::{
    check_fields, command_ns, get_doc, get_doc_array, get_non_negative, type_name,
};
use crate::source::Source;

/// Index options the engine implements (or that do not change results).
const SUPPORTED_INDEX_OPTIONS: &[&str] = &[
    "key",
    "name",
    "unique",
    "sparse",
    "v",
    "background",
    "ns",
    "hidden",
];

/// Index options mongod knows but rewind does not enforce: refused, never ignored.
const UNSUPPORTED_INDEX_OPTIONS: &[&str] = &[
    "partialFilterExpression",
    "expireAfterSeconds",
    "collation",
    "weights",
    "default_language",
    "language_override",
    "textIndexVersion",
    "2dsphereIndexVersion",
    "bits",
    "min",
    "max",
    "bucketSize",
    "storageEngine",
    "wildcardProjection",
    "prepareUnique",
    "clustered",
];

fn check_spec(spec: &Document) -> Result<()> {
    for key in spec.keys() {
        let key = key.as_str();
        if UNSUPPORTED_INDEX_OPTIONS.contains(&key) {
            return Err(CommandError::not_implemented(format!(
                "index option '{key}' is not supported by rewind"
            )));
        }
        if !SUPPORTED_INDEX_OPTIONS.contains(&key) {
            return Err(CommandError::Command {
                code: 197,
                code_name: "InvalidIndexSpecificationOption",
                message: format!(
                    "The field '{key}' is not valid for an index specification. Specification: {spec}"
                ),
            });
        }
    }
    Ok(())
}

/// `createIndexes`: `{numIndexesBefore, numIndexesAfter, createdCollectionAutomatically, ok}`.
pub async fn create_indexes(cmds: &Commands, request: &CommandRequest) -> Result<Document> {
    let body = &request.body;
    check_fields(
        body,
        "createIndexes",
        &["indexes", "commitQuorum", "ignoreUnknownIndexOptions"],
    )?;
    let ns = command_ns(&request.db, body, "createIndexes")?;
    let specs = get_doc_array(body, "createIndexes", "indexes")?;
    if specs.is_empty() {
        return Err(CommandError::bad_value(
            "Must specify at least one index to create",
        ));
    }
    for spec in &specs {
        check_spec(spec)?;
    }
    let (existed, before, after) = cmds
        .blocking(move |engine| {
            engine
                .write(|txn| {
                    let before = txn.collection(&ns).map(|i| i.indexes.len());
                    txn.create_indexes(&ns, &specs)?;
                    let after = txn.collection(&ns).map_or(1, |i| i.indexes.len());
                    Ok((before.is_some(), before.unwrap_or(1), after))
                })
                .map_err(CommandError::from)
        })
        .await?;
    let mut reply = doc! {
        "numIndexesBefore": before as i32,
        "numIndexesAfter": after as i32,
        "createdCollectionAutomatically": !existed,
    };
    if before == after {
        reply.insert("note", "all indexes already exist");
    }
    reply.insert("ok", 1.0);
    Ok(reply)
}

/// `listIndexes`: a cursor over the collection's index specs.
pub async fn list_indexes(cmds: &Commands, request: &CommandRequest) -> Result<RawDocumentBuf> {
    let body = &request.body;
    check_fields(
        body,
        "listIndexes",
        &["cursor", "includeBuildUUIDs", "includeIndexBuildInfo"],
    )?;
    let ns = command_ns(&request.db, body, "listIndexes")?;
    let batch_size = match get_doc(body, "listIndexes", "cursor")? {
        Some(c) => get_non_negative(c, "listIndexes.cursor", "batchSize")?,
        None => None,
    }
    .unwrap_or(DEFAULT_FIRST_BATCH);
    let ns2 = ns.clone();
    let found = cmds
        .blocking(move |engine| {
            let specs: Option<Vec<Document>> = {
                let view = engine.read_view()?;
                view.collection(&ns2)
                    .map(|info| info.indexes.iter().map(|s| s.spec.clone()).collect())
            };
            let Some(specs) = specs else {
                return Ok(None);
            };
            let mut source = Source::buffered(specs)?;
            let batch = source.next_batch(engine, Some(batch_size))?;
            Ok(Some((source, batch)))
        })
        .await?;
    let Some((source, batch)) = found else {
        return Err(CommandError::namespace_not_found(format!(
            "ns does not exist: {ns}"
        )));
    };
    let (db, coll) = ns.split_once('.').unwrap_or((&ns, ""));
    let cursor_ns = format!("{db}.$cmd.listIndexes.{coll}");
    Ok(first_reply(
        cmds,
        cursor_ns,
        source,
        batch,
        CursorFlags::default(),
    ))
}

/// Which indexes a `dropIndexes` names.
enum Target {
    All,
    Names(Vec<String>),
    Key(Document),
}

fn parse_target(body: &Document) -> Result<Target> {
    match body.get("index") {
        Some(Bson::String(s)) if s == "*" => Ok(Target::All),
        Some(Bson::String(s)) => Ok(Target::Names(vec![s.clone()])),
        Some(Bson::Document(key)) => Ok(Target::Key(key.clone())),
        Some(Bson::Array(names)) => names
            .iter()
            .map(|n| match n {
                Bson::String(s) if s != "*" => Ok(s.clone()),
                other => Err(CommandError::type_mismatch(format!(
                    "dropIndexes index names must be strings, got {}",
                    type_name(other)
                ))),
            })
            .collect::<Result<_>>()
            .map(Target::Names),
        Some(other) => Err(CommandError::type_mismatch(format!(
            "BSON field 'dropIndexes.index' is the wrong type '{}', expected types '[string, object, array]'",
            type_name(other)
        ))),
        None => Err(CommandError::new_missing("dropIndexes", "index")),
    }
}

/// `dropIndexes`: `"*"`, a name, names, or a key pattern; `{nIndexesWas, ok}`.
pub async fn drop_indexes(cmds: &Commands, request: &CommandRequest) -> Result<Document> {
    let body = &request.body;
    check_fields(body, "dropIndexes", &["index", "collectionUUID"])?;
    let ns = command_ns(&request.db, body, "dropIndexes")?;
    let target = parse_target(body)?;
    let all = matches!(target, Target::All);
    let was = cmds
        .blocking(move |engine| {
            engine
                .write(|txn| {
                    let Some(info) = txn.collection(&ns) else {
                        return Ok(Err(CommandError::namespace_not_found(format!(
                            "ns not found {ns}"
                        ))));
                    };
                    let was = info.indexes.len();
                    let names: Vec<String> = match &target {
                        Target::All => info
                            .indexes
                            .iter()
                            .filter(|s| !s.is_id())
                            .map(|s| s.name.clone())
                            .collect(),
                        Target::Names(n) => n.clone(),
                        Target::Key(key) => match info.indexes.iter().find(|s| &s.key == key) {
                            Some(s) => vec![s.name.clone()],
                            None => {
                                return Err(EngineError::IndexNotFound(format!("key: {key}")));
                            }
                        },
                    };
                    for name in names {
                        txn.drop_index(&ns, &name)?;
                    }
                    Ok(Ok(was))
                })
                .map_err(CommandError::from)?
        })
        .await?;
    let mut reply = doc! {"nIndexesWas": was as i32};
    if all {
        reply.insert("msg", "non-_id indexes dropped for collection");
    }
    reply.insert("ok", 1.0);
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_specs_are_checked() {
        assert!(check_spec(&doc! {"key": {"a": 1}, "name": "a_1", "unique": true}).is_ok());
        let code = |d: Document| check_spec(&d).err().map(|e| e.code());
        assert_eq!(
            code(doc! {"key": {"a": 1}, "expireAfterSeconds": 5}),
            Some(238)
        );
        assert_eq!(code(doc! {"key": {"a": 1}, "bogus": 5}), Some(197));
    }

    #[test]
    fn drop_targets_parse() {
        assert!(matches!(
            parse_target(&doc! {"index": "*"}),
            Ok(Target::All)
        ));
        assert!(
            matches!(parse_target(&doc! {"index": "a_1"}), Ok(Target::Names(n)) if n == ["a_1"])
        );
        assert!(matches!(
            parse_target(&doc! {"index": {"a": 1}}),
            Ok(Target::Key(_))
        ));
        assert!(parse_target(&doc! {"index": 5}).is_err());
    }
}
