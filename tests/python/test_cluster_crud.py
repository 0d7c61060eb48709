"""Driver tests of a live cluster (pymongo): CRUD, query operators, update operators, cursors.

Each test gets a fresh cluster from the `mongo_uri` fixture (or the server named by
`REWIND_TEST_MONGO_URI`) and its own database.
"""

from __future__ import annotations

import datetime
import itertools
import uuid
import re

import pymongo
import pytest
from bson import DBRef, Decimal128, Int64, ObjectId, Regex, Timestamp

_names = itertools.count()
# Unique per run, so reruns against one long-lived server never see old oplog entries.
_RUN = uuid.uuid4().hex[:8]


@pytest.fixture
def db(mongo_uri):
    client = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=5000)
    name = f"crud{next(_names)}_{_RUN}"
    client.drop_database(name)
    yield client[name]
    client.drop_database(name)
    client.close()


def ids(cursor):
    return [d["_id"] for d in cursor]


def test_insert_find_update_delete_round_trip(db):
    coll = db.people
    res = coll.insert_one({"name": "ann", "age": 30})
    assert isinstance(res.inserted_id, ObjectId)
    doc = coll.find_one({"name": "ann"})
    assert list(doc.keys())[0] == "_id" and doc["age"] == 30
    coll.insert_many([{"_id": i, "n": i} for i in range(5)])
    assert coll.count_documents({}) == 6
    assert coll.update_one({"_id": 1}, {"$set": {"n": 10}}).modified_count == 1
    assert coll.find_one({"_id": 1})["n"] == 10
    assert coll.replace_one({"_id": 2}, {"x": 1}).matched_count == 1
    assert coll.find_one({"_id": 2}) == {"_id": 2, "x": 1}
    assert coll.delete_one({"_id": 3}).deleted_count == 1
    assert coll.delete_many({"n": {"$gte": 0}}).deleted_count == 3
    assert coll.count_documents({}) == 2


def test_insert_moves_id_first_and_duplicate_ids_fail(db):
    coll = db.c
    coll.insert_one({"a": 1, "_id": 7})
    raw = db.command("find", "c", filter={"_id": 7})["cursor"]["firstBatch"][0]
    assert list(raw.keys()) == ["_id", "a"]
    with pytest.raises(pymongo.errors.DuplicateKeyError) as err:
        coll.insert_one({"_id": 7})
    assert err.value.code == 11000
    assert err.value.details["keyPattern"] == {"_id": 1}
    assert err.value.details["keyValue"] == {"_id": 7}


def test_unordered_insert_continues_after_errors(db):
    coll = db.c
    docs = [{"_id": 1}, {"_id": 1}, {"_id": 2}, {"_id": 2}, {"_id": 3}]
    with pytest.raises(pymongo.errors.BulkWriteError) as err:
        coll.insert_many(docs, ordered=False)
    details = err.value.details
    assert details["nInserted"] == 3
    assert [e["index"] for e in details["writeErrors"]] == [1, 3]
    with pytest.raises(pymongo.errors.BulkWriteError) as err:
        coll.insert_many([{"_id": 10}, {"_id": 1}, {"_id": 11}], ordered=True)
    assert err.value.details["nInserted"] == 1
    assert coll.count_documents({}) == 4


def test_batch_insert_of_1000_documents(db):
    res = db.big.insert_many([{"i": i} for i in range(1000)])
    assert len(res.inserted_ids) == 1000
    assert db.big.count_documents({}) == 1000


@pytest.fixture
def sample(db):
    coll = db.sample
    coll.insert_many(
        [
            {"_id": 1, "qty": 5, "tags": ["red", "blue"], "item": {"name": "ab", "code": 1}, "s": "apple"},
            {"_id": 2, "qty": 15, "tags": ["red"], "item": {"name": "cd", "code": 2}, "s": "banana"},
            {"_id": 3, "qty": 25, "tags": [], "item": {"name": "ij", "code": 3}, "s": "Cherry"},
            {"_id": 4, "qty": None, "tags": ["blue", "green", "red"], "s": 7},
            {"_id": 5, "tags": "red", "scores": [{"k": "a", "v": 1}, {"k": "b", "v": 9}]},
        ]
    )
    return coll


