"""Driver tests of a live cluster (pymongo): aggregation, count/distinct, findAndModify,
indexes, catalog commands, errors, oplog tailing and applyOps."""

from __future__ import annotations

import datetime
import itertools
import uuid
import time

import bson
import pymongo
import pytest
from bson import Int64, ObjectId, Timestamp
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import ReturnDocument
from pymongo.read_concern import ReadConcern
from pymongo.cursor import CursorType

_names = itertools.count()
# Unique per run, so reruns against one long-lived server never see old oplog entries.
_RUN = uuid.uuid4().hex[:8]


@pytest.fixture
def client(mongo_uri):
    c = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=5000)
    yield c
    c.close()


@pytest.fixture
def db(client):
    name = f"adm{next(_names)}_{_RUN}"
    client.drop_database(name)
    yield client[name]
    client.drop_database(name)


@pytest.fixture
def sales(db):
    db.sales.insert_many(
        [
            {"_id": 1, "item": "a", "qty": 2, "price": 10, "tags": ["x", "y"]},
            {"_id": 2, "item": "b", "qty": 1, "price": 20, "tags": ["y"]},
            {"_id": 3, "item": "a", "qty": 5, "price": 10, "tags": []},
            {"_id": 4, "item": "c", "qty": 3, "price": 5, "tags": ["x", "z"]},
            {"_id": 5, "item": "b", "qty": 4, "price": 20},
        ]
    )
    return db.sales


def test_aggregate_group_accumulators(sales):
    got = list(sales.aggregate([
        {"$match": {"qty": {"$gte": 1}}},
        {"$sort": {"_id": 1}},
        {"$group": {
            "_id": "$item",
            "total": {"$sum": "$qty"},
            "n": {"$sum": 1},
            "avg": {"$avg": "$qty"},
            "min": {"$min": "$qty"},
            "max": {"$max": "$qty"},
            "first": {"$first": "$_id"},
            "last": {"$last": "$_id"},
            "ids": {"$push": "$_id"},
        }},
        {"$sort": {"_id": 1}},
    ]))
    assert got == [
        {"_id": "a", "total": 7, "n": 2, "avg": 3.5, "min": 2, "max": 5, "first": 1, "last": 3, "ids": [1, 3]},
        {"_id": "b", "total": 5, "n": 2, "avg": 2.5, "min": 1, "max": 4, "first": 2, "last": 5, "ids": [2, 5]},
        {"_id": "c", "total": 3, "n": 1, "avg": 3.0, "min": 3, "max": 3, "first": 4, "last": 4, "ids": [4]},
    ]


def test_aggregate_project_sort_skip_limit_count_unwind(sales):
    got = list(sales.aggregate([
        {"$project": {"item": 1, "value": {"$multiply": ["$qty", "$price"]}, "_id": 0}},
        {"$sort": {"value": -1}},
        {"$skip": 1},
        {"$limit": 2},
    ]))
    assert got == [{"item": "a", "value": 50}, {"item": "a", "value": 20}]
    assert list(sales.aggregate([{"$match": {"item": "b"}}, {"$count": "n"}])) == [{"n": 2}]
    tags = list(sales.aggregate([{"$unwind": "$tags"}, {"$group": {"_id": "$tags", "n": {"$sum": 1}}}, {"$sort": {"_id": 1}}]))
    assert tags == [{"_id": "x", "n": 2}, {"_id": "y", "n": 2}, {"_id": "z", "n": 1}]


def test_aggregate_cursor_batches(db):
    db.many.insert_many([{"_id": i} for i in range(450)])
    got = [d["_id"] for d in db.many.aggregate([{"$sort": {"_id": -1}}], batchSize=50)]
    assert got == list(range(449, -1, -1))


def test_aggregate_refuses_unsupported_and_unknown_stages(sales):
    with pytest.raises(pymongo.errors.OperationFailure) as err:
        list(sales.aggregate([{"$frobnicate": {}}]))
    assert err.value.code == 40324
    with pytest.raises(pymongo.errors.OperationFailure) as err:
        list(sales.aggregate([{"$bucketAuto": {"groupBy": "$qty", "buckets": 2}}]))
    assert err.value.code == 238
    with pytest.raises(pymongo.errors.OperationFailure) as err:
        list(sales.aggregate([{"$lookup": {"from": "x", "pipeline": [], "as": "c"}}]))
    assert err.value.code == 238 and "pipeline" in str(err.value)


