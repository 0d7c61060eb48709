"""Helpers of the restore tests: cluster state as raw BSON, snapshots and jobs through the API,
and an independent reader of the mongodump archive format."""

from __future__ import annotations

import datetime
import gzip
import struct
import time
from typing import Any

import bson
import pymongo
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument

from conftest import AtlasClient, backup_prefix, expect

RAW = CodecOptions(document_class=RawBSONDocument)
SYSTEM_DBS = {"admin", "local", "config"}


def client(uri: str) -> pymongo.MongoClient:
    return pymongo.MongoClient(uri, serverSelectionTimeoutMS=10000)


def plain(document: Any) -> dict:
    """A document as a plain dict, whatever class the driver decoded it into."""
    if isinstance(document, RawBSONDocument):
        return bson.decode(document.raw)
    return bson.decode(bson.encode(document))


def cluster_state(mongo: pymongo.MongoClient) -> dict[str, Any]:
    """Every user namespace: its documents as raw BSON bytes in `_id` order, its indexes and
    its options."""
    state: dict[str, Any] = {}
    for db_name in sorted(mongo.list_database_names()):
        if db_name in SYSTEM_DBS:
            continue
        db = mongo.get_database(db_name, codec_options=RAW)
        for info in sorted(db.list_collections(), key=lambda c: c["name"]):
            name = info["name"]
            docs = [doc.raw for doc in db[name].find().sort("_id", 1)]
            indexes = {spec["name"]: plain(spec) for spec in db[name].list_indexes()}
            options = plain(info).get("options", {})
            state[f"{db_name}.{name}"] = {"docs": docs, "indexes": indexes, "options": options}
    return state


def write_varied_data(mongo: pymongo.MongoClient) -> None:
    """Several databases, collections with indexes and options, nested and binary values."""
    shop = mongo.shop
    shop.create_collection("orders", storageEngine={"wiredTiger": {"configString": "block_compressor=zstd"}})
    shop.orders.insert_many(
        [
            {
                "_id": i,
                "sku": f"sku-{i:05}",
                "qty": i % 7,
                "price": bson.Decimal128(f"{i}.25") if i % 2 else i * 1.5,
                "lines": [{"n": n, "tags": ["a", "b"][: n % 3]} for n in range(i % 4)],
                "blob": bson.Binary(bytes([i % 256]) * (i % 50), 0),
                "uuid": bson.Binary(bytes(range(16)), 4),
                "when": datetime.datetime(2026, 1, 1 + i % 28, tzinfo=datetime.timezone.utc),
            }
            for i in range(3000)
        ]
    )
    shop.orders.create_index("sku", unique=True)
    shop.orders.create_index([("qty", 1), ("price", -1)], name="qty_price")
    shop.customers.insert_many(
        [{"_id": bson.ObjectId(), "name": f"c{i}", "address": {"city": "Oslo", "zip": i}} for i in range(500)]
    )
    mongo.metrics.events.insert_many([{"k": i, "nested": {"deep": {"deeper": [i, {"x": None}]}}} for i in range(200)])
    mongo.metrics.events.create_index("nested.deep.deeper")
    mongo.empty_db.create_collection("nothing_yet")


def take_snapshot(api: AtlasClient, group: str, cluster: str, timeout: float = 60) -> dict:
    snap = expect(
        api.post(f"{backup_prefix(group, cluster)}/snapshots", {"description": "test", "retentionInDays": 1}), 200
    )
    deadline = time.time() + timeout
    while True:
        current = expect(api.get(f"{backup_prefix(group, cluster)}/snapshots/{snap['id']}"), 200)
        if current["status"] in ("completed", "failed"):
            assert current["status"] == "completed", current
            return current
        assert time.time() < deadline, current
        time.sleep(0.1)


def post_restore(api: AtlasClient, group: str, cluster: str, body: dict) -> dict:
    return expect(api.post(f"{backup_prefix(group, cluster)}/restoreJobs", body), 200)


def wait_job(api: AtlasClient, group: str, cluster: str, job_id: str, timeout: float = 90) -> dict:
    """Waits until the job ended (completed, failed, cancelled or expired)."""
    deadline = time.time() + timeout
    while True:
        job = expect(api.get(f"{backup_prefix(group, cluster)}/restoreJobs/{job_id}"), 200)
        done = job.get("failed") or job.get("cancelled") or job.get("expired")
        if done or job.get("finishedAt"):
            return job
        assert time.time() < deadline, f"job never ended: {job}"
        time.sleep(0.1)


def read_archive(data: bytes) -> tuple[dict, dict[str, list[bytes]], dict[str, int]]:
    """Parses mongodump's archive format from its spec: magic, prelude header, metadata
    documents, terminator, then per-namespace blocks of documents between namespace headers.
    Returns the header, each namespace's raw documents, and each namespace's EOF CRC."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    assert struct.unpack("<I", data[:4])[0] == 0x8199E26D, "archive magic number"
    pos = 4
    terminator = 0xFFFFFFFF

    def item() -> bytes | None:
        nonlocal pos
        length = struct.unpack("<I", data[pos : pos + 4])[0]
        if length == terminator:
            pos += 4
            return None
        raw = data[pos : pos + length]
        pos += length
        return raw

    header = bson.decode(item())
    while item() is not None:  # namespace metadata documents
        pass
    documents: dict[str, list[bytes]] = {}
    crcs: dict[str, int] = {}
    while pos < len(data):
        namespace = bson.decode(item())
        ns = f"{namespace['db']}.{namespace['collection']}"
        if namespace.get("EOF"):
            crcs[ns] = namespace["CRC"]
            assert item() is None
            continue
        docs = documents.setdefault(ns, [])
        while (raw := item()) is not None:
            docs.append(raw)
    return header, documents, crcs


def crc64_xz(data: bytes, crc: int = 0) -> int:
    """CRC-64/XZ (Go's crc64.ECMA table as mongo-tools uses it), bit by bit."""
    poly = 0xC96C5795D7870F42
    crc ^= 0xFFFFFFFFFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (poly if crc & 1 else 0)
    return crc ^ 0xFFFFFFFFFFFFFFFF
