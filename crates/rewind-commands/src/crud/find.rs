//! `find`, `getMore` and `killCursors`.

use std::collections::VecDeque;
use std::time::Duration;

use bson::{Bson, Document, RawDocumentBuf, doc};
use rewind_engine::ReadView;
use rewind_query::filter::Filter;
use rewind_query::projection::Projection;
use rewind_query::sort::SortSpec;
use rewind_wire::CommandRequest;

use crate::Commands;
use crate::crud::to_raw;
use crate::cursors::{CheckoutError, Cursor, Killed};
use crate::error::{CommandError, Result};
use crate::hint::Hint;
use crate::oplog;
use crate::options::{
    as_i64, check_collation, check_fields, command_ns, get_bool, get_doc, get_i64,
    get_non_negative, type_name,
};
use crate::raw::{fetched_among, filter_fields, is_id_in};
use crate::reader::{Access, for_each_candidate, matching, plan};
use crate::reply::cursor_reply;
use crate::source::{Matcher, Source};

/// mongod's default number of documents in a first batch.
pub const DEFAULT_FIRST_BATCH: u64 = 101;

/// How long an awaitData `getMore` waits for new data when the client sets no `maxTimeMS`.
const DEFAULT_AWAIT: Duration = Duration::from_secs(1);

const FIND_FIELDS: &[&str] = &[
    "filter",
    "projection",
    "sort",
    "skip",
    "limit",
    "batchSize",
    "singleBatch",
    "hint",
    "tailable",
    "awaitData",
    "noCursorTimeout",
    "allowDiskUse",
    "allowPartialResults",
    "oplogReplay",
    "collation",
    "readOnce",
    "returnKey",
    "showRecordId",
    "min",
    "max",
    "let",
];

/// The result order of a find.
pub enum Order {
    /// Storage order (`_id` order, or the index order of an index lookup).
    Natural,
    /// `{$natural: -1}`: reverse storage order.
    ReverseNatural,
    /// A sort specification.
    Sort(SortSpec),
}

/// A parsed `find` command.
pub struct FindOptions {
    /// The filter as given (the oplog reads its `ts` bounds).
    pub filter_doc: Document,
    /// The parsed filter.
    pub filter: Filter,
    /// The projection (identity when absent).
    pub projection: Projection,
    /// The projection is the identity (`{}` or absent).
    pub identity: bool,
    /// The top-level fields the filter reads (`None`: it may read any).
    pub fields: Option<Vec<String>>,
    /// The result order.
    pub order: Order,
    /// Documents to skip.
    pub skip: u64,
    /// At most this many results (`None`: no limit).
    pub limit: Option<u64>,
    /// The first batch's size.
    pub batch_size: Option<u64>,
    /// Close the cursor after the first batch.
    pub single_batch: bool,
    /// A tailable cursor.
    pub tailable: bool,
    /// With `tailable`, `getMore` waits for data.
    pub await_data: bool,
    /// `noCursorTimeout`.
    pub no_cursor_timeout: bool,
}

impl FindOptions {
    /// What the cursor of this find is asked to do.
    pub fn cursor_flags(&self) -> CursorFlags {
        CursorFlags {
            single_batch: self.single_batch,
            tailable: self.tailable,
            await_data: self.await_data,
            no_timeout: self.no_cursor_timeout,
        }
    }

    /// The number of documents of the first batch.
    pub fn first_batch(&self) -> Option<u64> {
        Some(self.batch_size.unwrap_or(DEFAULT_FIRST_BATCH))
    }

    /// The streaming filter/projection/skip/limit state.
    pub fn matcher(&self) -> Matcher {
        Matcher {
            filter: self.filter.clone(),
            projection: self.projection.clone(),
            identity: self.identity,
            fields: self.fields.clone(),
            skip: self.skip,
            remaining: self.limit,
        }
    }
}

fn refuse(option: &str) -> CommandError {
    CommandError::not_implemented(format!("find option '{option}' is not supported by rewind"))
}

