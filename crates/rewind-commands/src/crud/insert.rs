//! `insert`: one engine transaction per command, ordered or unordered.

use std::borrow::Cow;

use bson::{Document, RawDocument, RawDocumentBuf};
use rewind_wire::CommandRequest;

use super::{check_writable, to_raw, with_id_first};
use crate::Commands;
use crate::error::{CommandError, Result};
use crate::options::{check_fields, command_ns, get_bool, get_doc_array};
use crate::raw::insert_form;
use crate::reply::WriteReply;

/// The documents to insert: from a `documents` document sequence (raw, the drivers' way) or
/// from the command body.
enum Incoming {
    Raw(Vec<RawDocumentBuf>),
    Parsed(Vec<Document>),
}

impl Incoming {
    /// Each document in its stored form, or why it cannot be stored.
    fn prepared(&self) -> Box<dyn Iterator<Item = Result<Cow<'_, RawDocument>>> + '_> {
        match self {
            // The wire hands sequence documents over canonical.
            Incoming::Raw(docs) => Box::new(docs.iter().map(|d| insert_form(d, true))),
            Incoming::Parsed(docs) => Box::new(
                docs.iter()
                    .map(|d| with_id_first(d.clone()).and_then(|d| to_raw(&d).map(Cow::Owned))),
            ),
        }
    }
}