@pytest.mark.parametrize(
    "flt,expected",
    [
        ({"qty": {"$eq": 15}}, [2]),
        ({"qty": {"$ne": 15}}, [1, 3, 4, 5]),
        ({"qty": {"$gt": 5}}, [2, 3]),
        ({"qty": {"$gte": 5}}, [1, 2, 3]),
        ({"qty": {"$lt": 15}}, [1]),
        ({"qty": {"$lte": 15}}, [1, 2]),
        ({"qty": {"$in": [5, 25]}}, [1, 3]),
        ({"qty": {"$nin": [5, 25]}}, [2, 4, 5]),
        ({"qty": {"$exists": False}}, [5]),
        ({"qty": {"$exists": True}}, [1, 2, 3, 4]),
        ({"qty": None}, [4, 5]),
        ({"s": {"$type": "string"}}, [1, 2, 3]),
        ({"s": {"$type": "number"}}, [4]),
        ({"$and": [{"qty": {"$gt": 1}}, {"qty": {"$lt": 20}}]}, [1, 2]),
        ({"$or": [{"qty": 5}, {"s": 7}]}, [1, 4]),
        ({"$nor": [{"qty": 5}, {"tags": "red"}]}, [3]),
        ({"qty": {"$not": {"$gt": 10}}}, [1, 4, 5]),
        ({"s": {"$regex": "^b"}}, [2]),
        ({"s": {"$regex": "^c", "$options": "i"}}, [3]),
        ({"s": re.compile("an")}, [2]),
        ({"scores": {"$elemMatch": {"k": "b", "v": {"$gt": 5}}}}, [5]),
        ({"scores": {"$elemMatch": {"k": "a", "v": {"$gt": 5}}}}, []),
        ({"tags": {"$size": 2}}, [1]),
        ({"tags": {"$all": ["red", "blue"]}}, [1, 4]),
        ({"item.name": "cd"}, [2]),
        ({"item.code": {"$gte": 2}}, [2, 3]),
        ({"scores.k": "b"}, [5]),
        ({"tags": "red"}, [1, 2, 4, 5]),
        ({"tags": ["red"]}, [2]),
        ({"tags": []}, [3]),
        ({"item": {"name": "ab", "code": 1}}, [1]),
    ],
)
def test_query_operators(sample, flt, expected):
    assert sorted(ids(sample.find(flt))) == expected


def test_unknown_query_operator_is_bad_value(sample):
    with pytest.raises(pymongo.errors.OperationFailure) as err:
        sample.find_one({"qty": {"$frob": 1}})
    assert err.value.code == 2


def test_sort_uses_cross_type_order(db):
    coll = db.mixed
    values = ["b", 3, None, {"a": 1}, [0], True, ObjectId("000000000000000000000001"), 1.5,
              datetime.datetime(2020, 1, 1), Regex("x")]
    coll.insert_many([{"_id": i, "v": v} for i, v in enumerate(values)])
    coll.insert_one({"_id": 100})
    got = ids(coll.find({}, sort=[("v", 1), ("_id", 1)]))
    # missing/null < numbers < strings < objects < arrays(by min elem: 0 is a number) ...
    assert got == [2, 100, 4, 7, 1, 0, 3, 6, 5, 8, 9]
    assert ids(coll.find({}, sort=[("v", -1), ("_id", 1)]))[0] == 9


def test_find_projection_sort_skip_limit(db):
    coll = db.c
    coll.insert_many([{"_id": i, "a": i % 4, "b": {"c": i, "d": -i}} for i in range(20)])
    got = list(coll.find({"a": {"$lt": 2}}, {"b.c": 1, "_id": 0}).sort([("a", -1), ("_id", 1)]).skip(2).limit(3))
    assert got == [{"b": {"c": 9}}, {"b": {"c": 13}}, {"b": {"c": 17}}]
    excluded = coll.find_one({"_id": 3}, {"b": 0})
    assert excluded == {"_id": 3, "a": 3}
    assert ids(coll.find().sort("_id", -1).limit(2)) == [19, 18]
    assert ids(coll.find().sort("_id", 1).limit(-3)) == [0, 1, 2]
    single = db.command("find", "c", sort={"_id": 1}, limit=5, singleBatch=True)
    assert single["cursor"]["id"] == 0 and len(single["cursor"]["firstBatch"]) == 5
    with pytest.raises(pymongo.errors.OperationFailure) as err:
        db.command("find", "c", limit=-3)
    assert err.value.code == 51024


