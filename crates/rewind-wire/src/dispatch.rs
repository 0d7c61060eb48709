//! From a framed message to the bytes of its reply: command extraction,
//! the built-in command table, the data handler, error replies.

use bson::{Bson, Document, doc};

use crate::admin;
use crate::command::{CommandRequest, ConnectionContext, Reply, command_not_found, error_reply};
use crate::error::WireError;
use crate::handshake;
use crate::header::{MsgHeader, OP_QUERY};
use crate::limits::{HEADER_LEN, MAX_COMMAND_DOCUMENT_SIZE};
use crate::message::{Message, parse_message};
use crate::op_msg::{CHECKSUM_PRESENT, MORE_TO_COME, OpMsg, check_sequence_names, encode_sections};
use crate::op_query::{OpQuery, OpReply};
use crate::state::Shared;

/// What the connection does after a message.
pub(crate) enum Outcome {
    /// Send these bytes.
    Reply(Vec<u8>),
    /// Send nothing (`moreToCome`).
    NoReply,
    /// Close the connection: the client reads no reply, so an error can only
    /// be signalled this way.
    Close,
}

/// The error every command gets while the server is unavailable. Drivers
/// treat ShutdownInProgress as "node is shutting down": they mark the server
/// Unknown and wait in server selection, which is what a restore needs.
pub(crate) fn unavailable_reply(reason: String) -> Document {
    error_reply(91, "ShutdownInProgress", reason)
}

/// Answers one complete message (header included).
pub(crate) async fn respond(
    shared: &Shared,
    connection: &ConnectionContext,
    header: &MsgHeader,
    bytes: &[u8],
) -> Outcome {
    let reply_id = shared.next_request_id();
    let message = match parse_message(bytes) {
        Ok((_, message)) => message,
        Err(error) => {
            tracing::debug!(connection = connection.id, %error, "refusing malformed message");
            let (code, name) = error.code();
            let reply = error_reply(code, name, error.to_string());
            return if header.op_code == OP_QUERY {
                encode_query_reply(reply.into(), reply_id, header.request_id)
            } else if raw_more_to_come(bytes) {
                Outcome::Close
            } else {
                encode_msg_reply(reply.into(), false, reply_id, header.request_id)
            };
        }
    };
    match message {
        Message::Msg(msg) => {
            let more_to_come = msg.more_to_come();
            let checksum = msg.checksum_present();
            let reply = match msg_request(msg, connection) {
                Ok(request) => run_command(shared, &request).await,
                Err(reply) => reply.into(),
            };
            if more_to_come {
                return Outcome::NoReply;
            }
            encode_msg_reply(reply, checksum, reply_id, header.request_id)
        }
        Message::Query(query) => {
            let reply = match query_request(query, connection) {
                Ok(request) => run_command(shared, &request).await,
                Err(reply) => reply.into(),
            };
            encode_query_reply(reply, reply_id, header.request_id)
        }
        Message::Reply(_) => {
            let reply = error_reply(17, "ProtocolError", "OP_REPLY is not a request");
            encode_msg_reply(reply.into(), false, reply_id, header.request_id)
        }
    }
}

/// Reads the moreToCome bit of an OP_MSG that failed to parse.
fn raw_more_to_come(bytes: &[u8]) -> bool {
    bytes
        .get(HEADER_LEN..HEADER_LEN + 4)
        .is_some_and(|flags| u32::from(flags[0]) & MORE_TO_COME != 0)
}

fn msg_request(msg: OpMsg, connection: &ConnectionContext) -> Result<CommandRequest, Document> {
    let more_to_come = msg.more_to_come();
    let OpMsg {
        body, sequences, ..
    } = msg;
    check_sequence_names(&body, &sequences)
        .map_err(|e| error_reply(e.code().0, e.code().1, e.to_string()))?;
    // Sequences count as fields after the body's (as if merged), also for the name.
    let name = match sequences.first() {
        Some(first) if body.is_empty() => first.identifier.clone(),
        _ => first_key(&body)?,
    };
    let db = match body.get("$db") {
        Some(Bson::String(db)) if !db.is_empty() => db.clone(),
        Some(_) => {
            return Err(error_reply(
                73,
                "InvalidNamespace",
                "$db must be a non-empty string",
            ));
        }
        None => {
            return Err(error_reply(
                40571,
                "Location40571",
                "OP_MSG requests require a $db argument",
            ));
        }
    };
    Ok(CommandRequest {
        db,
        name,
        body,
        sequences,
        connection: connection.clone(),
        more_to_come,
    })
}

/// Only the handshake may still use OP_QUERY, as on `mongod` 5.1 and later.
fn query_request(
    query: OpQuery,
    connection: &ConnectionContext,
) -> Result<CommandRequest, Document> {
    let (db, collection) = query
        .full_collection_name
        .split_once('.')
        .unwrap_or((&query.full_collection_name, ""));
    if collection != "$cmd" || db.is_empty() {
        return Err(unsupported_op_query("find"));
    }
    let db = db.to_owned();
    // Drivers wrap the command as {$query: cmd, $readPreference: ...} when
    // they pass a read preference.
    let body = match query
        .query
        .get("$query")
        .or_else(|| query.query.get("query"))
    {
        Some(Bson::Document(inner)) => inner.clone(),
        _ => query.query,
    };
    let name = first_key(&body)?;
    if !matches!(name.as_str(), "hello" | "isMaster" | "ismaster") {
        return Err(unsupported_op_query(&name));
    }
    Ok(CommandRequest {
        db,
        name,
        body,
        sequences: Vec::new(),
        connection: connection.clone(),
        more_to_come: false,
    })
}

