//! `delete`: statements `{q, limit: 0|1}` in one engine transaction.

use bson::{Bson, Document};
use rewind_engine::WriteTxn;
use rewind_query::filter::Filter;
use rewind_wire::CommandRequest;

use super::{check_writable, write_statements};
use crate::Commands;
use crate::error::{CommandError, Result};
use crate::options::{
    as_i64, check_all_fields, check_collation, check_fields, check_required, command_ns, get_bool,
    get_doc_array,
};
use crate::reader::matching;
use crate::reply::WriteReply;

/// One parsed delete statement.
pub(crate) struct Statement {
    filter: Filter,
    /// Delete at most one document.
    just_one: bool,
}

const STATEMENT_FIELDS: &[&str] = &["q", "limit", "collation", "hint"];

pub(crate) fn parse_statement(stmt: &Document) -> Result<Statement> {
    check_all_fields(stmt, "delete.deletes", STATEMENT_FIELDS)?;
    check_collation(stmt, "delete.deletes")?;
    let q = match stmt.get("q") {
        Some(Bson::Document(q)) => q,
        _ => return Err(CommandError::new_missing("delete.deletes", "q")),
    };
    let just_one = match stmt.get("limit").and_then(as_i64) {
        Some(0) => false,
        Some(1) => true,
        _ => {
            return Err(CommandError::failed_to_parse(format!(
                "The limit field in delete objects must be 0 or 1. Got {}",
                stmt.get("limit")
                    .map_or("nothing".to_owned(), ToString::to_string)
            )));
        }
    };
    Ok(Statement {
        filter: Filter::parse(q)?,
        just_one,
    })
}

/// Deletes the documents one statement selects; returns how many.
pub(crate) fn run_statement(txn: &mut WriteTxn<'_>, ns: &str, stmt: &Statement) -> Result<u64> {
    let docs = matching(txn, ns, &stmt.filter, usize::from(stmt.just_one))?;
    let mut n = 0;
    for doc in docs {
        let id = doc.get("_id").cloned().unwrap_or(Bson::Null);
        if txn.delete(ns, &id)? {
            n += 1;
        }
    }
    Ok(n)
}

/// `delete`.
pub async fn delete(cmds: &Commands, request: &CommandRequest) -> Result<Document> {
    let body = &request.body;
    check_fields(body, "delete", &["deletes", "ordered", "let"])?;
    if body.contains_key("let") {
        return Err(CommandError::not_implemented(
            "delete option 'let' is not supported by rewind",
        ));
    }
    let ns = command_ns(&request.db, body, "delete")?;
    check_writable(&ns)?;
    let stmts = get_doc_array(body, "delete", "deletes")?;
    // As for update: statement fields are the command's, checked before anything runs.
    for stmt in &stmts {
        check_all_fields(stmt, "delete.deletes", STATEMENT_FIELDS)?;
        check_required(stmt, "delete.deletes", &["q", "limit"])?;
    }
    let ordered = get_bool(body, "delete", "ordered")?.unwrap_or(true);
    let reply = WriteReply::new(false);
    write_statements(cmds, stmts, ordered, reply, move |txn, _, stmt, reply| {
        reply.n += run_statement(txn, &ns, &parse_statement(stmt)?)?;
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;

    #[test]
    fn limit_must_be_zero_or_one() {
        assert!(parse_statement(&doc! {"q": {}, "limit": 1}).is_ok_and(|s| s.just_one));
        assert!(parse_statement(&doc! {"q": {}, "limit": 0}).is_ok_and(|s| !s.just_one));
        assert_eq!(
            parse_statement(&doc! {"q": {}, "limit": 2})
                .err()
                .map(|e| e.code()),
            Some(9)
        );
        assert_eq!(
            parse_statement(&doc! {"q": {}, "limit": 1, "x": 1})
                .err()
                .map(|e| e.code()),
            Some(40415)
        );
    }
}