/// Parses and validates a `find` command body.
pub fn parse_find(body: &Document) -> Result<FindOptions> {
    check_fields(body, "find", FIND_FIELDS)?;
    check_collation(body, "find")?;
    for flag in ["returnKey", "showRecordId"] {
        if get_bool(body, "find", flag)? == Some(true) {
            return Err(refuse(flag));
        }
    }
    for option in ["min", "max", "let"] {
        if body.contains_key(option) {
            return Err(refuse(option));
        }
    }
    let filter_doc = get_doc(body, "find", "filter")?
        .cloned()
        .unwrap_or_default();
    let filter = Filter::parse(&filter_doc)?;
    let fields = filter_fields(&filter_doc);
    let projection_doc = get_doc(body, "find", "projection")?
        .cloned()
        .unwrap_or_default();
    let projection = Projection::parse(&projection_doc)?;
    let identity = projection_doc.is_empty();
    let mut order = parse_order(get_doc(body, "find", "sort")?)?;
    // `hint: {$natural: -1}` without a sort reads in reverse storage order.
    if let (Order::Natural, Some(Bson::Document(hint))) = (&order, body.get("hint"))
        && hint.len() == 1
        && hint.get("$natural").and_then(as_i64).is_some_and(|d| d < 0)
    {
        order = Order::ReverseNatural;
    }
    let skip = get_non_negative(body, "find", "skip")?.unwrap_or(0);
    // Drivers turn a negative cursor limit into `limit: n, singleBatch: true`; the command
    // itself refuses negative values, as mongod does.
    let limit = match get_i64(body, "find", "limit")? {
        None | Some(0) => None,
        Some(n) => Some(u64::try_from(n).map_err(|_| CommandError::negative("limit", n))?),
    };
    let batch_size = get_non_negative(body, "find", "batchSize")?;
    let single_batch = get_bool(body, "find", "singleBatch")?.unwrap_or(false);
    let tailable = get_bool(body, "find", "tailable")?.unwrap_or(false);
    let await_data = get_bool(body, "find", "awaitData")?.unwrap_or(false);
    if await_data && !tailable {
        return Err(CommandError::failed_to_parse(
            "Cannot set 'awaitData' without also setting 'tailable'",
        ));
    }
    if tailable && single_batch {
        return Err(CommandError::failed_to_parse(
            "Cannot set 'tailable' with 'singleBatch'",
        ));
    }
    Ok(FindOptions {
        filter_doc,
        filter,
        projection,
        identity,
        fields,
        order,
        skip,
        limit,
        batch_size,
        single_batch,
        tailable,
        await_data,
        no_cursor_timeout: get_bool(body, "find", "noCursorTimeout")?.unwrap_or(false),
    })
}

/// Parses a sort, recognizing `{$natural: ±1}` (storage order) which sorts cannot express.
pub fn parse_order(sort: Option<&Document>) -> Result<Order> {
    let Some(sort) = sort.filter(|s| !s.is_empty()) else {
        return Ok(Order::Natural);
    };
    if let Some(direction) = sort.get("$natural") {
        if sort.len() != 1 {
            return Err(CommandError::bad_value(
                "$natural sort cannot be combined with other sort fields",
            ));
        }
        return match as_i64(direction) {
            Some(1) => Ok(Order::Natural),
            Some(-1) => Ok(Order::ReverseNatural),
            _ => Err(CommandError::bad_value(format!(
                "$natural sort must be 1 or -1, got {}",
                type_name(direction)
            ))),
        };
    }
    Ok(Order::Sort(SortSpec::parse(sort)?))
}

/// Builds the result source of a find over a regular collection.
fn build_source(view: &ReadView, ns: &str, opts: &FindOptions) -> Result<Source> {
    let access = plan(view.collection(ns), &opts.filter);
    match &opts.order {
        Order::Natural if access == Access::Scan => Ok(Source::Scan {
            ns: ns.to_owned(),
            matcher: Box::new(opts.matcher()),
            last_id: None,
            done: false,
        }),
        Order::Natural => {
            // Lookups in storage order, streamed through the matcher (filter, skip, limit,
            // projection), which passes stored documents through raw where it can.
            let mut matcher = opts.matcher();
            let mut out = VecDeque::new();
            // `{_id: {$in: ids}}` fetched by those ids: a candidate whose `_id` is among them
            // matches without evaluating the filter.
            let known = match &access {
                Access::Ids(ids) if is_id_in(&opts.filter_doc) => ids.clone(),
                _ => Vec::new(),
            };
            let decimals = known.iter().any(|id| matches!(id, Bson::Decimal128(_)));
            for_each_candidate(view, ns, access, |raw| {
                let accepted = if !known.is_empty() && fetched_among(raw, &known, decimals)? {
                    matcher.accept_raw_matching(raw)?
                } else {
                    matcher.accept_raw(raw)?
                };
                out.extend(accepted);
                Ok(!matcher.limit_reached())
            })?;
            Ok(Source::Buffered(out))
        }
        Order::ReverseNatural | Order::Sort(_) => {
            let mut docs = matching(view, ns, &opts.filter, 0)?;
            match &opts.order {
                Order::Sort(spec) => spec.sort(&mut docs),
                _ => docs.reverse(),
            }
            project_all(docs, opts)
        }
    }
}