fn unsupported_op_query(name: &str) -> Document {
    error_reply(
        352,
        "UnsupportedOpQueryCommand",
        format!(
            "Unsupported OP_QUERY command: {name}. The client driver may require an upgrade. \
             For more details see https://dochub.mongodb.org/core/legacy-opcode-removal"
        ),
    )
}

fn first_key(body: &Document) -> Result<String, Document> {
    body.keys()
        .next()
        .cloned()
        .ok_or_else(|| error_reply(9, "FailedToParse", "empty command document"))
}

/// Runs a command: built-ins first, then the data handler.
pub(crate) async fn run_command(shared: &Shared, request: &CommandRequest) -> Reply {
    if let Some(reason) = shared.unavailable_reason() {
        return unavailable_reply(reason).into();
    }
    let name = request.name.as_str();
    // A generic argument every command validates before it runs.
    if let Err(message) = request.max_time() {
        return error_reply(2, "BadValue", message).into();
    }
    if let Some(reply) = builtin(shared, request).await {
        return reply.into();
    }
    let handled = match &shared.handler {
        Some(handler) => handler.handle_raw(request).await,
        None => None,
    };
    handled.unwrap_or_else(|| {
        // The data layer may track sessions; without one, ending is a no-op.
        if name == "endSessions" {
            doc! { "ok": 1.0 }.into()
        } else {
            command_not_found(name).into()
        }
    })
}

/// Answers the handshake and admin commands, which see document sequences merged.
async fn builtin(shared: &Shared, request: &CommandRequest) -> Option<Document> {
    let is_admin = request.db == "admin";
    let known = matches!(
        request.name.as_str(),
        "hello"
            | "isMaster"
            | "ismaster"
            | "ping"
            | "buildInfo"
            | "buildinfo"
            | "hostInfo"
            | "whatsmyuri"
            | "connectionStatus"
            | "serverStatus"
            | "getParameter"
            | "replSetGetStatus"
            | "replSetGetConfig"
            | "getLog"
            | "getCmdLineOpts"
    );
    if !known {
        return None;
    }
    let request = match request.merged() {
        Ok(merged) => merged,
        Err(e) => return Some(error_reply(e.code().0, e.code().1, e.to_string())),
    };
    let body = &request.body;
    Some(match request.name.as_str() {
        "hello" | "isMaster" | "ismaster" => handshake::hello(shared, &request).await,
        "ping" => admin::ping(),
        "buildInfo" | "buildinfo" => admin::build_info(),
        "hostInfo" => admin::host_info(),
        "whatsmyuri" => admin::whats_my_uri(&request),
        "connectionStatus" => admin::connection_status(body),
        "serverStatus" => admin::server_status(shared),
        "getParameter" if is_admin => admin::get_parameter(body),
        "replSetGetStatus" if is_admin => admin::repl_set_get_status(shared),
        "replSetGetConfig" if is_admin => admin::repl_set_get_config(shared),
        "getLog" if is_admin => admin::get_log(body),
        "getCmdLineOpts" if is_admin => admin::get_cmd_line_opts(),
        name => admin::admin_only(name),
    })
}

/// Encodes an OP_MSG reply, replacing a reply too large to send by
/// `mongod`'s error for it.
fn encode_msg_reply(reply: Reply, checksum: bool, request_id: i32, response_to: i32) -> Outcome {
    let flags = if checksum { CHECKSUM_PRESENT } else { 0 };
    encode_with_fallback(reply, |reply| {
        let body = match reply {
            Reply::Raw(raw) => raw.into_bytes(),
            Reply::Document(document) => document
                .to_vec()
                .map_err(|e| WireError::Encode(e.to_string()))?,
        };
        encode_sections(flags, &body, &[], request_id, response_to)
    })
}

fn encode_query_reply(reply: Reply, request_id: i32, response_to: i32) -> Outcome {
    encode_with_fallback(reply, |reply| {
        OpReply::command_reply(reply.into_document()?).encode(request_id, response_to)
    })
}

/// Room for the header and section framing around a reply's one document.
const REPLY_OVERHEAD: usize = 64;

fn encode_with_fallback(
    reply: Reply,
    encode: impl Fn(Reply) -> Result<Vec<u8>, WireError>,
) -> Outcome {
    let error = match encode(reply) {
        Ok(bytes) if bytes.len() <= MAX_COMMAND_DOCUMENT_SIZE + REPLY_OVERHEAD => {
            return Outcome::Reply(bytes);
        }
        Ok(bytes) => WireError::DocumentTooLarge {
            size: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
            max: MAX_COMMAND_DOCUMENT_SIZE,
        },
        Err(error) => error,
    };
    tracing::warn!(%error, "reply could not be encoded");
    let (code, name) = error.code();
    match encode(error_reply(code, name, format!("reply could not be sent: {error}")).into()) {
        Ok(bytes) => Outcome::Reply(bytes),
        Err(_) => Outcome::Close,
    }
}
