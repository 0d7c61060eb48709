"""mongosh (npm), a client independent of pymongo, connects by the cluster's connection string
and does CRUD; each client reads what the other wrote."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import bson
import pymongo

MONGOSH = Path(
    os.environ.get(
        "REWIND_MONGOSH",
        Path(__file__).resolve().parents[1] / "mongosh" / "node_modules" / ".bin" / "mongosh",
    )
)

SCRIPT = r"""
const items = db.getSiblingDB("shell").items;
items.insertMany([{_id: 1, name: "anvil", qty: 3}, {_id: 2, name: "rope", qty: 10}, {_id: 3, name: "axe", qty: 0}]);
items.updateOne({_id: 2}, {$inc: {qty: -4}, $set: {tags: ["climbing"]}});
items.deleteOne({qty: 0});
items.createIndex({name: 1}, {unique: true});
let duplicate = null;
try { items.insertOne({name: "anvil"}); } catch (e) { duplicate = e.code; }
const fromPython = db.getSiblingDB("shell").fromPython.findOne({_id: "py"});
print(JSON.stringify({
  docs: items.find({}, {_id: 1, name: 1, qty: 1, tags: 1}).sort({_id: 1}).toArray(),
  count: items.countDocuments({qty: {$gt: 1}}),
  duplicate: duplicate,
  fromPython: fromPython,
  replicaSet: [rs.conf()._id, rs.conf().members.length, rs.status().members[0].stateStr],
  // The shell's oplog and statistics helpers (local.oplog.rs listed, capped, and counted;
  // $collStats and dbStats).
  replication: (({configuredLogSizeMB, usedMB, tFirst, tLast}) => ({configuredLogSizeMB, used: usedMB > 0, tFirst: typeof tFirst, tLast: typeof tLast}))(db.getReplicationInfo()),
  stats: (({count, nindexes, capped, size}) => ({count, nindexes, capped, size}))(items.stats()),
  dbStats: (({collections, objects, indexes}) => ({collections, objects, indexes}))(db.getSiblingDB("shell").stats()),
  explain: [items.find({name: "rope"}).explain().queryPlanner.winningPlan.inputStage.indexName,
            items.find({qty: 6}).explain("executionStats").executionStats.totalDocsExamined],
  // MongoDB 8.0's client-level bulk write.
  bulk: (({insertedCount, modifiedCount}) => [insertedCount, modifiedCount])(db.getMongo().bulkWrite([
    {name: "insertOne", namespace: "shell.bulk", document: {_id: 1}},
    {name: "updateOne", namespace: "shell.bulk", filter: {_id: 1}, update: {$set: {x: 1}}}])),
}));
"""


def test_mongosh_does_crud_and_agrees_with_pymongo(mongo_uri: str) -> None:
    assert MONGOSH.exists(), f"mongosh not installed at {MONGOSH} (scripts/test.sh installs it)"
    pymongo.MongoClient(mongo_uri).shell.fromPython.insert_one({"_id": "py", "written": "by pymongo"})
    completed = subprocess.run(
        [str(MONGOSH), mongo_uri, "--quiet", "--norc", "--eval", SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MONGOSH_NO_TELEMETRY": "1", "DO_NOT_TRACK": "1"},
    )
    assert completed.returncode == 0, completed.stderr + completed.stdout
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["docs"] == [
        {"_id": 1, "name": "anvil", "qty": 3},
        {"_id": 2, "name": "rope", "qty": 6, "tags": ["climbing"]},
    ]
    assert result["count"] == 2
    assert result["duplicate"] == 11000
    assert result["fromPython"] == {"_id": "py", "written": "by pymongo"}
    # The shell's replica-set helpers see one primary of the set the URI names.
    set_name = pymongo.MongoClient(mongo_uri).admin.command("hello")["setName"]
    assert result["replicaSet"] == [set_name, 1, "PRIMARY"]
    # 1 GiB is the default oplog retention (`--oplog-max-mb`); the times are dates' text.
    assert result["replication"] == {"configuredLogSizeMB": 1024, "used": True, "tFirst": "string", "tLast": "string"}
    sizes = [len(bson.encode(d)) for d in pymongo.MongoClient(mongo_uri).shell.items.find()]
    assert result["stats"] == {"count": 2, "nindexes": 2, "capped": False, "size": sum(sizes)}
    assert result["dbStats"] == {"collections": 2, "objects": 3, "indexes": 3}
    # The shell's explain: an index lookup, and a scan of both documents.
    assert result["explain"] == ["name_1", 2]
    assert result["bulk"] == [1, 1]
    assert list(pymongo.MongoClient(mongo_uri).shell.bulk.find()) == [{"_id": 1, "x": 1}]
    # And pymongo reads what mongosh wrote.
    items = pymongo.MongoClient(mongo_uri).shell.items
    assert list(items.find({}, sort=[("_id", 1)])) == [
        {"_id": 1, "name": "anvil", "qty": 3},
        {"_id": 2, "name": "rope", "qty": 6, "tags": ["climbing"]},
    ]
    assert "name_1" in items.index_information()
