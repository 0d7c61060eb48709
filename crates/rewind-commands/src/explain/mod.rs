//! `explain` of `find`, `count`, `distinct` and `aggregate` (and `aggregate` with
//! `explain: true`): the plan rewind's planner chose, in mongod's classic-engine shape, and
//! under `executionStats`/`allPlansExecution` what running it examined and returned. Write
//! commands are refused: explaining them without writing is not supported.

mod plan;

use std::time::Instant;

use bson::{Bson, Document, doc};
use rewind_engine::ReadView;
use rewind_query::filter::Filter;
use rewind_wire::CommandRequest;

use crate::Commands;
use crate::crud::aggregate::{Aggregate, SameDatabase, parse_aggregate};
use crate::crud::find::{Order, parse_find};
use crate::error::{CommandError, Result};
use crate::options::{check_fields, command_ns, get_doc, get_non_negative, get_str};
use crate::reader::{Access, access_path, for_each_candidate, stored_count};
use crate::reply::count_value;
use plan::{Counts, Tree};

/// How much `explain` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// The chosen plan only; nothing runs.
    QueryPlanner,
    /// The plan, run, with what it examined and returned.
    ExecutionStats,
    /// As `ExecutionStats` (rewind considers one plan, so there are no others to run).
    AllPlansExecution,
}

impl Verbosity {
    fn parse(body: &Document) -> Result<Self> {
        match get_str(body, "explain", "verbosity")? {
            None | Some("allPlansExecution") => Ok(Self::AllPlansExecution),
            Some("queryPlanner") => Ok(Self::QueryPlanner),
            Some("executionStats") => Ok(Self::ExecutionStats),
            Some(other) => Err(CommandError::bad_value(format!(
                "Enumeration value '{other}' for field 'explain.verbosity' is not a valid value."
            ))),
        }
    }

    fn runs(self) -> bool {
        self != Self::QueryPlanner
    }
}

/// The `explain` command.
pub async fn explain(cmds: &Commands, request: &CommandRequest) -> Result<Document> {
    let body = &request.body;
    check_fields(body, "explain", &["verbosity"])?;
    let verbosity = Verbosity::parse(body)?;
    let inner = match body.get("explain") {
        Some(Bson::Document(inner)) => inner.clone(),
        _ => {
            return Err(CommandError::failed_to_parse(
                "explain command requires a nested object",
            ));
        }
    };
    let name = inner.keys().next().cloned().unwrap_or_default();
    let db = request.db.clone();
    let mut reply = match name.as_str() {
        "find" => find(cmds, &db, inner.clone(), verbosity).await?,
        "count" => count_command(cmds, &db, inner.clone(), verbosity).await?,
        "distinct" => distinct(cmds, &db, inner.clone(), verbosity).await?,
        "aggregate" => aggregate(cmds, parse_aggregate(&db, &inner)?, verbosity).await?,
        "update" | "delete" | "findAndModify" => {
            return Err(CommandError::not_implemented(format!(
                "explain of '{name}' is not supported by rewind"
            )));
        }
        _ => {
            return Err(CommandError::command_not_found(format!(
                "Explain failed due to unknown command: {name}"
            )));
        }
    };
    let mut command = inner;
    command.insert("$db", db);
    reply.insert("command", command);
    reply.insert("ok", 1.0);
    Ok(reply)
}

/// The top of a find-shaped explain: `queryPlanner`, and `executionStats` when it ran.
fn report(
    ns: &str,
    filter: &Document,
    tree: Tree,
    counts: Option<Counts>,
    returned: u64,
    verbosity: Verbosity,
) -> Document {
    let winning = tree.into_document();
    let mut out = doc! {
        "explainVersion": "1",
        "queryPlanner": {
            "namespace": ns,
            "parsedQuery": filter.clone(),
            "indexFilterSet": false,
            "maxIndexedOrSolutionsReached": false,
            "maxIndexedAndSolutionsReached": false,
            "maxScansToExplodeReached": false,
            "prunedSimilarIndexes": false,
            "winningPlan": strip_stats(&winning),
            "rejectedPlans": [],
        },
    };
    if let Some(c) = counts {
        out.insert(
            "executionStats",
            doc! {
                "executionSuccess": true,
                "nReturned": count_value(returned),
                "executionTimeMillis": count_value(c.millis),
                "totalKeysExamined": count_value(c.keys),
                "totalDocsExamined": count_value(c.docs),
                "executionStages": winning,
            },
        );
        if verbosity == Verbosity::AllPlansExecution
            && let Ok(stats) = out.get_document_mut("executionStats")
        {
            // One candidate plan: no other was tried.
            stats.insert("allPlansExecution", Bson::Array(Vec::new()));
        }
    }
    out
}