def test_find_projection_elem_match(db):
    db.c.insert_one({"_id": 1, "games": [{"g": "a", "score": 3}, {"g": "b", "score": 8}], "joined": 2020, "nums": [1, 5, 9]})
    # Alone, $elemMatch includes (other fields go); placed after the plain inclusions.
    assert db.c.find_one({}, {"games": {"$elemMatch": {"score": {"$gt": 5}}}}) == {"_id": 1, "games": [{"g": "b", "score": 8}]}
    got = db.c.find_one({}, {"games": {"$elemMatch": {"g": "a"}}, "joined": 1})
    assert list(got) == ["_id", "joined", "games"]
    # The value form on scalar elements; no match leaves the field out.
    assert db.c.find_one({}, {"nums": {"$elemMatch": {"$gt": 4}}, "_id": 0}) == {"nums": [5]}
    assert db.c.find_one({}, {"nums": {"$elemMatch": {"$gt": 10}}}) == {"_id": 1}
    with pytest.raises(pymongo.errors.OperationFailure) as err:
        db.c.find_one({}, {"games": {"$elemMatch": 1}})
    assert err.value.code == 31274


def test_a_hint_must_name_an_index(db):
    db.c.insert_many([{"_id": i, "a": i % 3} for i in range(9)])
    db.c.create_index("a", name="a_1")
    assert ids(db.c.find({"a": 1}).hint("a_1")) == [1, 4, 7]
    assert ids(db.c.find({"a": 1}).hint([("a", 1)])) == [1, 4, 7]
    assert ids(db.c.find({"a": 1}).hint([("$natural", 1)])) == [1, 4, 7]
    assert db.c.count_documents({"a": 1}, hint="a_1") == 3
    for bad in (lambda: list(db.c.find({}).hint("nope_1")),
                lambda: list(db.c.find({}).hint([("b", 1)])),
                lambda: db.c.count_documents({}, hint="nope_1"),
                lambda: db.command("count", "c", hint="nope_1"),
                lambda: db.command("distinct", "c", key="a", hint="nope_1")):
        with pytest.raises(pymongo.errors.OperationFailure) as err:
            bad()
        assert err.value.code == 2
    # No collection, no index to miss.
    assert list(db.missing.find({}).hint("nope_1")) == []


def test_max_time_ms_is_checked_and_stops_reads(db):
    assert db.command("ping", maxTimeMS=Decimal128("5"))["ok"] == 1
    for bad in (-1, 0.5, "1", 2**31, Decimal128("0.5")):
        for command in (("ping",), ("find", "c")):
            with pytest.raises(pymongo.errors.OperationFailure) as err:
                db.command(*command, maxTimeMS=bad)
            assert err.value.code == 2, (command, bad)
    db.big.insert_many([{"_id": i, "s": f"value-{i:08}-" + "x" * 64} for i in range(30_000)])
    # A scan of 30,000 documents takes far longer than a millisecond.
    with pytest.raises(pymongo.errors.ExecutionTimeout) as err:
        db.command("count", "big", query={"s": {"$regex": "y$"}}, maxTimeMS=1)
    assert err.value.code == 50
    with pytest.raises(pymongo.errors.ExecutionTimeout):
        list(db.big.find({"s": {"$regex": "y$"}}).max_time_ms(1))
    # Within the limit, the same read answers.
    assert db.command("count", "big", query={"_id": 5}, maxTimeMS=60_000)["n"] == 1
    cursor = db.command("find", "big", batchSize=2)["cursor"]["id"]
    with pytest.raises(pymongo.errors.OperationFailure) as err:
        db.command("getMore", cursor, collection="big", maxTimeMS=100)
    assert err.value.code == 2


def test_decimals_compare_exactly_through_lookups(db):
    big = 2**53 + 1
    db.d.insert_many([{"_id": Int64(big), "v": 1}, {"_id": 2, "v": 9.99}, {"_id": 3, "v": Decimal128("9.99")}])
    db.d.create_index("v")
    # By _id (a primary-key lookup) and by a secondary index, as a scan would answer.
    assert ids(db.d.find({"_id": Decimal128("9007199254740993")})) == [big]
    assert ids(db.d.find({"_id": Decimal128("9007199254740992")})) == []
    assert ids(db.d.find({"v": 9.99})) == [2]
    assert ids(db.d.find({"v": Decimal128("9.99")})) == [3]
    assert sorted(ids(db.d.find({"_id": {"$in": [Decimal128("3"), Decimal128("9007199254740993")]}}))) == [3, big]


