//! `aggregate` over one collection, with the pipeline evaluated by `rewind-query`.

use bson::{Bson, Document, RawDocumentBuf};
use rewind_query::aggregate::Pipeline;
use rewind_query::filter::Filter;
use rewind_wire::CommandRequest;

use super::find::{DEFAULT_FIRST_BATCH, first_reply};
use crate::Commands;
use crate::error::{CommandError, Result};
use crate::hint::Hint;
use crate::options::{
    check_collation, check_fields, get_bool, get_doc, get_doc_array, get_non_negative, type_name,
};
use crate::reader::matching;
use crate::source::Source;
use crate::stats::CollStatsStage;

const FIELDS: &[&str] = &[
    "pipeline",
    "cursor",
    "explain",
    "allowDiskUse",
    "hint",
    "let",
    "collation",
    "bypassDocumentValidation",
];

/// `aggregate`.
pub async fn aggregate(cmds: &Commands, request: &CommandRequest) -> Result<RawDocumentBuf> {
    let body = &request.body;
    check_fields(body, "aggregate", FIELDS)?;
    check_collation(body, "aggregate")?;
    if get_bool(body, "aggregate", "explain")? == Some(true) || body.contains_key("let") {
        return Err(CommandError::not_implemented(
            "aggregate options 'explain' and 'let' are not supported by rewind",
        ));
    }
    let stages = get_doc_array(body, "aggregate", "pipeline")?;
    // `$collStats` (only valid first) reports on the collection instead of reading it.
    let coll_stats = match stages.first() {
        Some(first) if first.len() == 1 && first.contains_key("$collStats") => Some(
            CollStatsStage::parse(first.get("$collStats").unwrap_or(&Bson::Null))?,
        ),
        _ => None,
    };
    let pipeline = Pipeline::parse(&stages[usize::from(coll_stats.is_some())..])?;
    let coll = match body.get("aggregate") {
        Some(Bson::String(c)) => c.clone(),
        Some(other) if crate::options::as_i64(other) == Some(1) => {
            let first = stages
                .first()
                .and_then(|s| s.keys().next().cloned())
                .unwrap_or_else(|| "aggregate".to_owned());
            return Err(CommandError::invalid_namespace(format!(
                "{{aggregate: 1}} is not valid for '{first}'; a collection is required."
            )));
        }
        Some(other) => {
            return Err(CommandError::type_mismatch(format!(
                "Invalid {{aggregate: ...}} value: {}",
                type_name(other)
            )));
        }
        None => return Err(CommandError::new_missing("aggregate", "aggregate")),
    };
    let ns = format!("{}.{coll}", request.db);
    rewind_engine::parse_ns(&ns)?;
    let cursor = get_doc(body, "aggregate", "cursor")?.ok_or_else(|| {
        CommandError::failed_to_parse(
            "The 'cursor' option is required, except for aggregate with the explain argument",
        )
    })?;
    let batch_size =
        get_non_negative(cursor, "aggregate.cursor", "batchSize")?.unwrap_or(DEFAULT_FIRST_BATCH);
    let hint = Hint::parse(body)?;
    let ns2 = ns.clone();
    let (source, batch) = cmds
        .blocking(move |engine| {
            let docs = if let Some(stage) = &coll_stats {
                vec![stage.run(engine, &engine.read_view()?, &ns2)?]
            } else {
                let view = engine.read_view()?;
                if let Some(hint) = &hint {
                    hint.check(view.collection(&ns2))?;
                }
                // A leading $match selects the candidates (and may use an index); the
                // pipeline applies it again, which is harmless.
                let all = Filter::parse(&Document::new())?;
                let first = pipeline.stages().first().and_then(|s| s.as_match());
                matching(&view, &ns2, first.unwrap_or(&all), 0)?
            };
            let results = pipeline.run(docs)?;
            let mut source = Source::buffered(results)?;
            let batch = source.next_batch(engine, Some(batch_size))?;
            Ok((source, batch))
        })
        .await?;
    Ok(first_reply(cmds, ns, source, batch, false, false, false))
}