/// Applies skip, limit and the projection to fully computed results.
pub fn project_all(docs: Vec<Document>, opts: &FindOptions) -> Result<Source> {
    let skip = usize::try_from(opts.skip).unwrap_or(usize::MAX);
    let limit = opts
        .limit
        .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    let positional = opts.projection.has_positional();
    let mut out = VecDeque::new();
    for doc in docs.into_iter().skip(skip).take(limit) {
        let index = if positional {
            opts.filter.positional_index(&doc)
        } else {
            None
        };
        out.push_back(to_raw(&opts.projection.apply_positional(&doc, index)?)?);
    }
    Ok(Source::Buffered(out))
}

/// Registers the cursor unless it is exhausted (or single-batch) and builds the first reply.
pub fn first_reply(
    cmds: &Commands,
    ns: String,
    source: Source,
    batch: Vec<RawDocumentBuf>,
    flags: CursorFlags,
) -> RawDocumentBuf {
    let id = if flags.single_batch || source.is_exhausted() {
        0
    } else {
        cmds.cursors.register(Cursor {
            ns: ns.clone(),
            source,
            tailable: flags.tailable,
            await_data: flags.await_data,
            no_timeout: flags.no_timeout,
        })
    };
    cursor_reply(id, &ns, &batch, true)
}

/// What a command asks of the cursor it opens (all off by default).
#[derive(Debug, Clone, Copy, Default)]
pub struct CursorFlags {
    /// Close the cursor after the first batch.
    pub single_batch: bool,
    /// Stay open at the end of the data.
    pub tailable: bool,
    /// With `tailable`, `getMore` waits for data.
    pub await_data: bool,
    /// `noCursorTimeout`: never dropped for being idle.
    pub no_timeout: bool,
}

/// `find`.
pub async fn find(cmds: &Commands, request: &CommandRequest) -> Result<RawDocumentBuf> {
    let ns = command_ns(&request.db, &request.body, "find")?;
    let opts = parse_find(&request.body)?;
    if ns == oplog::OPLOG_NS {
        return oplog::find(cmds, ns, opts).await;
    }
    if opts.tailable {
        return Err(CommandError::bad_value(format!(
            "error processing query: ns={ns}: tailable cursor requested on non capped collection"
        )));
    }
    let hint = Hint::parse(&request.body)?;
    let first = opts.first_batch();
    let (flags, ns2) = (opts.cursor_flags(), ns.clone());
    let (source, batch) = cmds
        .blocking(move |engine| {
            let mut source = {
                let view = engine.read_view()?;
                if let Some(hint) = &hint {
                    hint.check(view.collection(&ns2))?;
                }
                build_source(&view, &ns2, &opts)?
            };
            let batch = source.next_batch(engine, first)?;
            Ok((source, batch))
        })
        .await?;
    Ok(first_reply(cmds, ns, source, batch, flags))
}

/// `getMore`.
pub async fn get_more(cmds: &Commands, request: &CommandRequest) -> Result<RawDocumentBuf> {
    let body = &request.body;
    check_fields(
        body,
        "getMore",
        &[
            "collection",
            "batchSize",
            "term",
            "lastKnownCommittedOpTime",
        ],
    )?;
    let id = match body.get("getMore") {
        Some(Bson::Int64(id)) => *id,
        other => {
            return Err(CommandError::type_mismatch(format!(
                "Field 'getMore' must be of type long in: {}",
                other.map_or("missing", type_name)
            )));
        }
    };
    let coll = match body.get("collection") {
        Some(Bson::String(c)) => c.clone(),
        Some(other) => {
            return Err(CommandError::type_mismatch(format!(
                "BSON field 'getMore.collection' is the wrong type '{}', expected type 'string'",
                type_name(other)
            )));
        }
        None => return Err(CommandError::new_missing("getMore", "collection")),
    };
    let ns = format!("{}.{coll}", request.db);
    let batch_size = get_non_negative(body, "getMore", "batchSize")?.filter(|n| *n > 0);
    let max_wait = get_non_negative(body, "getMore", "maxTimeMS")?
        .filter(|n| *n > 0)
        .map_or(DEFAULT_AWAIT, Duration::from_millis);
    let mut cursor = match cmds.cursors.checkout(id) {
        Ok(c) => c,
        Err(CheckoutError::NotFound) => return Err(CommandError::cursor_not_found(id)),
        Err(CheckoutError::InUse) => {
            return Err(CommandError::illegal_operation(format!(
                "cursor id {id} is already in use"
            )));
        }
    };
    if cursor.ns != ns {
        let owner = cursor.ns.clone();
        cmds.cursors.checkin(id, cursor);
        return Err(CommandError::unauthorized(format!(
            "Requested getMore on namespace '{ns}', but cursor belongs to a different namespace {owner}"
        )));
    }
    // Its maxTimeMS is the awaitData wait, which other cursors do not have.
    if body.contains_key("maxTimeMS") && !cursor.await_data {
        cmds.cursors.checkin(id, cursor);
        return Err(CommandError::bad_value(
            "cannot set maxTimeMS on getMore command for a non-awaitData cursor",
        ));
    }
    // Subscribed before reading, so a commit between the read and the wait still wakes us.
    let mut commits = cmds.engine.subscribe();
    commits.borrow_and_update();
    let deadline = tokio::time::Instant::now() + max_wait;
    let outcome = loop {
        let step = cmds
            .blocking(move |engine| {
                let batch = cursor.source.next_batch(engine, batch_size)?;
                Ok((cursor, batch))
            })
            .await;
        let (c, batch) = match step {
            Ok(v) => v,
            Err(e) => break Err(e),
        };
        cursor = c;
        let waits = cursor.tailable && cursor.await_data && !cursor.source.is_exhausted();
        if !batch.is_empty() || !waits {
            break Ok((cursor, batch));
        }
        match tokio::time::timeout_at(deadline, commits.changed()).await {
            Ok(Ok(())) => continue,
            _ => break Ok((cursor, batch)),
        }
    };
    match outcome {
        Ok((cursor, batch)) => {
            let reply_id = if cursor.source.is_exhausted() {
                cmds.cursors.release(id);
                0
            } else {
                cmds.cursors.checkin(id, cursor);
                id
            };
            Ok(cursor_reply(reply_id, &ns, &batch, false))
        }
        Err(e) => {
            // mongod kills a cursor whose getMore failed.
            cmds.cursors.release(id);
            Err(e)
        }
    }
}

