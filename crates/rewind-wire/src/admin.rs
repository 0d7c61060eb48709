//! Admin and diagnostic commands that need no data, answered as a
//! MongoDB 8.0 replica-set primary does.

use bson::{Bson, Document, doc};

use crate::command::{CommandRequest, error_reply};
use crate::limits::{FEATURE_COMPATIBILITY_VERSION, MAX_BSON_OBJECT_SIZE, SERVER_VERSION};
use crate::state::Shared;

/// The member's state: always PRIMARY (1).
const PRIMARY_STATE: i32 = 1;

/// `mongod`'s answer when an admin-only command runs elsewhere.
pub(crate) fn admin_only(name: &str) -> Document {
    error_reply(
        13,
        "Unauthorized",
        format!("{name} may only be run against the admin database."),
    )
}

pub(crate) fn ping() -> Document {
    doc! { "ok": 1.0 }
}

pub(crate) fn build_info() -> Document {
    let version_array: Vec<i32> = SERVER_VERSION
        .split('.')
        .filter_map(|part| part.parse().ok())
        .chain([0])
        .collect();
    doc! {
        "version": SERVER_VERSION,
        "gitVersion": "0000000000000000000000000000000000000000",
        "modules": [],
        "allocator": "system",
        "javascriptEngine": "none",
        "sysInfo": "deprecated",
        "versionArray": version_array,
        "bits": 64,
        "debug": false,
        "maxBsonObjectSize": MAX_BSON_OBJECT_SIZE as i32,
        "storageEngines": ["rewind"],
        "ok": 1.0,
    }
}

/// The parameters `getParameter` knows, in `mongod`'s shapes.
fn parameters() -> Document {
    doc! {
        "featureCompatibilityVersion": { "version": FEATURE_COMPATIBILITY_VERSION },
        "authenticationMechanisms": ["SCRAM-SHA-1", "SCRAM-SHA-256"],
        "transactionLifetimeLimitSeconds": 60,
        "maxTransactionLockRequestTimeoutMillis": 5,
        "logLevel": 0,
        "quiet": false,
    }
}

/// `{getParameter: 1, <name>: 1, ...}` or `{getParameter: "*"}`.
pub(crate) fn get_parameter(body: &Document) -> Document {
    let all = parameters();
    let wants_all = matches!(body.get("getParameter"), Some(Bson::String(s)) if s == "*");
    let mut reply = if wants_all {
        all
    } else {
        let mut reply = Document::new();
        // Everything but the command itself and the generic arguments drivers
        // attach ($db, lsid, $clusterTime, ...) names a parameter.
        for name in body
            .keys()
            .skip(1)
            .filter(|k| !k.starts_with('$') && !GENERIC_ARGUMENTS.contains(&k.as_str()))
        {
            if let Some(value) = all.get(name) {
                reply.insert(name.clone(), value.clone());
            }
        }
        if reply.is_empty() {
            return error_reply(72, "InvalidOptions", "no option found to get");
        }
        reply
    };
    reply.insert("ok", 1.0);
    reply
}

/// Fields drivers may add to any command, which are not its arguments.
const GENERIC_ARGUMENTS: &[&str] = &[
    "lsid",
    "txnNumber",
    "autocommit",
    "apiVersion",
    "apiStrict",
    "apiDeprecationErrors",
    "comment",
    "maxTimeMS",
    "readConcern",
    "writeConcern",
];

pub(crate) fn host_info() -> Document {
    let cores = std::thread::available_parallelism()
        .map_or(1, |n| i32::try_from(n.get()).unwrap_or(i32::MAX));
    doc! {
        "system": {
            "currentTime": bson::DateTime::now(),
            "hostname": hostname(),
            "cpuAddrSize": 64,
            "numCores": cores,
            "cpuArch": std::env::consts::ARCH,
            "numaEnabled": false,
        },
        "os": { "type": os_type(), "name": std::env::consts::OS },
        "extra": {},
        "ok": 1.0,
    }
}

fn os_type() -> &'static str {
    match std::env::consts::OS {
        "linux" => "Linux",
        "macos" => "Darwin",
        "windows" => "Windows",
        _ => "Unknown",
    }
}

/// The machine's name, for `hostInfo` and `serverStatus.host`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

pub(crate) fn whats_my_uri(request: &CommandRequest) -> Document {
    doc! { "you": request.connection.peer.to_string(), "ok": 1.0 }
}

/// Clusters run without authentication: nobody is authenticated.
pub(crate) fn connection_status(body: &Document) -> Document {
    let mut auth_info = doc! { "authenticatedUsers": [], "authenticatedUserRoles": [] };
    if body
        .get("showPrivileges")
        .is_some_and(|v| matches!(v, Bson::Boolean(true)))
    {
        auth_info.insert("authenticatedUserPrivileges", Bson::Array(Vec::new()));
    }
    doc! { "authInfo": auth_info, "ok": 1.0 }
}