/// The plan without its execution figures (`queryPlanner.winningPlan`).
fn strip_stats(stage: &Document) -> Document {
    const STATS: &[&str] = &[
        "nReturned",
        "executionTimeMillisEstimate",
        "docsExamined",
        "keysExamined",
    ];
    stage
        .iter()
        .filter(|(k, _)| !STATS.contains(&k.as_str()))
        .map(|(k, v)| match v {
            Bson::Document(input) if k == "inputStage" => {
                (k.clone(), Bson::Document(strip_stats(input)))
            }
            _ => (k.clone(), v.clone()),
        })
        .collect()
}

/// Runs the access path, counting what it examines; `wanted` stops it once that many
/// documents matched (a find in storage order with a limit stops there too).
fn execute(
    view: &ReadView,
    ns: &str,
    access: Access,
    filter: &Filter,
    wanted: Option<u64>,
    mut on_match: impl FnMut(Document),
) -> Result<Counts> {
    let started = Instant::now();
    let mut counts = Counts::default();
    let keyed = !matches!(access, Access::Scan | Access::Oplog);
    for_each_candidate(view, ns, access, |raw| {
        counts.docs += 1;
        counts.keys += u64::from(keyed);
        let doc = Document::try_from(raw)?;
        if filter.try_matches(&doc)? {
            counts.matched += 1;
            on_match(doc);
        }
        Ok(wanted.is_none_or(|w| counts.matched < w))
    })?;
    counts.millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(counts)
}

/// The plan's leaf stages: mongod's `EOF` for a collection that does not exist.
fn access_tree(
    view: &ReadView,
    ns: &str,
    access: &Access,
    filter: &Document,
    backward: bool,
    counts: Option<Counts>,
) -> Tree {
    let info = view.collection(ns);
    if info.is_none() && ns != crate::oplog::OPLOG_NS {
        return Tree::single(doc! {"stage": "EOF"}, counts);
    }
    Tree::access(info, access, filter, backward, counts)
}

async fn find(
    cmds: &Commands,
    db: &str,
    inner: Document,
    verbosity: Verbosity,
) -> Result<Document> {
    let ns = command_ns(db, &inner, "find")?;
    let opts = parse_find(&inner)?;
    cmds.blocking(move |engine| {
        let view = engine.read_view()?;
        let access = access_path(&view, &ns, &opts.filter);
        let backward = matches!(opts.order, Order::ReverseNatural);
        let in_storage_order = matches!(opts.order, Order::Natural);
        let counts = if verbosity.runs() {
            let wanted = opts
                .limit
                .filter(|_| in_storage_order)
                .map(|l| l.saturating_add(opts.skip));
            Some(execute(&view, &ns, access.clone(), &opts.filter, wanted, |_| ())?)
        } else {
            None
        };
        let mut tree = access_tree(&view, &ns, &access, &opts.filter_doc, backward, counts);
        let mut flowing = counts.map_or(0, |c| c.matched);
        if let (Order::Sort(_), Some(sort)) = (&opts.order, get_doc(&inner, "find", "sort")?) {
            let mut stage = doc! {"stage": "SORT", "sortPattern": sort.clone(), "memLimit": 104_857_600, "type": "simple"};
            if let Some(limit) = opts.limit {
                stage.insert("limitAmount", count_value(limit.saturating_add(opts.skip)));
                flowing = flowing.min(limit.saturating_add(opts.skip));
            }
            tree.push(stage, flowing);
        }
        if opts.skip > 0 {
            flowing = flowing.saturating_sub(opts.skip);
            tree.push(doc! {"stage": "SKIP", "skipAmount": count_value(opts.skip)}, flowing);
        }
        if let Some(limit) = opts.limit {
            flowing = flowing.min(limit);
            tree.push(doc! {"stage": "LIMIT", "limitAmount": count_value(limit)}, flowing);
        }
        if !opts.identity
            && let Some(projection) = get_doc(&inner, "find", "projection")?
        {
            tree.push(doc! {"stage": "PROJECTION_DEFAULT", "transformBy": projection.clone()}, flowing);
        }
        Ok(report(&ns, &opts.filter_doc, tree, counts, flowing, verbosity))
    })
    .await
}