/// `killCursors`.
pub fn kill_cursors(cmds: &Commands, request: &CommandRequest) -> Result<Document> {
    let body = &request.body;
    check_fields(body, "killCursors", &["cursors"])?;
    command_ns(&request.db, body, "killCursors")?;
    let ids = match body.get("cursors") {
        Some(Bson::Array(ids)) => ids,
        Some(other) => {
            return Err(CommandError::type_mismatch(format!(
                "BSON field 'killCursors.cursors' is the wrong type '{}', expected type 'array'",
                type_name(other)
            )));
        }
        None => return Err(CommandError::new_missing("killCursors", "cursors")),
    };
    let (mut killed, mut not_found) = (Vec::new(), Vec::new());
    for id in ids {
        let Bson::Int64(n) = id else {
            return Err(CommandError::type_mismatch(format!(
                "BSON field 'killCursors.cursors' is the wrong type '{}', expected type 'long'",
                type_name(id)
            )));
        };
        match cmds.cursors.kill(*n) {
            Killed::Killed => killed.push(*n),
            Killed::NotFound => not_found.push(*n),
        }
    }
    Ok(doc! {
        "cursorsKilled": killed,
        "cursorsNotFound": not_found,
        "cursorsAlive": [],
        "cursorsUnknown": [],
        "ok": 1.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_and_negative_is_refused() {
        let opts = parse_find(&doc! {"find": "c", "limit": 3, "singleBatch": true});
        let opts = opts.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(opts.limit, Some(3));
        assert!(opts.single_batch);
        assert_eq!(opts.first_batch(), Some(101));
        let err = parse_find(&doc! {"find": "c", "limit": -3})
            .err()
            .map(|e| e.code());
        assert_eq!(err, Some(51024));
    }

    #[test]
    fn unsupported_options_are_refused() {
        let code = |b: Document| parse_find(&b).err().map(|e| e.code());
        assert_eq!(code(doc! {"find": "c", "returnKey": true}), Some(238));
        assert_eq!(code(doc! {"find": "c", "bogus": 1}), Some(40415));
        assert_eq!(
            code(doc! {"find": "c", "filter": {"a": {"$foo": 1}}}),
            Some(2)
        );
        assert_eq!(code(doc! {"find": "c", "awaitData": true}), Some(9));
        assert_eq!(code(doc! {"find": "c", "returnKey": false}), None);
    }

    #[test]
    fn natural_order_is_recognized() {
        assert!(matches!(
            parse_order(Some(&doc! {"$natural": -1})),
            Ok(Order::ReverseNatural)
        ));
        assert!(matches!(parse_order(Some(&doc! {})), Ok(Order::Natural)));
        assert!(matches!(
            parse_order(Some(&doc! {"a": 1})),
            Ok(Order::Sort(_))
        ));
        assert!(parse_order(Some(&doc! {"$natural": 1, "a": 1})).is_err());
    }
}