pub(crate) fn server_status(shared: &Shared) -> Document {
    let uptime = shared.started.elapsed();
    let current = i32::try_from(shared.current_connections()).unwrap_or(i32::MAX);
    let available = i32::try_from(shared.permits.available_permits()).unwrap_or(i32::MAX);
    doc! {
        "host": format!("{}:{}", hostname(), shared.local_addr.port()),
        "version": SERVER_VERSION,
        "process": "mongod",
        "pid": i64::from(std::process::id()),
        "uptime": uptime.as_secs_f64().floor(),
        "uptimeMillis": i64::try_from(uptime.as_millis()).unwrap_or(i64::MAX),
        "uptimeEstimate": i64::try_from(uptime.as_secs()).unwrap_or(i64::MAX),
        "localTime": bson::DateTime::now(),
        "connections": {
            "current": current,
            "available": available,
            "totalCreated": i64::try_from(shared.total_connections_created()).unwrap_or(i64::MAX),
            "active": current,
        },
        "repl": {
            "hosts": [shared.host.as_str()],
            "setName": shared.config.set_name.as_str(),
            "setVersion": shared.config.set_version,
            "isWritablePrimary": true,
            "secondary": false,
            "primary": shared.host.as_str(),
            "me": shared.host.as_str(),
        },
        "ok": 1.0,
    }
}

pub(crate) fn repl_set_get_status(shared: &Shared) -> Document {
    let last_write = shared.last_write();
    let op_time = doc! { "ts": last_write.op_time, "t": 1i64 };
    let uptime = i64::try_from(shared.started.elapsed().as_secs()).unwrap_or(i64::MAX);
    doc! {
        "set": shared.config.set_name.as_str(),
        "date": bson::DateTime::now(),
        "myState": PRIMARY_STATE,
        "term": 1i64,
        "heartbeatIntervalMillis": 2000i64,
        "majorityVoteCount": 1,
        "writeMajorityCount": 1,
        "votingMembersCount": 1,
        "writableVotingMembersCount": 1,
        "optimes": {
            "lastCommittedOpTime": op_time.clone(),
            "appliedOpTime": op_time.clone(),
            "durableOpTime": op_time.clone(),
            "lastAppliedWallTime": last_write.wall_time,
            "lastDurableWallTime": last_write.wall_time,
        },
        "members": [{
            "_id": 0,
            "name": shared.host.as_str(),
            "health": 1.0,
            "state": PRIMARY_STATE,
            "stateStr": "PRIMARY",
            "uptime": uptime,
            "optime": op_time,
            "optimeDate": last_write.wall_time,
            "electionDate": shared.start_time,
            "configVersion": shared.config.set_version,
            "configTerm": 1i64,
            "self": true,
        }],
        "ok": 1.0,
    }
}

/// `replSetGetConfig`: the one-member configuration of the replica set `hello` describes
/// (what mongosh's `rs.conf()` shows).
pub(crate) fn repl_set_get_config(shared: &Shared) -> Document {
    doc! {
        "config": {
            "_id": shared.config.set_name.as_str(),
            "version": shared.config.set_version,
            "term": 1i64,
            "members": [{
                "_id": 0,
                "host": shared.host.as_str(),
                "arbiterOnly": false,
                "buildIndexes": true,
                "hidden": false,
                "priority": 1.0,
                "tags": {},
                "secondaryDelaySecs": 0i64,
                "votes": 1,
            }],
            "protocolVersion": 1i64,
            "writeConcernMajorityJournalDefault": true,
            "settings": {
                "chainingAllowed": true,
                "heartbeatIntervalMillis": 2000,
                "heartbeatTimeoutSecs": 10,
                "electionTimeoutMillis": 10000,
                "catchUpTimeoutMillis": -1,
                "catchUpTakeoverDelayMillis": 30000,
                "getLastErrorModes": {},
                "getLastErrorDefaults": {"w": 1, "wtimeout": 0},
            },
        },
        "ok": 1.0,
    }
}

/// `{getLog: "*"}` lists the logs; any named log is empty.
pub(crate) fn get_log(body: &Document) -> Document {
    match body.get("getLog") {
        Some(Bson::String(name)) if name == "*" => {
            doc! { "names": ["global", "startupWarnings"], "ok": 1.0 }
        }
        Some(Bson::String(_)) => doc! { "totalLinesWritten": 0, "log": [], "ok": 1.0 },
        _ => error_reply(
            14,
            "TypeMismatch",
            "Argument to getLog must be of type String",
        ),
    }
}

pub(crate) fn get_cmd_line_opts() -> Document {
    doc! { "argv": ["mongod"], "parsed": {}, "ok": 1.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_parameter_single_star_and_unknown() {
        let fcv = get_parameter(
            &doc! { "getParameter": 1, "featureCompatibilityVersion": 1, "$db": "admin" },
        );
        assert_eq!(
            fcv,
            doc! { "featureCompatibilityVersion": { "version": "8.0" }, "ok": 1.0 }
        );
        let all = get_parameter(&doc! { "getParameter": "*" });
        assert!(all.contains_key("featureCompatibilityVersion") && all.contains_key("ok"));
        let unknown = get_parameter(&doc! { "getParameter": 1, "nope": 1, "$db": "admin" });
        assert_eq!(unknown.get_i32("code").unwrap(), 72);
    }

    #[test]
    fn build_info_agrees_with_wire_version() {
        let info = build_info();
        assert_eq!(info.get_str("version").unwrap(), "8.0.4");
        assert_eq!(
            info.get_array("versionArray").unwrap(),
            &vec![
                Bson::Int32(8),
                Bson::Int32(0),
                Bson::Int32(4),
                Bson::Int32(0)
            ]
        );
    }
}
