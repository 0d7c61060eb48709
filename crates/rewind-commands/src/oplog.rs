//! `local.oplog.rs`: finds with tailable/awaitData cursors, and `applyOps` (the restore path).

use bson::{Bson, Document, RawDocumentBuf, Timestamp, doc};
use rewind_wire::CommandRequest;

use crate::Commands;
use crate::crud::find::{FindOptions, Order, first_reply, project_all};
use crate::crud::to_raw;
use crate::error::{CommandError, Result};
use crate::options::{check_fields, get_doc_array, type_name};
use crate::source::{Matcher, Source};
use rewind_query::projection::Projection;

/// The oplog's namespace.
pub const OPLOG_NS: &str = "local.oplog.rs";

/// The optime just before `ts`, so that a read "after" it includes `ts` itself.
fn before(ts: Timestamp) -> Option<Timestamp> {
    match (ts.time, ts.increment) {
        (0, 0) => None,
        (time, 0) => Some(Timestamp {
            time: time - 1,
            increment: u32::MAX,
        }),
        (time, increment) => Some(Timestamp {
            time,
            increment: increment - 1,
        }),
    }
}

/// Where a read may start: the lower bound a `{ts: {$gt|$gte: T}}` filter puts on entries
/// (the filter is still applied to every entry, so this only skips what cannot match).
pub fn start_after(filter: &Document) -> Option<Timestamp> {
    let Some(Bson::Document(ts)) = filter.get("ts") else {
        return None;
    };
    let gt = match ts.get("$gt") {
        Some(Bson::Timestamp(t)) => Some(*t),
        _ => None,
    };
    let gte = match ts.get("$gte") {
        Some(Bson::Timestamp(t)) => before(*t),
        _ => None,
    };
    match (gt, gte) {
        (Some(a), Some(b)) => Some(if (a.time, a.increment) >= (b.time, b.increment) {
            a
        } else {
            b
        }),
        (a, b) => a.or(b),
    }
}

/// A find on the oplog: streamed in optime order (tailable when asked), or materialized for
/// other orders.
pub async fn find(cmds: &Commands, ns: String, opts: FindOptions) -> Result<RawDocumentBuf> {
    let first = opts.first_batch();
    let flags = opts.cursor_flags();
    let tailable = opts.tailable;
    if tailable && !matches!(opts.order, Order::Natural) {
        return Err(CommandError::bad_value(
            "error processing query: tailable cursor requested with a sort other than $natural: 1",
        ));
    }
    let (source, batch) = cmds
        .blocking(move |engine| {
            let after = start_after(&opts.filter_doc);
            let mut source = if matches!(opts.order, Order::Natural) {
                Source::Oplog {
                    matcher: Box::new(opts.matcher()),
                    after,
                    tailable,
                    done: false,
                }
            } else {
                // Every matching entry, unprojected, then ordered, skipped, limited, projected.
                let mut all = Source::Oplog {
                    matcher: Box::new(Matcher {
                        filter: opts.filter.clone(),
                        projection: Projection::parse(&Document::new())?,
                        identity: true,
                        fields: None,
                        skip: 0,
                        remaining: None,
                    }),
                    after,
                    tailable: false,
                    done: false,
                };
                let mut docs = Vec::new();
                while !all.is_exhausted() {
                    for raw in all.next_batch(engine, None)? {
                        docs.push(Document::try_from(raw)?);
                    }
                }
                match &opts.order {
                    Order::Sort(spec) => spec.sort(&mut docs),
                    _ => docs.reverse(),
                }
                project_all(docs, &opts)?
            };
            let batch = source.next_batch(engine, first)?;
            Ok((source, batch))
        })
        .await?;
    Ok(first_reply(cmds, ns, source, batch, flags))
}

/// `applyOps`: applies oplog entries in one engine transaction; `{applied, results, ok}`.
pub async fn apply_ops(cmds: &Commands, request: &CommandRequest) -> Result<Document> {
    let body = &request.body;
    check_fields(
        body,
        "applyOps",
        &[
            "allowAtomic",
            "alwaysUpsert",
            "oplogApplicationMode",
            "preCondition",
            "bypassDocumentValidation",
        ],
    )?;
    if body.contains_key("preCondition") {
        return Err(CommandError::not_implemented(
            "applyOps option 'preCondition' is not supported by rewind",
        ));
    }
    let entries = match body.get("applyOps") {
        Some(Bson::Array(_)) => get_doc_array(body, "applyOps", "applyOps")?,
        Some(other) => {
            return Err(CommandError::type_mismatch(format!(
                "BSON field 'applyOps.applyOps' is the wrong type '{}', expected type 'array'",
                type_name(other)
            )));
        }
        None => return Err(CommandError::new_missing("applyOps", "applyOps")),
    };
    let raws = entries.iter().map(to_raw).collect::<Result<Vec<_>>>()?;
    let applied = cmds
        .blocking(move |engine| {
            engine
                .write(|txn| {
                    for raw in &raws {
                        txn.apply_oplog_entry(raw)?;
                    }
                    Ok(raws.len())
                })
                .map_err(CommandError::from)
        })
        .await?;
    let results = vec![Bson::Boolean(true); applied];
    Ok(doc! {"applied": applied as i32, "results": results, "ok": 1.0})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ts_bounds_give_the_start() {
        let t = Timestamp {
            time: 10,
            increment: 3,
        };
        assert_eq!(start_after(&doc! {"ts": {"$gt": t}}), Some(t));
        assert_eq!(
            start_after(&doc! {"ts": {"$gte": t}}),
            Some(Timestamp {
                time: 10,
                increment: 2
            })
        );
        assert_eq!(
            start_after(&doc! {"ts": {"$gte": Timestamp { time: 10, increment: 0 }}}),
            Some(Timestamp {
                time: 9,
                increment: u32::MAX
            })
        );
        assert_eq!(start_after(&doc! {"op": "i"}), None);
        assert_eq!(start_after(&doc! {"ts": {"$lt": t}}), None);
    }
}