def test_lookup_joins_another_collection_by_equality(sales, db):
    db.items.insert_many(
        [
            {"_id": "a", "name": "anvil", "tags": ["x"]},
            {"_id": "b", "name": "rope"},
            {"_id": "z", "name": "orphan", "tags": ["y", "z"]},
        ]
    )
    db.items.create_index("tags")
    joined = list(
        sales.aggregate(
            [
                {"$lookup": {"from": "items", "localField": "item", "foreignField": "_id", "as": "detail"}},
                {"$project": {"names": "$detail.name"}},
                {"$sort": {"_id": 1}},
            ]
        )
    )
    assert joined == [
        {"_id": 1, "names": ["anvil"]},
        {"_id": 2, "names": ["rope"]},
        {"_id": 3, "names": ["anvil"]},
        {"_id": 4, "names": []},
        {"_id": 5, "names": ["rope"]},
    ]
    # An array on either side matches by any element (through an index here); a missing
    # local field matches foreign documents without the field; `as` may be dotted.
    by_tags = list(
        sales.aggregate(
            [
                {"$match": {"_id": {"$in": [1, 2, 4]}}},
                {"$lookup": {"from": "items", "localField": "tags", "foreignField": "tags", "as": "out.items"}},
                {"$project": {"ids": "$out.items._id"}},
                {"$sort": {"_id": 1}},
            ]
        )
    )
    assert by_tags == [{"_id": 1, "ids": ["a", "z"]}, {"_id": 2, "ids": ["z"]}, {"_id": 4, "ids": ["a", "z"]}]
    missing = list(db.items.aggregate([{"$match": {"_id": "b"}}, {"$lookup": {"from": "items", "localField": "tags", "foreignField": "tags", "as": "same"}}]))
    assert [d["_id"] for d in missing[0]["same"]] == ["b"]
    # An empty array joins as null does (mongod's lookup_equijoin_semantics); a document
    # holding several of the values (multikey) joins once.
    empty = list(sales.aggregate([{"$match": {"_id": 3}}, {"$lookup": {"from": "items", "localField": "tags", "foreignField": "tags", "as": "j"}}]))
    assert [d["_id"] for d in empty[0]["j"]] == ["b"]
    db.items.insert_one({"_id": "xy", "tags": ["x", "y"]})
    both = list(sales.aggregate([{"$match": {"_id": 1}}, {"$lookup": {"from": "items", "localField": "tags", "foreignField": "tags", "as": "j"}}]))
    assert sorted(d["_id"] for d in both[0]["j"]) == ["a", "xy", "z"]
    nothing = list(sales.aggregate([{"$limit": 1}, {"$lookup": {"from": "nowhere", "localField": "item", "foreignField": "k", "as": "j"}}]))
    assert nothing[0]["j"] == []


def test_facet_sort_by_count_and_union_with(sales, db):
    # One query for a page and the total, as applications page results.
    [page] = list(
        sales.aggregate(
            [
                {"$sort": {"_id": 1}},
                {"$facet": {"total": [{"$count": "n"}], "page": [{"$skip": 1}, {"$limit": 2}, {"$project": {"_id": 1}}], "byItem": [{"$sortByCount": "$item"}, {"$sort": {"count": -1, "_id": 1}}]}},
            ]
        )
    )
    assert page == {
        "total": [{"n": 5}],
        "page": [{"_id": 2}, {"_id": 3}],
        "byItem": [{"_id": "a", "count": 2}, {"_id": "b", "count": 2}, {"_id": "c", "count": 1}],
    }
    db.archive.insert_many([{"_id": 10, "item": "a"}, {"_id": 11, "item": "z"}])
    union = list(sales.aggregate([{"$project": {"item": 1}}, {"$unionWith": {"coll": "archive", "pipeline": [{"$match": {"item": "a"}}]}}, {"$match": {"item": "a"}}]))
    assert [d["_id"] for d in union] == [1, 3, 10]
    assert len(list(sales.aggregate([{"$unionWith": "archive"}]))) == 7
    with pytest.raises(pymongo.errors.OperationFailure) as err:
        list(sales.aggregate([{"$facet": {"x": [{"$facet": {"y": [{"$count": "n"}]}}]}}]))
    assert err.value.code == 40600


