"""Clusters created through the Atlas API are live databases: they survive `kill -9` of the
service with every acknowledged write, stop serving while paused, and lose their data when
deleted. pymongo is the client."""

from __future__ import annotations

import time
from pathlib import Path

import pymongo
import pytest
from bson import ObjectId
from requests.auth import HTTPDigestAuth

from conftest import (
    V_CLUSTERS,
    AtlasClient,
    create_cluster,
    expect,
    start_server,
    wait_cluster_uri,
)


def client(uri: str) -> pymongo.MongoClient:
    return pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)


def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = start_server(data_dir, tmp_path / "logs")
    try:
        api = AtlasClient(server.base_url, HTTPDigestAuth(server.public_key, server.private_key))
        create_cluster(api, server.group_id, "Durable")
        uri = wait_cluster_uri(api, server.group_id, "Durable")
        collection = client(uri).shop.orders
        collection.create_index("sku", unique=True)
        acknowledged = []
        for batch in range(20):
            docs = [{"_id": ObjectId(), "sku": f"{batch}-{n}", "qty": n} for n in range(50)]
            result = collection.insert_many(docs)
            assert result.acknowledged
            acknowledged.extend(docs)
        updated = collection.update_many({"qty": {"$lt": 10}}, {"$inc": {"qty": 1000}})
        assert updated.modified_count == 200
    finally:
        server.proc.kill()  # SIGKILL: no shutdown of any kind
        server.proc.wait(timeout=10)

    restarted = start_server(data_dir, tmp_path / "logs")
    try:
        api = AtlasClient(restarted.base_url, HTTPDigestAuth(restarted.public_key, restarted.private_key))
        uri = wait_cluster_uri(api, restarted.group_id, "Durable")
        collection = client(uri).shop.orders
        stored = {doc["_id"]: doc for doc in collection.find()}
        assert len(stored) == len(acknowledged)
        for doc in acknowledged:
            expected_qty = doc["qty"] + (1000 if doc["qty"] < 10 else 0)
            assert stored[doc["_id"]] == {**doc, "qty": expected_qty}
        assert "sku_1" in collection.index_information(), "indexes survive too"
        with pytest.raises(pymongo.errors.DuplicateKeyError):
            collection.insert_one({"sku": acknowledged[0]["sku"]})
    finally:
        assert restarted.stop() == 0


def test_paused_clusters_stop_serving_and_deleted_ones_lose_their_data(
    api: AtlasClient, server
) -> None:
    name = f"Lifecycle{int(time.time() * 1000) % 100000}"
    created = create_cluster(api, server.group_id, name)
    uri = wait_cluster_uri(api, server.group_id, name)
    client(uri).app.items.insert_one({"_id": 1, "kept": True})
    path = f"/api/atlas/v2/groups/{server.group_id}/clusters/{name}"

    expect(api.patch(path, {"paused": True}, version=V_CLUSTERS), 200)
    deadline = time.time() + 20
    while True:
        try:
            pymongo.MongoClient(uri, serverSelectionTimeoutMS=300).admin.command("ping")
        except pymongo.errors.PyMongoError:
            break
        assert time.time() < deadline, "a paused cluster still serves"
        time.sleep(0.2)

    expect(api.patch(path, {"paused": False}, version=V_CLUSTERS), 200)
    resumed = wait_cluster_uri(api, server.group_id, name)
    assert client(resumed).app.items.find_one({"_id": 1}) == {"_id": 1, "kept": True}

    cluster_dir = server.data_dir / "clusters" / created["id"]
    assert cluster_dir.is_dir()
    expect(api.delete(path, version=V_CLUSTERS), 202)
    deadline = time.time() + 20
    while cluster_dir.exists():
        assert time.time() < deadline, "the deleted cluster's data is still there"
        time.sleep(0.1)
    with pytest.raises(pymongo.errors.PyMongoError):
        pymongo.MongoClient(resumed, serverSelectionTimeoutMS=500).admin.command("ping")
