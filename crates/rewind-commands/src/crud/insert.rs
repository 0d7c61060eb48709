//! `insert`: one engine transaction per command, ordered or unordered.

use bson::Document;
use rewind_wire::CommandRequest;

use super::{check_writable, to_raw, with_id_first};
use crate::Commands;
use crate::error::{CommandError, Result};
use crate::options::{check_fields, command_ns, get_bool, get_doc_array};
use crate::reply::WriteReply;

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
    let docs = get_doc_array(body, "insert", "documents")?;
    let ordered = get_bool(body, "insert", "ordered")?.unwrap_or(true);
    cmds.blocking(move |engine| {
        engine
            .write(|txn| {
                let mut reply = WriteReply::new(false);
                for (index, doc) in docs.into_iter().enumerate() {
                    let outcome = with_id_first(doc)
                        .and_then(|d| to_raw(&d))
                        .and_then(|raw| txn.insert(&ns, &raw).map_err(CommandError::from));
                    match outcome {
                        Ok(()) => reply.n += 1,
                        Err(e) => {
                            reply.write_errors.push(e.to_write_error(index));
                            if ordered {
                                break;
                            }
                        }
                    }
                }
                Ok(reply)
            })
            .map_err(CommandError::from)
    })
    .await
    .map(WriteReply::into_document)
}