def test_group_by_day_with_date_expressions(db):
    base = datetime.datetime(2024, 2, 28, 23, 30, tzinfo=datetime.timezone.utc)
    db.events.insert_many([{"at": base + datetime.timedelta(hours=h), "v": h} for h in range(4)])
    per_day = list(
        db.events.aggregate(
            [
                {"$group": {"_id": {"$dateToString": {"format": "%Y-%m-%d", "date": "$at"}}, "n": {"$sum": 1}, "dow": {"$first": {"$isoDayOfWeek": "$at"}}}},
                {"$sort": {"_id": 1}},
                {"$project": {"n": 1, "dow": 1, "size": {"$switch": {"branches": [{"case": {"$gt": ["$n", 2]}, "then": "busy"}], "default": "quiet"}}}},
            ]
        )
    )
    # 2024 is a leap year: the 29th of February follows the 28th (a Wednesday).
    assert per_day == [
        {"_id": "2024-02-28", "n": 1, "dow": 3, "size": "quiet"},
        {"_id": "2024-02-29", "n": 3, "dow": 4, "size": "busy"},
    ]
    with pytest.raises(pymongo.errors.OperationFailure) as err:
        list(db.events.aggregate([{"$project": {"h": {"$hour": {"date": "$at", "timezone": "America/New_York"}}}}]))
    assert err.value.code == 238


def test_count_and_distinct(sales):
    assert sales.count_documents({}) == 5
    assert sales.count_documents({"item": "a"}) == 2
    assert sales.count_documents({}, skip=1, limit=2) == 2
    assert sales.estimated_document_count() == 5
    assert sales.database.command("count", "sales", query={"qty": {"$gt": 1}}, skip=1)["n"] == 3
    assert sales.distinct("item") == ["a", "b", "c"]
    assert sales.distinct("tags") == ["x", "y", "z"]
    assert sales.distinct("item", {"price": 20}) == ["b"]
    assert sales.database.empty.count_documents({}) == 0


def test_find_one_and_update_delete_replace(sales):
    before = sales.find_one_and_update({"item": "a"}, {"$inc": {"qty": 10}}, sort=[("qty", -1)])
    assert before["_id"] == 3 and before["qty"] == 5
    after = sales.find_one_and_update({"_id": 1}, {"$set": {"qty": 0}}, return_document=ReturnDocument.AFTER,
                                      projection={"qty": 1, "_id": 0})
    assert after == {"qty": 0}
    up = sales.find_one_and_update({"_id": 9}, {"$set": {"item": "z"}}, upsert=True, return_document=ReturnDocument.AFTER)
    assert up == {"_id": 9, "item": "z"}
    assert sales.find_one_and_update({"_id": 99}, {"$set": {"x": 1}}) is None
    replaced = sales.find_one_and_replace({"_id": 2}, {"item": "B"}, return_document=ReturnDocument.AFTER)
    assert replaced == {"_id": 2, "item": "B"}
    deleted = sales.find_one_and_delete({"item": "c"})
    assert deleted["_id"] == 4 and sales.count_documents({"_id": 4}) == 0
    assert sales.find_one_and_delete({"item": "nope"}) is None


def test_indexes_create_list_drop_and_unique_violation(db):
    coll = db.idx
    coll.insert_many([{"_id": 1, "email": "a@x", "n": 1}, {"_id": 2, "email": "b@x", "n": 2}])
    assert coll.create_index([("email", 1)], unique=True) == "email_1"
    assert coll.create_index([("n", -1), ("email", 1)], name="compound") == "compound"
    names = sorted(ix["name"] for ix in coll.list_indexes())
    assert names == ["_id_", "compound", "email_1"]
    info = coll.index_information()
    assert info["email_1"]["unique"] is True and info["compound"]["key"] == [("n", -1), ("email", 1)]
    with pytest.raises(pymongo.errors.DuplicateKeyError) as err:
        coll.insert_one({"email": "a@x"})
    assert err.value.code == 11000
    assert err.value.details["keyPattern"] == {"email": 1}
    assert err.value.details["keyValue"] == {"email": "a@x"}
    with pytest.raises(pymongo.errors.DuplicateKeyError):
        coll.update_one({"_id": 2}, {"$set": {"email": "a@x"}})
    coll.drop_index("compound")
    coll.drop_index([("email", 1)])
    assert [ix["name"] for ix in coll.list_indexes()] == ["_id_"]
    coll.create_index("n")
    coll.drop_indexes()
    assert [ix["name"] for ix in coll.list_indexes()] == ["_id_"]
    with pytest.raises(pymongo.errors.OperationFailure) as err:
        coll.drop_index("nope")
    assert err.value.code == 27
    with pytest.raises(pymongo.errors.OperationFailure) as err:
        coll.create_index("t", expireAfterSeconds=5)
    assert err.value.code == 238