def test_decimal_arithmetic_is_exact(db):
    # Money kept as Decimal128: $inc and $mul, then the aggregation operators and
    # accumulators, give mongod's decimal128 results (34 digits, the exponent kept).
    db.acct.insert_many([{"_id": 1, "bal": Decimal128("0.10")}, {"_id": 2, "bal": 0.1}, {"_id": 3}])
    db.acct.update_one({"_id": 1}, {"$inc": {"bal": Decimal128("0.20")}})
    db.acct.update_one({"_id": 2}, {"$inc": {"bal": Decimal128("0.2")}})
    db.acct.update_one({"_id": 3}, {"$mul": {"bal": Decimal128("1.50")}})
    assert [d["bal"] for d in db.acct.find().sort("_id", 1)] == [
        Decimal128("0.30"),
        # A double joins rounded to 15 significant digits, as in mongod.
        Decimal128("0.300000000000000"),
        Decimal128("0.00"),
    ]
    db.acct.update_one({"_id": 1}, {"$mul": {"bal": Decimal128("3")}})
    assert db.acct.find_one({"_id": 1})["bal"] == Decimal128("0.90")

    db.items.insert_many([{"p": Decimal128("19.99"), "q": 3}, {"p": Decimal128("0.01"), "q": 7}, {"p": Decimal128("1234567890123456789.01"), "q": 1}])
    row = next(
        db.items.aggregate(
            [
                {"$project": {"line": {"$multiply": ["$p", "$q"]}, "third": {"$divide": ["$p", 3]}, "less": {"$subtract": ["$p", Decimal128("0.01")]}}},
                {"$group": {"_id": None, "total": {"$sum": "$line"}, "avg": {"$avg": "$line"}, "thirds": {"$push": "$third"}, "less": {"$push": "$less"}}},
            ]
        )
    )
    assert row["total"] == Decimal128("1234567890123456849.05")
    assert str(row["avg"]) == "411522630041152283.0166666666666667"
    assert [str(t) for t in row["thirds"]] == ["6.663333333333333333333333333333333", "0.003333333333333333333333333333333333", "411522630041152263.0033333333333333"]
    assert [str(t) for t in row["less"]] == ["19.98", "0.00", "1234567890123456789.00"]


def test_empty_timestamps_are_filled_on_insert(db):
    # mongosh's `new Timestamp()` is Timestamp(0, 0): mongod fills top-level ones (not _id's)
    # with the current optime on insert.
    db.ts.insert_many([{"_id": 1, "at": Timestamp(0, 0), "nested": {"at": Timestamp(0, 0)}}, {"_id": Timestamp(0, 0)}])
    first = db.ts.find_one({"_id": 1})
    assert first["at"].time > 0 and first["nested"] == {"at": Timestamp(0, 0)}
    assert db.ts.find_one({"_id": Timestamp(0, 0)}) == {"_id": Timestamp(0, 0)}
    # So does a replacement (not an update operator); findAndModify returns what it stored.
    db.ts.replace_one({"_id": 1}, {"at": Timestamp(0, 0)})
    replaced = db.ts.find_one({"_id": 1})["at"]
    assert replaced.time > 0 and replaced != first["at"]
    returned = db.ts.find_one_and_replace({"_id": 1}, {"at": Timestamp(0, 0)}, return_document=pymongo.ReturnDocument.AFTER)
    assert returned == db.ts.find_one({"_id": 1}) and returned["at"].time > 0
    upserted = db.ts.find_one_and_replace({"_id": 2}, {"at": Timestamp(0, 0)}, upsert=True, return_document=pymongo.ReturnDocument.AFTER)
    assert upserted == db.ts.find_one({"_id": 2}) and upserted["at"].time > 0
    db.ts.update_one({"_id": 1}, {"$set": {"at": Timestamp(0, 0)}})
    assert db.ts.find_one({"_id": 1})["at"] == Timestamp(0, 0)


def test_dbref_values_and_natural_hint(db):
    # A {$ref, $id} document is a value in filters (not operators), in $in lists too.
    db.refs.insert_many([{"_id": 1, "r": DBRef("c", 1)}, {"_id": 2, "r": DBRef("c", 2)}])
    assert ids(db.refs.find({"r": DBRef("c", 2)})) == [2]
    assert ids(db.refs.find({"r": {"$in": [DBRef("c", 1), DBRef("c", 9)]}})) == [1]
    db.refs.update_one({"r": DBRef("c", 3)}, {"$set": {"new": True}}, upsert=True)
    assert db.refs.find_one({"new": True})["r"] == DBRef("c", 3)
    # hint({$natural: -1}) without a sort reads in reverse storage order.
    assert ids(db.refs.find().hint([("$natural", -1)])) == ids(db.refs.find().sort("$natural", -1))
    assert ids(db.refs.find().hint([("$natural", -1)]))[-1] == 1
    with db.client.start_session() as session:
        kept = db.refs.find(no_cursor_timeout=True, session=session).batch_size(1)
        assert ids(kept) == [1, 2, db.refs.find_one({"new": True})["_id"]]


