//! `aggregate` over one collection, with the pipeline evaluated by `rewind-query`.

use bson::{Bson, Document};
use rewind_engine::ReadView;
use rewind_query::aggregate::{Foreign, Pipeline};
use rewind_query::filter::Filter;
use rewind_query::{QueryError, QueryResult};
use rewind_wire::{CommandRequest, Reply};

use super::find::{CursorFlags, DEFAULT_FIRST_BATCH, first_reply};
use crate::Commands;
use crate::error::{CommandError, Result};
use crate::explain::{self, Verbosity};
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

/// The other collections of an aggregated collection's database, read for `$lookup` in the
/// aggregation's read view.
pub struct SameDatabase<'a> {
    view: &'a ReadView,
    db: &'a str,
}

impl<'a> SameDatabase<'a> {
    /// The database of `ns`, seen by `view`.
    pub fn of(view: &'a ReadView, ns: &'a str) -> Self {
        let db = ns.split_once('.').map_or(ns, |(db, _)| db);
        Self { view, db }
    }
}

impl Foreign for SameDatabase<'_> {
    fn matching(&self, coll: &str, filter: &Filter) -> QueryResult<Vec<Document>> {
        let ns = format!("{}.{coll}", self.db);
        let read = rewind_engine::parse_ns(&ns)
            .map_err(CommandError::from)
            .and_then(|_| matching(self.view, &ns, filter, 0));
        // Back to the query layer's error, code and name kept.
        read.map_err(|e| QueryError::new(e.code(), e.code_name(), e.to_string()))
    }
}

/// A parsed `aggregate` command (its cursor options aside).
pub struct Aggregate {
    /// The collection aggregated.
    pub ns: String,
    /// The stages as given.
    pub stages: Vec<Document>,
    /// A leading `$collStats`, which reports on the collection instead of reading it.
    pub coll_stats: Option<CollStatsStage>,
    /// The stages after a leading `$collStats`, parsed.
    pub pipeline: Pipeline,
    /// The `hint`, checked against the collection's indexes.
    pub hint: Option<Hint>,
}

/// Parses an `aggregate` command on `db`: its namespace, pipeline and hint.
pub fn parse_aggregate(db: &str, body: &Document) -> Result<Aggregate> {
    check_fields(body, "aggregate", FIELDS)?;
    check_collation(body, "aggregate")?;
    if body.contains_key("let") {
        return Err(CommandError::not_implemented(
            "aggregate option 'let' is not supported by rewind",
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
    let ns = format!("{db}.{coll}");
    rewind_engine::parse_ns(&ns)?;
    Ok(Aggregate {
        ns,
        stages,
        coll_stats,
        pipeline,
        hint: Hint::parse(body)?,
    })
}

/// `aggregate` (with `explain: true`, its explain at `queryPlanner` verbosity).
pub async fn aggregate(cmds: &Commands, request: &CommandRequest) -> Result<Reply> {
    let body = &request.body;
    let parsed = parse_aggregate(&request.db, body)?;
    if get_bool(body, "aggregate", "explain")? == Some(true) {
        let mut reply = explain::aggregate(cmds, parsed, Verbosity::QueryPlanner).await?;
        reply.insert("ok", 1.0);
        return Ok(Reply::Document(reply));
    }
    let cursor = get_doc(body, "aggregate", "cursor")?.ok_or_else(|| {
        CommandError::failed_to_parse(
            "The 'cursor' option is required, except for aggregate with the explain argument",
        )
    })?;
    let batch_size =
        get_non_negative(cursor, "aggregate.cursor", "batchSize")?.unwrap_or(DEFAULT_FIRST_BATCH);
    let Aggregate {
        ns,
        coll_stats,
        pipeline,
        hint,
        ..
    } = parsed;
    let ns2 = ns.clone();
    let (source, batch) = cmds
        .blocking(move |engine| {
            let view = engine.read_view()?;
            let docs = if let Some(stage) = &coll_stats {
                vec![stage.run(engine, &view, &ns2)?]
            } else {
                if let Some(hint) = &hint {
                    hint.check(view.collection(&ns2))?;
                }
                // A leading $match selects the candidates (and may use an index); the
                // pipeline applies it again, which is harmless.
                let all = Filter::parse(&Document::new())?;
                let first = pipeline.stages().first().and_then(|s| s.as_match());
                matching(&view, &ns2, first.unwrap_or(&all), 0)?
            };
            // `$lookup` reads the other collections in the same read view.
            let results = pipeline.run_with(docs, &SameDatabase::of(&view, &ns2))?;
            drop(view);
            let mut source = Source::buffered(results)?;
            let batch = source.next_batch(engine, Some(batch_size))?;
            Ok((source, batch))
        })
        .await?;
    Ok(Reply::Raw(first_reply(
        cmds,
        ns,
        source,
        batch,
        CursorFlags::default(),
    )))
}