def test_equivalent_index_specs_are_one_index(db):
    # As mongod compares them: `background` is ignored, `unique: 1` is `unique: true`,
    # `unique: false` is no option, and key directions compare as numbers.
    db.eq.create_index("pid", background=True)
    assert db.eq.create_index("pid") == "pid_1"
    assert db.command("createIndexes", "eq", indexes=[{"key": {"pid": Int64(1)}, "name": "pid_1", "unique": False}])["numIndexesAfter"] == 2
    db.eq.create_index("u", unique=True)
    assert db.command("createIndexes", "eq", indexes=[{"key": {"u": 1.0}, "name": "u_1", "unique": 1}])["numIndexesAfter"] == 3
    # The same index under another name is refused (it used to make a second index on `pid`);
    # one that differs in unique or sparse is another index, as in mongod 8.
    for options in ({"name": "other"}, {"name": "other", "background": True}):
        with pytest.raises(pymongo.errors.OperationFailure) as err:
            db.eq.create_index("pid", **options)
        assert err.value.code == 85, options
    assert db.eq.create_index("pid", name="pid_unique", unique=True) == "pid_unique"
    with pytest.raises(pymongo.errors.OperationFailure) as err:
        db.eq.create_index("pid", name="pid_1", sparse=True)
    assert err.value.code == 86
    assert sorted(ix["name"] for ix in db.eq.list_indexes()) == ["_id_", "pid_1", "pid_unique", "u_1"]


def test_compound_index_over_one_array_of_subdocuments(db):
    coll = db.stock
    coll.create_index([("items.size", 1), ("items.qty", 1)])
    coll.insert_many([
        {"_id": 1, "items": [{"size": "S", "qty": 1}, {"size": "M", "qty": 5}]},
        {"_id": 2, "items": [{"size": "S"}, {"qty": 1}]},
    ])
    assert coll.count_documents({}) == 2
    assert sorted(ids_of(coll.find({"items.size": "S"}))) == [1, 2]
    # Two different arrays are still parallel arrays.
    coll.create_index([("a", 1), ("b", 1)])
    with pytest.raises(pymongo.errors.WriteError) as err:
        coll.insert_one({"_id": 3, "a": [1], "b": [2]})
    assert err.value.code == 171
    # Unique per element: the pairs, not every combination, are the keys.
    pairs = db.pairs
    pairs.create_index([("p.x", 1), ("p.y", 1)], unique=True)
    pairs.insert_one({"p": [{"x": 1, "y": 2}, {"x": 3, "y": 4}]})
    pairs.insert_one({"p": [{"x": 1, "y": 4}]})
    with pytest.raises(pymongo.errors.DuplicateKeyError):
        pairs.insert_one({"p": [{"x": 3, "y": 4}]})
    # A sparse index adds no null key for an element without the field.
    sparse = db.sparse
    sparse.create_index("a.b", unique=True, sparse=True)
    sparse.insert_many([{"a": [{"b": 1}, {"c": 1}]}, {"a": [{"b": 2}, {"c": 2}]}])
    assert sparse.count_documents({}) == 2


def test_index_options_are_checked(db):
    db.create_collection("c")
    for options, code in (({"unique": "yes"}, 14), ({"sparse": "yes"}, 14), ({"name": "*"}, 2)):
        with pytest.raises(pymongo.errors.OperationFailure) as err:
            db.command("createIndexes", "c", indexes=[{"key": {"a": 1}, "name": "a_1", **options}])
        assert err.value.code == code, options
    with pytest.raises(pymongo.errors.OperationFailure) as err:
        db.c.create_index([("t.$**", 1)])
    assert err.value.code == 67
    # The _id index takes no option: `unique` used to create a second index on _id.
    with pytest.raises(pymongo.errors.OperationFailure) as err:
        db.c.create_index("_id", unique=True)
    assert err.value.code == 197
    assert [ix["name"] for ix in db.c.list_indexes()] == ["_id_"]