def test_cursor_over_many_batches(db):
    coll = db.many
    coll.insert_many([{"_id": i, "pad": "x" * 50} for i in range(2500)])
    cursor = coll.find({}, batch_size=100)
    assert ids(cursor) == list(range(2500))
    sorted_desc = ids(coll.find({"_id": {"$gte": 500}}).sort("_id", -1).batch_size(100))
    assert sorted_desc == list(range(2499, 499, -1))
    limited = ids(coll.find({}).batch_size(7).limit(50))
    assert limited == list(range(50))


def test_get_more_and_kill_cursors(db):
    db.c.insert_many([{"_id": i} for i in range(10)])
    first = db.command("find", "c", batchSize=2)
    cid = first["cursor"]["id"]
    assert cid != 0 and first["cursor"]["ns"] == f"{db.name}.c"
    more = db.command("getMore", Int64(cid), collection="c", batchSize=3)
    assert [d["_id"] for d in more["cursor"]["nextBatch"]] == [2, 3, 4]
    with pytest.raises(pymongo.errors.OperationFailure):
        db.command("getMore", Int64(cid), collection="other")
    killed = db.command("killCursors", "c", cursors=[Int64(cid), Int64(12345)])
    assert killed["cursorsKilled"] == [cid]
    assert killed["cursorsNotFound"] == [12345]
    with pytest.raises(pymongo.errors.OperationFailure) as err:
        db.command("getMore", Int64(cid), collection="c")
    assert err.value.code == 43


def test_index_lookup_and_id_lookup_return_matches(db):
    coll = db.c
    coll.create_index("k")
    coll.insert_many([{"_id": i, "k": i % 5, "tags": [i, i + 1]} for i in range(50)])
    assert sorted(ids(coll.find({"k": 3}))) == [3, 8, 13, 18, 23, 28, 33, 38, 43, 48]
    assert ids(coll.find({"k": 3, "_id": {"$gt": 40}})) == [43, 48]
    assert ids(coll.find({"_id": 7.0})) == [7]
    assert ids(coll.find({"_id": 7, "k": 1})) == []


def test_update_operators(db):
    coll = db.u
    coll.insert_one({"_id": 1, "a": 1, "b": 2, "n": 5, "arr": [3, 1, 2], "s": [1], "old": "x", "gone": 1})
    coll.update_one({"_id": 1}, {
        "$set": {"a": 10, "nested.x": 1},
        "$unset": {"gone": ""},
        "$inc": {"n": 2},
        "$mul": {"b": 3},
        "$rename": {"old": "new"},
        "$currentDate": {"when": True},
    })
    doc = coll.find_one({"_id": 1})
    assert doc["a"] == 10 and doc["nested"] == {"x": 1} and "gone" not in doc
    assert doc["n"] == 7 and doc["b"] == 6 and doc["new"] == "x" and "old" not in doc
    assert isinstance(doc["when"], datetime.datetime)
    coll.update_one({"_id": 1}, {"$min": {"n": 3}, "$max": {"b": 100}})
    doc = coll.find_one({"_id": 1})
    assert doc["n"] == 3 and doc["b"] == 100
    coll.update_one({"_id": 1}, {"$push": {"arr": {"$each": [9, 0], "$sort": 1, "$slice": 4}}})
    assert coll.find_one({"_id": 1})["arr"] == [0, 1, 2, 3]
    coll.update_one({"_id": 1}, {"$push": {"arr": {"$each": [7], "$position": 0}}})
    assert coll.find_one({"_id": 1})["arr"] == [7, 0, 1, 2, 3]
    coll.update_one({"_id": 1}, {"$push": {"s": 2}})
    coll.update_one({"_id": 1}, {"$pull": {"arr": {"$gte": 2}}})
    assert coll.find_one({"_id": 1})["arr"] == [0, 1]
    res = coll.update_one({"_id": 1}, {"$addToSet": {"s": 2}})
    assert res.modified_count == 0
    coll.update_one({"_id": 1}, {"$addToSet": {"s": {"$each": [2, 3]}}})
    assert coll.find_one({"_id": 1})["s"] == [1, 2, 3]