async fn count_command(
    cmds: &Commands,
    db: &str,
    inner: Document,
    verbosity: Verbosity,
) -> Result<Document> {
    let ns = command_ns(db, &inner, "count")?;
    let query = get_doc(&inner, "count", "query")?
        .cloned()
        .unwrap_or_default();
    let filter = Filter::parse(&query)?;
    let skip = get_non_negative(&inner, "count", "skip")?.unwrap_or(0);
    cmds.blocking(move |engine| {
        let view = engine.read_view()?;
        if filter.is_match_all() {
            // The count comes from the collection's size, no document is read.
            let n = stored_count(&view, &ns)?;
            let counts = verbosity.runs().then(Counts::default);
            let tree = Tree::single(doc! {"stage": "RECORD_STORE_FAST_COUNT"}, counts);
            let mut out = report(&ns, &query, tree, counts, 0, verbosity);
            if verbosity.runs()
                && let Ok(stats) = out.get_document_mut("executionStats")
            {
                stats.insert("nCounted", count_value(n.saturating_sub(skip)));
            }
            return Ok(out);
        }
        let access = access_path(&view, &ns, &filter);
        let counts = if verbosity.runs() {
            Some(execute(&view, &ns, access.clone(), &filter, None, |_| ())?)
        } else {
            None
        };
        let mut tree = access_tree(&view, &ns, &access, &query, false, counts);
        tree.push(doc! {"stage": "COUNT"}, 0);
        Ok(report(&ns, &query, tree, counts, 0, verbosity))
    })
    .await
}

async fn distinct(
    cmds: &Commands,
    db: &str,
    inner: Document,
    verbosity: Verbosity,
) -> Result<Document> {
    let ns = command_ns(db, &inner, "distinct")?;
    let key = get_str(&inner, "distinct", "key")?
        .ok_or_else(|| CommandError::new_missing("distinct", "key"))?
        .to_owned();
    let query = get_doc(&inner, "distinct", "query")?
        .cloned()
        .unwrap_or_default();
    let filter = Filter::parse(&query)?;
    cmds.blocking(move |engine| {
        let view = engine.read_view()?;
        let access = access_path(&view, &ns, &filter);
        let counts = if verbosity.runs() {
            Some(execute(&view, &ns, access.clone(), &filter, None, |_| ())?)
        } else {
            None
        };
        let matched = counts.map_or(0, |c| c.matched);
        let mut tree = access_tree(&view, &ns, &access, &query, false, counts);
        tree.push(
            doc! {"stage": "PROJECTION_DEFAULT", "transformBy": {&key: 1, "_id": 0}},
            matched,
        );
        Ok(report(&ns, &query, tree, counts, matched, verbosity))
    })
    .await
}

/// `explain` of an aggregation: the `$cursor` stage that reads the collection (with the
/// leading `$match` it uses), then each stage as given, with how many documents each
/// returned when it ran.
pub async fn aggregate(
    cmds: &Commands,
    parsed: Aggregate,
    verbosity: Verbosity,
) -> Result<Document> {
    cmds.blocking(move |engine| {
        let view = engine.read_view()?;
        let ns = parsed.ns.clone();
        let mut stages_out = Vec::new();
        let mut docs: Vec<Document> = Vec::new();
        let mut rest = parsed.stages.as_slice();
        let mut pipeline = parsed.pipeline.stages();
        if let Some(stage) = &parsed.coll_stats {
            let mut first = parsed.stages.first().cloned().unwrap_or_default();
            if verbosity.runs() {
                docs = vec![stage.run(engine, &view, &ns)?];
                first.insert("nReturned", count_value(1));
            }
            stages_out.push(Bson::Document(first));
            rest = &rest[1..];
        } else {
            let all = Filter::parse(&Document::new())?;
            let leading = pipeline.first().and_then(|s| s.as_match());
            let filter_doc = match (leading, rest.first()) {
                (Some(_), Some(first)) => first.get_document("$match").cloned().unwrap_or_default(),
                _ => Document::new(),
            };
            let filter = leading.unwrap_or(&all);
            let access = access_path(&view, &ns, filter);
            let counts = if verbosity.runs() {
                Some(execute(&view, &ns, access.clone(), filter, None, |d| {
                    docs.push(d)
                })?)
            } else {
                None
            };
            let tree = access_tree(&view, &ns, &access, &filter_doc, false, counts);
            let matched = counts.map_or(0, |c| c.matched);
            let mut cursor = report(&ns, &filter_doc, tree, counts, matched, verbosity);
            cursor.remove("explainVersion");
            stages_out.push(Bson::Document(doc! {"$cursor": cursor}));
            if leading.is_some() {
                // The leading $match ran as the cursor's filter.
                rest = &rest[1..];
                pipeline = &pipeline[1..];
            }
        }
        for (spec, stage) in rest.iter().zip(pipeline) {
            let mut shown = spec.clone();
            if verbosity.runs() {
                let started = Instant::now();
                docs = stage.run_with(std::mem::take(&mut docs), &SameDatabase::of(&view, &ns))?;
                shown.insert("nReturned", count_value(docs.len() as u64));
                shown.insert(
                    "executionTimeMillisEstimate",
                    count_value(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)),
                );
            }
            stages_out.push(Bson::Document(shown));
        }
        Ok(doc! {"explainVersion": "1", "stages": stages_out})
    })
    .await
}