def test_the_local_database_is_not_replicated(client, db):
    with pytest.raises(pymongo.errors.OperationFailure) as err:
        client.local.command("create", "oplog.rs")
    assert err.value.code == 48
    db.seen.insert_one({"_id": 0})
    start = client.local["oplog.rs"].find_one(sort=[("$natural", -1)])["ts"]
    client.local.scratch.insert_one({"_id": 1})
    client.local.scratch.drop()
    db.seen.insert_one({"_id": 1})
    after = list(client.local["oplog.rs"].find({"ts": {"$gt": start}}))
    assert [(e["op"], e["ns"]) for e in after] == [("i", f"{db.name}.seen")]


def ids_of(cursor):
    return [d["_id"] for d in cursor]


def test_catalog_commands(client, db):
    db.create_collection("made")
    db.other.insert_one({"x": 1})
    assert sorted(db.list_collection_names()) == ["made", "other"]
    infos = {c["name"]: c for c in db.list_collections()}
    assert infos["made"]["type"] == "collection" and infos["made"]["info"]["uuid"]
    assert [c["name"] for c in db.list_collections(filter={"name": "other"})] == ["other"]
    assert db.name in client.list_database_names()
    full = client.admin.command("listDatabases")
    entry = next(d for d in full["databases"] if d["name"] == db.name)
    assert entry["sizeOnDisk"] >= 0 and entry["empty"] is False
    only = client.admin.command("listDatabases", nameOnly=True, filter={"name": db.name})
    assert only["databases"] == [{"name": db.name}]
    with pytest.raises(pymongo.errors.CollectionInvalid):
        db.create_collection("made")
    db.other.rename("renamed")
    assert sorted(db.list_collection_names()) == ["made", "renamed"]
    assert db.renamed.find_one({}, {"_id": 0}) == {"x": 1}
    db.made.insert_one({"y": 1})
    db.renamed.rename("made", dropTarget=True)
    assert db.list_collection_names() == ["made"]
    # System collections are the server's: no rename onto one.
    with pytest.raises(pymongo.errors.OperationFailure) as err:
        db.made.rename("system.x")
    assert err.value.code == 20 and db.list_collection_names() == ["made"]
    assert db.made.find_one({}, {"_id": 0}) == {"x": 1}
    db.drop_collection("made")
    assert db.list_collection_names() == []
    db.x.insert_one({})
    client.drop_database(db.name)
    assert db.name not in client.list_database_names()


def test_hello_connection_id_is_an_int32(client):
    raw = client.admin.command("hello", codec_options=CodecOptions(document_class=RawBSONDocument))
    # The BSON type byte: int32 (0x10), as mongod writes it while it fits.
    assert b"\x10connectionId\x00" in raw.raw


def test_unknown_command_and_options_fail_like_mongod(db):
    with pytest.raises(pymongo.errors.OperationFailure) as err:
        db.command("frobnicate", 1)
    assert err.value.code == 59
    with pytest.raises(pymongo.errors.OperationFailure) as err:
        db.command("find", "c", bogusOption=1)
    assert err.value.code == 40415
    with pytest.raises(pymongo.errors.OperationFailure) as err:
        db.command("find", "c", filter={"a": {"$nope": 1}})
    assert err.value.code == 2
    # A statement's unknown or missing field fails the whole write, before anything is
    # written (mongod parses the statements with the command).
    db.w.insert_one({"_id": 1, "a": 0})
    for command, statements, code in (
        ("update", [{"q": {}, "u": {"$set": {"a": 1}}}, {"q": {}, "u": {"$set": {"a": 2}}, "foo": 1}], 40415),
        ("update", [{"q": {}, "u": {"$set": {"a": 1}}}, {"q": {}}], 40414),
        ("delete", [{"q": {}, "limit": 0}, {"q": {}}], 40414),
    ):
        field = "updates" if command == "update" else "deletes"
        with pytest.raises(pymongo.errors.OperationFailure) as err:
            db.command(command, "w", **{field: statements})
        assert err.value.code == code, (command, statements)
        assert db.w.find_one({"_id": 1}) == {"_id": 1, "a": 0}