def test_upsert_set_on_insert_and_multi(db):
    coll = db.u
    res = coll.update_one({"k": "a"}, {"$set": {"v": 1}, "$setOnInsert": {"created": True}}, upsert=True)
    assert res.upserted_id is not None and res.matched_count == 0
    doc = coll.find_one({"k": "a"})
    assert doc["v"] == 1 and doc["created"] is True
    res = coll.update_one({"k": "a"}, {"$set": {"v": 2}, "$setOnInsert": {"created": False}}, upsert=True)
    assert res.upserted_id is None and res.modified_count == 1
    assert coll.find_one({"k": "a"})["created"] is True
    coll.replace_one({"_id": 42}, {"r": 1}, upsert=True)
    assert coll.find_one({"_id": 42}) == {"_id": 42, "r": 1}
    coll.insert_many([{"g": 1, "x": 0} for _ in range(5)])
    res = coll.update_many({"g": 1}, {"$inc": {"x": 1}})
    assert res.matched_count == 5 and res.modified_count == 5
    assert coll.update_one({"g": 1}, {"$inc": {"x": 1}}).modified_count == 1
    assert sorted(d["x"] for d in coll.find({"g": 1})) == [1, 1, 1, 1, 2]


def test_an_upsert_cannot_change_the_filters_id(db):
    coll = db.u
    for update in ({"$set": {"_id": 13}}, {"$setOnInsert": {"_id": 13}}):
        with pytest.raises(pymongo.errors.WriteError) as err:
            coll.update_one({"_id": 12}, update, upsert=True)
        assert err.value.code == 66
    with pytest.raises(pymongo.errors.WriteError) as err:
        coll.replace_one({"_id": 10}, {"_id": 11, "b": 3}, upsert=True)
    assert err.value.code == 66
    assert coll.count_documents({}) == 0
    # A replacement takes only _id from the filter.
    coll.replace_one({"r": {"a": 1}, "r.a": 1, "_id": 3}, {"y": 1}, upsert=True)
    assert list(coll.find()) == [{"_id": 3, "y": 1}]


def test_a_failed_update_counts_for_nothing(db):
    coll = db.u
    coll.create_index("a", unique=True)
    coll.insert_many([{"_id": 1, "a": 1}, {"_id": 2, "a": 2}, {"_id": 3, "a": 3}])
    reply = db.command("update", "u", updates=[{"q": {"_id": 3}, "u": {"$set": {"a": 2}}}])
    assert (reply["n"], reply["nModified"], reply["writeErrors"][0]["code"]) == (0, 0, 11000)
    reply = db.command("update", "u", ordered=False, updates=[
        {"q": {"_id": 1}, "u": {"$set": {"b": 1}}},
        {"q": {"_id": 3}, "u": {"$set": {"a": 1}}},
    ])
    assert (reply["n"], reply["nModified"], len(reply["writeErrors"])) == (1, 1, 1)


def test_update_errors_are_reported(db):
    coll = db.u
    coll.insert_one({"_id": 1, "a": "text"})
    with pytest.raises(pymongo.errors.WriteError) as err:
        coll.update_one({"_id": 1}, {"$inc": {"a": 1}})
    assert err.value.code == 14
    with pytest.raises(pymongo.errors.WriteError) as err:
        coll.update_one({"_id": 1}, {"$frob": {"a": 1}})
    assert err.value.code == 9
    with pytest.raises(pymongo.errors.WriteError) as err:
        coll.replace_one({"_id": 1}, {"_id": 2})
    assert err.value.code == 66
    with pytest.raises(pymongo.errors.OperationFailure) as err:
        coll.update_one({"_id": 1}, {"$set": {"a.$[x]": 1}}, array_filters=[{"x": 1}])
    assert err.value.code == 238


def test_delete_one_and_many(db):
    coll = db.d
    coll.insert_many([{"_id": i, "g": i % 2} for i in range(10)])
    assert coll.delete_one({"g": 1}).deleted_count == 1
    assert coll.delete_many({"g": 1}).deleted_count == 4
    assert coll.delete_many({}).deleted_count == 5
    assert coll.delete_one({"nothing": 1}).deleted_count == 0
