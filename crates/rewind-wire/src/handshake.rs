//! `hello` / `isMaster`, including the awaitable form used by drivers'
//! streaming monitors.

use std::time::Duration;

use bson::{Bson, Document, doc, oid::ObjectId};

use crate::command::{CommandRequest, error_reply};
use crate::limits::{
    LOGICAL_SESSION_TIMEOUT_MINUTES, MAX_BSON_OBJECT_SIZE, MAX_MESSAGE_SIZE, MAX_WIRE_VERSION,
    MAX_WRITE_BATCH_SIZE, MIN_WIRE_VERSION,
};
use crate::state::Shared;

/// `mongod` writes electionId as `7fffffff` followed by the term; this set
/// has one member and one term, forever.
const ELECTION_ID: [u8; 12] = [0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1];
const TERM: i64 = 1;
/// Upper bound on one awaitable hello wait, whatever the client asks.
const MAX_AWAIT: Duration = Duration::from_secs(600);

/// Reads an integral number the way `mongod` accepts it (int, long or a
/// whole double).
pub(crate) fn as_i64(value: &Bson) -> Option<i64> {
    match value {
        Bson::Int32(v) => Some(i64::from(*v)),
        Bson::Int64(v) => Some(*v),
        // Drivers may send numbers as doubles; truncation is what mongod does.
        Bson::Double(v) if v.is_finite() => Some(*v as i64),
        _ => None,
    }
}

/// Answers `hello`, `isMaster` or `ismaster`. The legacy names report
/// `ismaster` instead of `isWritablePrimary`, as the hello spec requires.
pub(crate) async fn hello(shared: &Shared, request: &CommandRequest) -> Document {
    if let Err(reply) = await_topology_change(shared, &request.body).await {
        return reply;
    }
    // The wait may have ended because the server became unavailable.
    if let Some(reason) = shared.unavailable_reason() {
        return crate::dispatch::unavailable_reply(reason);
    }
    let counter = *shared.topology_counter.borrow();
    let last_write = shared.last_write();
    let op_time = doc! { "ts": last_write.op_time, "t": TERM };
    let mut reply = doc! {
        "topologyVersion": { "processId": shared.process_id, "counter": counter },
        "hosts": [shared.host.as_str()],
        "setName": shared.config.set_name.as_str(),
        "setVersion": shared.config.set_version,
    };
    let primary_field = if request.name == "hello" {
        "isWritablePrimary"
    } else {
        "ismaster"
    };
    reply.insert(primary_field, true);
    reply.extend(doc! {
        "secondary": false,
        "primary": shared.host.as_str(),
        "me": shared.host.as_str(),
        "electionId": ObjectId::from_bytes(ELECTION_ID),
        "lastWrite": {
            "opTime": op_time.clone(),
            "lastWriteDate": last_write.wall_time,
            "majorityOpTime": op_time,
            "majorityWriteDate": last_write.wall_time,
        },
        "isImplicitDefaultMajorityWC": true,
        "maxBsonObjectSize": MAX_BSON_OBJECT_SIZE as i32,
        "maxMessageSizeBytes": MAX_MESSAGE_SIZE as i32,
        "maxWriteBatchSize": MAX_WRITE_BATCH_SIZE,
        "localTime": bson::DateTime::now(),
        "logicalSessionTimeoutMinutes": LOGICAL_SESSION_TIMEOUT_MINUTES,
        // An int while it fits, as mongod's appendNumber writes it.
        "connectionId": i32::try_from(request.connection.id)
            .map_or_else(|_| Bson::Int64(i64::try_from(request.connection.id).unwrap_or(i64::MAX)), Bson::Int32),
        "minWireVersion": MIN_WIRE_VERSION,
        "maxWireVersion": MAX_WIRE_VERSION,
        "readOnly": false,
    });
    if request
        .body
        .get("helloOk")
        .is_some_and(|v| matches!(v, Bson::Boolean(true)))
    {
        reply.insert("helloOk", true);
    }
    reply.insert("ok", 1.0);
    reply
}

/// Implements the awaitable hello: when the client's `topologyVersion` is
/// current, wait up to `maxAwaitTimeMS` for it to change before answering.
/// Without the wait a streaming monitor (pymongo's) would spin.
async fn await_topology_change(shared: &Shared, body: &Document) -> Result<(), Document> {
    let (Some(version), Some(max_await)) =
        (body.get("topologyVersion"), body.get("maxAwaitTimeMS"))
    else {
        return Ok(());
    };
    let max_await = match as_i64(max_await) {
        Some(ms) if ms >= 0 => Duration::from_millis(ms.unsigned_abs()).min(MAX_AWAIT),
        _ => {
            return Err(error_reply(
                2,
                "BadValue",
                "maxAwaitTimeMS must be a non-negative integer",
            ));
        }
    };
    let Bson::Document(version) = version else {
        return Err(error_reply(
            14,
            "TypeMismatch",
            "topologyVersion must be an object",
        ));
    };
    let mut changes = shared.topology_counter.subscribe();
    let current = *changes.borrow_and_update();
    let same_process = version.get("processId") == Some(&Bson::ObjectId(shared.process_id));
    let same_counter = version.get("counter").and_then(as_i64) == Some(current);
    if !(same_process && same_counter) {
        // The client's view is stale: answer at once with the news.
        return Ok(());
    }
    // Either outcome (a change or the timeout) means "answer now".
    let _ = tokio::time::timeout(max_await, changes.changed()).await;
    Ok(())
}
