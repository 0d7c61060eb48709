"""MongoDB 8.0's client-level bulk write (pymongo's `MongoClient.bulk_write`, the `bulkWrite`
command): operations across namespaces, a result per operation, ordered and unordered."""

from __future__ import annotations


import pymongo
import pytest
from pymongo import DeleteMany, DeleteOne, InsertOne, ReplaceOne, UpdateMany, UpdateOne


def test_operations_across_namespaces_with_verbose_results(mongo_client, scratch_db):
    a, b = f"{scratch_db.name}.a", f"{scratch_db.name}.b"
    result = mongo_client.bulk_write(
        [
            InsertOne({"_id": 1, "n": 1}, namespace=a),
            InsertOne({"_id": 2, "n": 2}, namespace=b),
            InsertOne({"_id": 3, "n": 3}, namespace=b),
            UpdateOne({"_id": 1}, {"$inc": {"n": 10}}, namespace=a),
            UpdateMany({}, {"$set": {"seen": True}}, namespace=b),
            UpdateOne({"_id": 9}, {"$set": {"up": 1}}, upsert=True, namespace=a),
            ReplaceOne({"_id": 2}, {"replaced": True}, namespace=b),
            DeleteOne({"_id": 9}, namespace=a),
            DeleteMany({"seen": True}, namespace=b),
        ],
        verbose_results=True,
    )
    assert (result.inserted_count, result.matched_count, result.modified_count) == (3, 4, 4)
    assert (result.upserted_count, result.deleted_count) == (1, 2)
    assert result.update_results[5].upserted_id == 9
    assert result.update_results[4].matched_count == 2 and result.delete_results[8].deleted_count == 1
    assert list(scratch_db.a.find()) == [{"_id": 1, "n": 11}]
    assert list(scratch_db.b.find()) == [{"_id": 2, "replaced": True}]


def test_errors_stop_an_ordered_bulk_and_not_an_unordered_one(mongo_client, scratch_db):
    ns = f"{scratch_db.name}.c"
    mongo_client.bulk_write([InsertOne({"_id": 1}, namespace=ns)])
    batch = [InsertOne({"_id": 1}, namespace=ns), InsertOne({"_id": 2}, namespace=ns)]
    with pytest.raises(pymongo.errors.ClientBulkWriteException) as err:
        mongo_client.bulk_write(batch)
    [error] = err.value.write_errors
    assert (error["idx"], error["code"], error["keyValue"]) == (0, 11000, {"_id": 1})
    assert sorted(d["_id"] for d in scratch_db.c.find()) == [1]
    with pytest.raises(pymongo.errors.ClientBulkWriteException) as err:
        mongo_client.bulk_write(batch, ordered=False)
    assert err.value.partial_result.inserted_count == 1
    assert sorted(d["_id"] for d in scratch_db.c.find()) == [1, 2]
    # Only on admin, as in mongod; malformed operations fail the command before any write.
    with pytest.raises(pymongo.errors.OperationFailure) as err:
        scratch_db.command("bulkWrite", 1, ops=[], nsInfo=[])
    assert err.value.code == 13
    with pytest.raises(pymongo.errors.OperationFailure):
        mongo_client.admin.command("bulkWrite", 1, ops=[{"insert": 0, "document": {"_id": 7}}, {"insert": 5, "document": {}}], nsInfo=[{"ns": ns}])
    assert scratch_db.c.find_one({"_id": 7}) is None