def test_sessions_are_accepted_but_transactions_refused(client, db):
    with client.start_session() as session:
        db.s.insert_one({"_id": 1}, session=session)
        assert db.s.find_one({"_id": 1}, session=session) == {"_id": 1}
        with pytest.raises(pymongo.errors.OperationFailure) as err:
            with session.start_transaction():
                db.s.insert_one({"_id": 2}, session=session)
        # 238, not 20: pymongo turns a 20 on a write into "does not support retryable writes".
        assert err.value.code == 238 and "transactions are not supported" in str(err.value)
    assert db.s.count_documents({}) == 1
    # Causal consistency holds on one node; read concerns are checked, and snapshot reads
    # (a past point in time) are refused rather than answered from the present.
    with client.start_session(causal_consistency=True) as session:
        db.s.insert_one({"_id": 3}, session=session)
        assert db.s.with_options(read_concern=ReadConcern("majority")).count_documents({}, session=session) == 2
    with client.start_session(snapshot=True) as session:
        with pytest.raises(pymongo.errors.OperationFailure) as err:
            db.s.count_documents({}, session=session)
        assert err.value.code == 238 and "snapshot" in str(err.value)
    with pytest.raises(pymongo.errors.OperationFailure) as err:
        db.command("find", "s", readConcern={"level": "sometimes"})
    assert err.value.code == 2


def test_tail_oplog_sees_insert_update_delete(client, db):
    oplog = client.local["oplog.rs"]
    last = next(oplog.find().sort("$natural", -1).limit(1))["ts"] if oplog.estimated_document_count() else None
    start = last or Timestamp(0, 0)
    cursor = oplog.find({"ts": {"$gt": start}}, cursor_type=CursorType.TAILABLE_AWAIT)
    ns = f"{db.name}.t"
    db.t.insert_one({"_id": 1, "v": 1})
    db.t.update_one({"_id": 1}, {"$set": {"v": 2}})
    db.t.delete_one({"_id": 1})
    seen = []
    deadline = time.time() + 10
    while time.time() < deadline and not any(e["op"] == "d" for e in seen):
        for entry in cursor:
            if entry.get("ns") == ns:
                seen.append(entry)
        if not cursor.alive:
            break
    ops = [e["op"] for e in seen]
    assert ops == ["i", "u", "d"], seen
    ins, upd, dele = seen
    assert ins["o"] == {"_id": 1, "v": 1} and isinstance(ins["ts"], Timestamp)
    assert upd["o2"] == {"_id": 1} and upd["o"]["v"] == 2
    assert dele["o"] == {"_id": 1}
    assert ins["ts"] < upd["ts"] < dele["ts"]
    cursor.close()
    after = list(oplog.find({"ts": {"$gt": upd["ts"]}, "ns": ns}))
    assert [e["op"] for e in after] == ["d"]


def test_oplog_reads_like_a_capped_collection(client, db):
    # count, distinct and aggregate read local.oplog.rs as find does (they used to see an
    # empty collection), and the catalog lists it as mongod does.
    db.o.insert_many([{"_id": i} for i in range(3)])
    db.o.update_one({"_id": 0}, {"$set": {"v": 1}})
    db.o.delete_one({"_id": 2})
    oplog = client.local["oplog.rs"]
    ns = f"{db.name}.o"
    entries = list(oplog.find({"ns": ns}))
    assert [e["op"] for e in entries] == ["i", "i", "i", "u", "d"]
    assert oplog.count_documents({"ns": ns}) == 5
    assert oplog.count_documents({"ns": ns, "op": "i"}) == 3
    assert oplog.estimated_document_count() == len(list(oplog.find())) >= 5
    assert sorted(oplog.distinct("op", {"ns": ns})) == ["d", "i", "u"]
    grouped = list(oplog.aggregate([{"$match": {"ns": ns}}, {"$group": {"_id": "$op", "n": {"$sum": 1}}}, {"$sort": {"_id": 1}}]))
    assert grouped == [{"_id": "d", "n": 1}, {"_id": "i", "n": 3}, {"_id": "u", "n": 1}]
    # The oplog's last entry by aggregation is the one a reverse natural find gives.
    newest = next(oplog.find().sort("$natural", -1).limit(1))
    assert list(oplog.aggregate([{"$sort": {"ts": -1}}, {"$limit": 1}])) == [newest]
    listed = list(client.local.list_collections(filter={"name": "oplog.rs"}))
    assert listed == [{"name": "oplog.rs", "type": "collection", "options": {"capped": True, "size": 1 << 30, "autoIndexId": False}, "info": {"readOnly": False}}]
    assert "oplog.rs" in client.local.list_collection_names()
    assert "local" in client.list_database_names()
    # Still not writable.
    with pytest.raises(pymongo.errors.OperationFailure):
        oplog.delete_many({})
    assert oplog.count_documents({"ns": ns}) == 5