/// `insert`.
pub async fn insert(cmds: &Commands, request: &CommandRequest) -> Result<Document> {
    let body = &request.body;
    check_fields(
        body,
        "insert",
        &["documents", "ordered", "bypassDocumentValidation"],
    )?;
    let ns = command_ns(&request.db, body, "insert")?;
    check_writable(&ns)?;
    let docs = match request
        .sequences
        .iter()
        .find(|s| s.identifier == "documents")
    {
        Some(sequence) => Incoming::Raw(sequence.documents.clone()),
        None => Incoming::Parsed(get_doc_array(body, "insert", "documents")?),
    };
    let ordered = get_bool(body, "insert", "ordered")?.unwrap_or(true);
    cmds.blocking(move |engine| {
        let prepared: Vec<Result<Cow<'_, RawDocument>>> = docs.prepared().collect();
        // The documents that can be stored go to the engine as one batch; `positions` maps
        // the batch back to the command's indexes, and a document that cannot be stored is
        // refused at its own (an ordered insert stops there).
        let (mut batch, mut positions, mut refused) = (Vec::new(), Vec::new(), Vec::new());
        for (index, doc) in prepared.iter().enumerate() {
            match doc {
                Ok(raw) => {
                    batch.push(raw.as_ref());
                    positions.push(index);
                }
                Err(e) => {
                    refused.push(e.to_write_error(index));
                    if ordered {
                        break;
                    }
                }
            }
        }
        let outcome = engine
            .write(|txn| txn.insert_many(&ns, &batch, ordered))
            .map_err(CommandError::from)?;
        let mut reply = WriteReply::new(false);
        reply.n = outcome.inserted as u64;
        reply.write_errors = outcome
            .errors
            .into_iter()
            .map(|(at, e)| CommandError::from(e).to_write_error(positions[at]))
            .collect();
        // Ordered: a document the engine refused comes before the refused one that ended
        // the batch, and nothing after the first error counts.
        if !ordered || reply.write_errors.is_empty() {
            reply.write_errors.extend(refused);
            reply
                .write_errors
                .sort_by_key(|e| e.get_i32("index").unwrap_or_default());
        }
        Ok(reply)
    })
    .await
    .map(WriteReply::into_document)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bson::{Bson, doc, rawdoc};
    use rewind_engine::{Engine, EngineOptions};
    use rewind_wire::op_msg::DocumentSequence;
    use rewind_wire::{CommandHandler, ConnectionContext, Reply};

    use super::*;

    fn request(name: &str, body: Document, documents: Vec<RawDocumentBuf>) -> CommandRequest {
        CommandRequest {
            db: "d".into(),
            name: name.into(),
            body,
            sequences: vec![DocumentSequence {
                identifier: "documents".into(),
                documents,
            }],
            connection: ConnectionContext {
                id: 1,
                peer: "127.0.0.1:1".parse().unwrap_or_else(|e| panic!("{e}")),
            },
            more_to_come: false,
        }
    }

    async fn run(cmds: &Commands, request: &CommandRequest) -> Document {
        match cmds.handle_raw(request).await {
            Some(reply) => reply.into_document().unwrap_or_else(|e| panic!("{e}")),
            None => panic!("unknown command"),
        }
    }

    #[tokio::test]
    async fn sequence_inserts_store_raw_documents_and_stop_at_the_first_error_when_ordered() {
        let dir = std::env::temp_dir().join(format!("rc-insert-{}", std::process::id()));
        let engine = Engine::open(&dir, EngineOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        let cmds = Commands::new(Arc::new(engine));
        let batch = vec![
            rawdoc! {"_id": 1, "a": "x"},
            rawdoc! {"b": 2, "_id": 2},
            rawdoc! {"_id": 1},
            rawdoc! {"c": 3},
        ];
        let ordered = request("insert", doc! {"insert": "c", "$db": "d"}, batch.clone());
        let reply = run(&cmds, &ordered).await;
        assert_eq!(reply.get_i32("n").ok(), Some(2));
        let errors = reply.get_array("writeErrors").cloned().unwrap_or_default();
        assert_eq!(errors.len(), 1);
        let Some(Bson::Document(error)) = errors.first() else {
            panic!("{reply}")
        };
        assert_eq!(error.get_i32("index").ok(), Some(2));
        assert_eq!(error.get_i32("code").ok(), Some(11000));
        assert_eq!(
            error.get_document("keyPattern").ok(),
            Some(&doc! {"_id": 1})
        );
        assert_eq!(error.get_document("keyValue").ok(), Some(&doc! {"_id": 1}));

        // Stored as sent, `_id` moved first; found again raw by `_id` `$in`.
        let find = |filter: Document| CommandRequest {
            sequences: Vec::new(),
            ..request(
                "find",
                doc! {"find": "c", "filter": filter, "$db": "d"},
                Vec::new(),
            )
        };
        let reply = cmds
            .handle_raw(&find(doc! {"_id": {"$in": [2, 1, 7]}}))
            .await;
        assert!(matches!(reply, Some(Reply::Raw(_))));
        let reply = reply
            .map(|r| r.into_document().unwrap_or_default())
            .unwrap_or_default();
        let docs = reply
            .get_document("cursor")
            .and_then(|c| c.get_array("firstBatch"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            docs,
            vec![
                Bson::Document(doc! {"_id": 1, "a": "x"}),
                Bson::Document(doc! {"_id": 2, "b": 2})
            ]
        );

        // Unordered: every document is tried; the one without `_id` gets an ObjectId.
        let unordered = request(
            "insert",
            doc! {"insert": "c", "ordered": false, "$db": "d"},
            batch,
        );
        let reply = run(&cmds, &unordered).await;
        assert_eq!(reply.get_i32("n").ok(), Some(1));
        let indexes: Vec<i32> = reply
            .get_array("writeErrors")
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|e| e.as_document().and_then(|e| e.get_i32("index").ok()))
            .collect();
        assert_eq!(indexes, vec![0, 1, 2]);
        let reply = run(&cmds, &find(doc! {"c": 3})).await;
        let first = reply
            .get_document("cursor")
            .and_then(|c| c.get_array("firstBatch"))
            .cloned()
            .unwrap_or_default();
        assert!(
            matches!(first.first(), Some(Bson::Document(d)) if matches!(d.get("_id"), Some(Bson::ObjectId(_))))
        );
        drop(cmds);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// `(index, code, keyValue)` of each write error.
    fn write_errors(reply: &Document) -> Vec<(i32, i32, Option<Document>)> {
        reply
            .get_array("writeErrors")
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(Bson::as_document)
            .map(|e| {
                let index = e.get_i32("index").unwrap_or(-1);
                let code = e.get_i32("code").unwrap_or(-1);
                (index, code, e.get_document("keyValue").ok().cloned())
            })
            .collect()
    }

    #[tokio::test]
    async fn refusals_of_the_command_and_of_the_engine_interleave_by_index() {
        let dir = std::env::temp_dir().join(format!("rc-insert-mix-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let engine = Arc::new(
            Engine::open(&dir, EngineOptions::default()).unwrap_or_else(|e| panic!("{e}")),
        );
        let cmds = Commands::new(engine.clone());
        let unordered = request(
            "insert",
            doc! {"insert": "c", "ordered": false, "$db": "d"},
            vec![
                rawdoc! {"_id": 1},
                rawdoc! {"_id": [1]},
                rawdoc! {"_id": 1, "again": true},
                rawdoc! {"_id": 2},
            ],
        );
        let reply = run(&cmds, &unordered).await;
        assert_eq!(reply.get_i32("n").ok(), Some(2));
        assert_eq!(
            write_errors(&reply),
            vec![(1, 2, None), (2, 11000, Some(doc! {"_id": 1}))]
        );

        // Ordered: the engine's refusal at 1 comes first, so the bad `_id` at 2 is not tried.
        let ordered = request(
            "insert",
            doc! {"insert": "c", "$db": "d"},
            vec![rawdoc! {"_id": 3}, rawdoc! {"_id": 3}, rawdoc! {"_id": [1]}],
        );
        let reply = run(&cmds, &ordered).await;
        assert_eq!(reply.get_i32("n").ok(), Some(1));
        assert_eq!(
            write_errors(&reply),
            vec![(1, 11000, Some(doc! {"_id": 3}))]
        );
        // And the command's refusal at 1 stops an ordered batch before 2.
        let ordered = request(
            "insert",
            doc! {"insert": "c", "$db": "d"},
            vec![rawdoc! {"_id": 4}, rawdoc! {"_id": [1]}, rawdoc! {"_id": 5}],
        );
        let reply = run(&cmds, &ordered).await;
        assert_eq!(reply.get_i32("n").ok(), Some(1));
        assert_eq!(write_errors(&reply), vec![(1, 2, None)]);

        // One insert entry per landed document, in order, nothing for the refused ones.
        let inserted: Vec<Bson> = engine
            .oplog_range(None, None, usize::MAX)
            .unwrap_or_default()
            .iter()
            .filter(|e| e.get_str("op").ok() == Some("i"))
            .filter_map(|e| e.get_document("o2").ok()?.get("_id").ok()?)
            .filter_map(|id| Bson::try_from(id).ok())
            .collect();
        assert_eq!(
            inserted,
            vec![
                Bson::Int32(1),
                Bson::Int32(2),
                Bson::Int32(3),
                Bson::Int32(4)
            ]
        );
        drop(cmds);
        drop(engine);
        let _ = std::fs::remove_dir_all(dir);
    }
}