def test_storage_statistics(client, db):
    docs = [{"_id": i, "name": f"n{i}", "pad": "x" * i} for i in range(10)]
    db.s.insert_many(docs)
    db.s.create_index("name")
    size = sum(len(bson.encode(d)) for d in docs)
    stats = db.command("collStats", "s")
    assert stats["ns"] == f"{db.name}.s"
    assert (stats["count"], stats["size"], stats["storageSize"], stats["avgObjSize"]) == (10, size, size, size // 10)
    assert (stats["nindexes"], stats["capped"], stats["scaleFactor"]) == (2, False, 1)
    assert list(stats["indexSizes"]) == ["_id_", "name_1"] and all(v > 0 for v in stats["indexSizes"].values())
    assert stats["totalIndexSize"] == sum(stats["indexSizes"].values())
    assert stats["totalSize"] == size + stats["totalIndexSize"]
    # The aggregation stage mongosh's stats() uses, scaled, with more stages after it.
    [row] = db.s.aggregate([{"$collStats": {"storageStats": {"scale": 10}, "count": {}}}, {"$project": {"storageStats.size": 1, "count": 1, "ns": 1, "_id": 0}}])
    assert row == {"ns": f"{db.name}.s", "storageStats": {"size": size // 10}, "count": 10}
    oplog = client.local.command("collStats", "oplog.rs")
    assert (oplog["capped"], oplog["maxSize"], oplog["nindexes"]) == (True, 1 << 30, 0)
    assert oplog["count"] == client.local["oplog.rs"].estimated_document_count()
    db_stats = db.command("dbStats", scale=1)
    assert (db_stats["db"], db_stats["collections"], db_stats["objects"], db_stats["dataSize"], db_stats["indexes"]) == (db.name, 1, 10, size, 2)
    assert db_stats["indexSize"] == stats["totalIndexSize"]
    assert client["nothing_here"].command("dbStats")["collections"] == 0
    # mongod's lowercase aliases.
    assert db.command("dbstats")["objects"] == 10 and db.command("collstats", "s")["count"] == 10
    # A missing collection is NamespaceNotFound; options rewind lacks are refused, not ignored.
    for command in ({"collStats": "missing"},):
        with pytest.raises(pymongo.errors.OperationFailure) as err:
            db.command(command)
        assert err.value.code == 26
    with pytest.raises(pymongo.errors.OperationFailure) as err:
        list(db.missing.aggregate([{"$collStats": {"count": {}}}]))
    assert err.value.code == 26
    with pytest.raises(pymongo.errors.OperationFailure) as err:
        list(db.s.aggregate([{"$collStats": {"latencyStats": {}}}]))
    assert err.value.code == 238
    with pytest.raises(pymongo.errors.OperationFailure) as err:
        list(db.s.aggregate([{"$collStats": {"storageStats": {"scale": 0}}}]))
    assert err.value.code == 2
    with pytest.raises(pymongo.errors.OperationFailure) as err:
        db.command("dbStats", scale="big")
    assert err.value.code == 14


def test_explain_shows_the_chosen_plan_and_what_it_examined(db):
    db.e.insert_many([{"_id": i, "a": i % 10, "b": i} for i in range(100)])
    db.e.create_index("a")

    def stages(plan):
        out = []
        while plan:
            out.append(plan["stage"])
            plan = plan.get("inputStage")
        return out

    # pymongo's cursor.explain(): allPlansExecution, so the plan ran.
    by_index = db.e.find({"a": 3}).explain()
    assert stages(by_index["queryPlanner"]["winningPlan"]) == ["FETCH", "IXSCAN"]
    scan = by_index["queryPlanner"]["winningPlan"]["inputStage"]
    assert (scan["indexName"], scan["keyPattern"], scan["indexBounds"]) == ("a_1", {"a": 1}, {"a": ["[3, 3]"]})
    stats = by_index["executionStats"]
    assert (stats["nReturned"], stats["totalKeysExamined"], stats["totalDocsExamined"]) == (10, 10, 10)
    assert stats["allPlansExecution"] == [] and by_index["command"]["filter"] == {"a": 3}

    # An $in on an indexed field: one lookup per value, in key order.
    many = db.e.find({"a": {"$in": [4, 2, 4]}}).explain()
    assert many["queryPlanner"]["winningPlan"]["inputStage"]["indexBounds"] == {"a": ["[2, 2]", "[4, 4]"]}
    assert many["executionStats"]["nReturned"] == 20 and many["executionStats"]["totalDocsExamined"] == 20
    assert sorted(d["_id"] for d in db.e.find({"a": {"$in": [4, 2]}})) == sorted(i for i in range(100) if i % 10 in (2, 4))

    planned = db.command("explain", {"find": "e", "filter": {"_id": 5}}, verbosity="queryPlanner")
    assert stages(planned["queryPlanner"]["winningPlan"]) == ["EXPRESS_IXSCAN"] and "executionStats" not in planned

    sorted_scan = db.command(
        "explain",
        {"find": "e", "filter": {"b": {"$gt": 50}}, "sort": {"b": -1}, "skip": 2, "limit": 5, "projection": {"b": 1}},
        verbosity="executionStats",
    )
    assert stages(sorted_scan["queryPlanner"]["winningPlan"]) == ["PROJECTION_DEFAULT", "LIMIT", "SKIP", "SORT", "COLLSCAN"]
    stats = sorted_scan["executionStats"]
    assert (stats["nReturned"], stats["totalKeysExamined"], stats["totalDocsExamined"]) == (5, 0, 100)
    assert stats["executionStages"]["inputStage"]["inputStage"]["inputStage"]["nReturned"] == 7  # SORT kept skip + limit

    # A scan in storage order with a limit stops at it.
    limited = db.command("explain", {"find": "e", "filter": {"b": {"$gte": 10}}, "limit": 3}, verbosity="executionStats")
    assert (limited["executionStats"]["nReturned"], limited["executionStats"]["totalDocsExamined"]) == (3, 13)

    counted = db.command("explain", {"count": "e", "query": {"a": {"$lt": 2}}}, verbosity="executionStats")
    assert stages(counted["queryPlanner"]["winningPlan"]) == ["COUNT", "COLLSCAN"]
    assert counted["executionStats"]["totalDocsExamined"] == 100

    agg = db.command(
        "explain",
        {"aggregate": "e", "pipeline": [{"$match": {"a": 1}}, {"$group": {"_id": None, "n": {"$sum": 1}}}], "cursor": {}},
        verbosity="executionStats",
    )
    cursor, group = agg["stages"]
    assert stages(cursor["$cursor"]["queryPlanner"]["winningPlan"]) == ["FETCH", "IXSCAN"]
    assert cursor["$cursor"]["executionStats"]["nReturned"] == 10 and group["nReturned"] == 1
    old_style = db.command("aggregate", "e", pipeline=[{"$match": {"b": 1}}], explain=True)
    assert stages(old_style["stages"][0]["$cursor"]["queryPlanner"]["winningPlan"]) == ["COLLSCAN"]

    missing = db.command("explain", {"find": "nothing"}, verbosity="executionStats")
    assert stages(missing["queryPlanner"]["winningPlan"]) == ["EOF"]
    # Explaining a write is refused rather than faked, and nothing was written.
    with pytest.raises(pymongo.errors.OperationFailure) as err:
        db.command("explain", {"delete": "e", "deletes": [{"q": {}, "limit": 0}]})
    assert err.value.code == 238 and db.e.count_documents({}) == 100
    with pytest.raises(pymongo.errors.OperationFailure) as err:
        db.command("explain", {"find": "e"}, verbosity="loud")
    assert err.value.code == 2


def test_await_data_get_more_waits_then_returns_empty(client, db):
    db.w.insert_one({"_id": 1})
    oplog = client.local["oplog.rs"]
    newest = next(oplog.find().sort("$natural", -1).limit(1))["ts"]
    cursor = oplog.find({"ts": {"$gt": newest}}, cursor_type=CursorType.TAILABLE_AWAIT).max_await_time_ms(300)
    assert list(cursor) == []  # the find itself
    started = time.time()
    assert list(cursor) == []  # a getMore that waited for data
    assert cursor.alive
    assert time.time() - started >= 0.25
    db.w.insert_one({"_id": 2})
    got = []
    deadline = time.time() + 5
    while not got and time.time() < deadline:
        got = [e for e in cursor if e.get("ns") == f"{db.name}.w"]
    assert got and got[0]["o"] == {"_id": 2}
    cursor.close()


def test_apply_ops_applies_an_insert(db):
    db.create_collection("ao")
    oid = ObjectId()
    res = db.command("applyOps", [{"op": "i", "ns": f"{db.name}.ao", "o": {"_id": oid, "a": 1}}])
    assert res["applied"] == 1 and res["results"] == [True]
    assert db.ao.find_one({"_id": oid}) == {"_id": oid, "a": 1}
