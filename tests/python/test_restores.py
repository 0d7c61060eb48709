"""Real snapshots and real restores, checked with pymongo: automated restores into another
cluster and into the source itself, point-in-time restores in both forms, one-time download
links (tar.gz and archive), and faults (a corrupt blob, `kill -9` mid-restore)."""

from __future__ import annotations

import hashlib
import io
import socket
import tarfile
import time
from pathlib import Path

import bson
import pymongo
import pytest
import requests
from requests.auth import HTTPDigestAuth

from conftest import V_CLUSTERS, AtlasClient, backup_prefix, create_cluster, expect, own_server, start_server, wait_cluster_uri
from restore_helpers import (
    client,
    cluster_state,
    crc64_xz,
    post_restore,
    read_archive,
    take_snapshot,
    wait_job,
    write_varied_data,
)


def unique(name: str) -> str:
    return f"{name}{int(time.time() * 1000) % 1000000}"


def test_automated_restore_into_another_cluster_and_into_the_source(api: AtlasClient, server) -> None:
    group = server.group_id
    source_name, target_name = unique("AutoSrc"), unique("AutoDst")
    create_cluster(api, group, source_name)
    create_cluster(api, group, target_name)
    source = client(wait_cluster_uri(api, group, source_name))
    target = client(wait_cluster_uri(api, group, target_name))
    write_varied_data(source)
    target.stale.data.insert_one({"_id": "from before the restore"})
    expected = cluster_state(source)
    snapshot = take_snapshot(api, group, source_name)
    assert snapshot["storageSizeBytes"] > 0

    # Mutate the source after the snapshot: none of it may come back.
    source.shop.orders.delete_many({"qty": 3})
    source.shop.orders.update_many({}, {"$set": {"changed": True}})
    source.shop.orders.drop_index("qty_price")
    source.fresh.things.insert_one({"x": 1})

    job = post_restore(
        api, group, source_name,
        {"deliveryType": "automated", "snapshotId": snapshot["id"], "targetClusterName": target_name, "targetGroupId": group},
    )
    ended = wait_job(api, group, source_name, job["id"])
    assert not ended["failed"] and ended["finishedAt"], ended
    assert ended["progress"]["documentsDone"] == ended["progress"]["documentsTotal"] == 3700
    target = client(wait_cluster_uri(api, group, target_name))
    assert cluster_state(target) == expected, "the target holds exactly the snapshot"

    # Into the source itself: the mutations are undone.
    job = post_restore(
        api, group, source_name,
        {"deliveryType": "automated", "snapshotId": snapshot["id"], "targetClusterName": source_name, "targetGroupId": group},
    )
    assert not wait_job(api, group, source_name, job["id"])["failed"]
    source = client(wait_cluster_uri(api, group, source_name))
    assert cluster_state(source) == expected
    with pytest.raises(pymongo.errors.DuplicateKeyError):
        source.shop.orders.insert_one({"sku": "sku-00001"})

    # As Atlas does, the restored cluster gets a fresh snapshot.
    snapshots = expect(api.get(f"{backup_prefix(group, target_name)}/snapshots"), 200)
    assert snapshots["totalCount"] >= 1


def last_op(mongo: pymongo.MongoClient) -> bson.Timestamp:
    entry = next(mongo.local["oplog.rs"].find({"op": {"$ne": "n"}}).sort("$natural", -1).limit(1))
    return entry["ts"]


def wait_next_second() -> None:
    time.sleep(1.05 - (time.time() % 1.0))


def test_point_in_time_restores_to_a_second_and_to_an_optime(api: AtlasClient, server) -> None:
    group = server.group_id
    source_name, target_name = unique("PitSrc"), unique("PitDst")
    create_cluster(api, group, source_name, pit=True)
    create_cluster(api, group, target_name)
    source = client(wait_cluster_uri(api, group, source_name))
    source.app.items.insert_many([{"_id": i, "v": 0} for i in range(50)])
    source.app.items.create_index("v")
    snapshot = take_snapshot(api, group, source_name)
    assert snapshot["status"] == "completed"

    seconds: list[tuple[int, dict]] = []
    optimes: list[tuple[bson.Timestamp, dict]] = []
    for step in range(1, 5):
        wait_next_second()
        source.app.items.update_many({"_id": {"$lt": 10 * step}}, {"$inc": {"v": 1}})
        source.app.items.insert_one({"_id": 100 + step, "step": step})
        optimes.append((last_op(source), cluster_state(source)))
        source.app.items.delete_one({"_id": step})
        source.other.log.insert_one({"step": step})
        ts = last_op(source)
        seconds.append((ts.time, cluster_state(source)))
    # Capture runs every second; wait until it covers the last second's end.
    time.sleep(3)

    def restore_to(body: dict, expected: dict) -> None:
        job = post_restore(
            api, group, source_name,
            {"deliveryType": "pointInTime", "targetClusterName": target_name, "targetGroupId": group, **body},
        )
        assert job["desiredTimestamp"], job
        ended = wait_job(api, group, source_name, job["id"])
        assert not ended["failed"], ended
        restored = client(wait_cluster_uri(api, group, target_name))
        assert cluster_state(restored) == expected, f"state at {body}"

    for second, expected in (seconds[0], seconds[2]):
        restore_to({"pointInTimeUTCSeconds": second}, expected)
    for ts, expected in (optimes[1], optimes[3]):
        restore_to({"oplogTs": ts.time, "oplogInc": ts.inc}, expected)


def test_download_links_serve_once_resume_and_expire(api: AtlasClient, server, tmp_path: Path) -> None:
    group = server.group_id
    name = unique("Dl")
    create_cluster(api, group, name)
    mongo = client(wait_cluster_uri(api, group, name))
    write_varied_data(mongo)
    expected = cluster_state(mongo)
    snapshot = take_snapshot(api, group, name)
    job = post_restore(api, group, name, {"deliveryType": "download", "snapshotId": snapshot["id"]})
    ended = wait_job(api, group, name, job["id"])
    assert not ended["failed"], ended
    url = ended["deliveryUrl"][0]
    assert ended["components"][0]["downloadUrl"] == url and ended["expiresAt"]

    head = requests.head(url)
    assert head.status_code == 200
    size, sha256 = int(head.headers["content-length"]), head.headers["etag"].strip('"')
    assert head.headers["x-content-sha256"] == sha256

    # An interrupted download resumes with Range; the two halves are the file.
    first = requests.get(url, headers={"Range": "bytes=0-999"})
    assert first.status_code == 206 and len(first.content) == 1000
    rest = requests.get(url, headers={"Range": "bytes=1000-"})
    assert rest.status_code == 206
    assert rest.headers["content-range"] == f"bytes 1000-{size - 1}/{size}"
    body = first.content + rest.content
    assert len(body) == size and hashlib.sha256(body).hexdigest() == sha256

    # The tar.gz holds a mongodump directory whose .bson files pymongo's decoder reads back.
    archive = tarfile.open(fileobj=io.BytesIO(body), mode="r:gz")
    members = {member.name: archive.extractfile(member).read() for member in archive if member.isfile()}
    for line in members["SHA256SUMS"].decode().splitlines():
        digest, member = line.split(maxsplit=1)
        assert hashlib.sha256(members[member.lstrip("*")]).hexdigest() == digest, member
    for ns, state in expected.items():
        db, collection = ns.split(".", 1)
        assert b"".join(state["docs"]) == members[f"{db}/{collection}.bson"], ns
        metadata = bson.json_util.loads(members[f"{db}/{collection}.metadata.json"])
        assert {index["name"]: index for index in metadata["indexes"]} == state["indexes"], ns
    # The link did one complete download: no second one.
    assert requests.get(url).status_code == 410

    # The archive format, decoded by a reader written from mongo-tools' spec.
    second = post_restore(api, group, name, {"deliveryType": "download", "snapshotId": snapshot["id"]})
    second_url = wait_job(api, group, name, second["id"])["deliveryUrl"][0]
    archived = requests.get(second_url, params={"format": "archive"})
    assert archived.status_code == 200
    header, documents, crcs = read_archive(archived.content)
    assert header["server_version"] == "8.0.4"
    for ns, state in expected.items():
        assert documents.get(ns, []) == state["docs"], ns
        crc = 0
        for doc in state["docs"]:
            crc = crc64_xz(doc, crc)
        assert crcs[ns] & 0xFFFFFFFFFFFFFFFF == crc, ns

    # Cancelling revokes a link at once.
    third = post_restore(api, group, name, {"deliveryType": "download", "snapshotId": snapshot["id"]})
    third_url = wait_job(api, group, name, third["id"])["deliveryUrl"][0]
    expect(api.delete(f"{backup_prefix(group, name)}/restoreJobs/{third['id']}"), 204)
    assert requests.get(third_url).status_code in (404, 410)
    assert requests.get(third_url.replace("/downloads/", "/downloads/x")).status_code == 404


def consecutive_free_ports(count: int) -> int:
    """The first of `count` consecutive free ports: clusters' replica sets take the first free
    port from `--cluster-port-base` + their shard index, in order of creation."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        sockets = [socket.socket() for _ in range(count)]
        try:
            for offset, sock in enumerate(sockets):
                sock.bind(("127.0.0.1", port + offset))
            return port
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise AssertionError(f"no {count} consecutive free ports")


def tar_members(body: bytes) -> dict[str, bytes]:
    archive = tarfile.open(fileobj=io.BytesIO(body), mode="r:gz")
    return {member.name: archive.extractfile(member).read() for member in archive if member.isfile()}


def test_a_sharded_cluster_downloads_one_file_per_replica_set_and_restores_each(tmp_path: Path) -> None:
    base = consecutive_free_ports(4)
    with own_server(tmp_path, ["--cluster-port-base", str(base)]) as (server, api):
        group = server.group_id
        create_cluster(api, group, "Sharded", sharded=True)
        first_uri = wait_cluster_uri(api, group, "Sharded")
        assert f"127.0.0.1:{base}/" in first_uri, first_uri
        shards = [client(first_uri), client(f"mongodb://127.0.0.1:{base + 1}/?replicaSet=atlas-sharded-shard-1")]
        shards[0].app.items.insert_many([{"_id": i, "shard": 0} for i in range(50)])
        shards[1].app.items.insert_many([{"_id": i, "shard": 1, "pad": "x" * i} for i in range(30)])
        shards[1].only.here.insert_one({"_id": "shard-1"})
        expected = [cluster_state(shard) for shard in shards]
        assert expected[0] != expected[1]
        snapshot = take_snapshot(api, group, "Sharded")

        job = post_restore(api, group, "Sharded", {"deliveryType": "download", "snapshotId": snapshot["id"]})
        ended = wait_job(api, group, "Sharded", job["id"])
        assert not ended["failed"], ended
        sets = ["atlas-sharded-shard-0", "atlas-sharded-shard-1"]
        assert [component["replicaSetName"] for component in ended["components"]] == sets, ended
        urls = [component["downloadUrl"] for component in ended["components"]]
        assert ended["deliveryUrl"] == urls
        for url, name in zip(urls, sets):
            assert url.endswith(f"/restore-{snapshot['id']}-{name}.tar.gz"), url
        # Only the files the job names serve.
        assert requests.head(urls[0].rsplit("/", 1)[0] + f"/restore-{snapshot['id']}.tar.gz").status_code == 404

        # Each replica set's file holds that replica set's data, and serves once.
        for index, (url, state) in enumerate(zip(urls, expected)):
            head = requests.head(url)
            assert head.status_code == 200
            got = requests.get(url)
            assert got.status_code == 200
            assert hashlib.sha256(got.content).hexdigest() == head.headers["x-content-sha256"]
            members = tar_members(got.content)
            dumped = {name[: -len(".bson")].replace("/", ".", 1) for name in members if name.endswith(".bson")}
            assert dumped == set(state), (dumped, set(state))
            for ns, collection in state.items():
                db, name = ns.split(".", 1)
                assert b"".join(collection["docs"]) == members[f"{db}/{name}.bson"], ns
            assert requests.get(url).status_code == 410
            # The other replica set's file is unaffected by this one's download.
            for later in urls[index + 1 :]:
                assert requests.head(later).status_code == 200

        # An automated restore into another sharded cluster restores each replica set.
        create_cluster(api, group, "ShardedCopy", sharded=True)
        copy_uri = wait_cluster_uri(api, group, "ShardedCopy")
        assert f"127.0.0.1:{base + 2}/" in copy_uri, copy_uri
        copies = [client(copy_uri), client(f"mongodb://127.0.0.1:{base + 3}/?replicaSet=atlas-shardedcopy-shard-1")]
        copies[1].stale.data.insert_one({"_id": "replaced"})
        restored = wait_job(
            api, group, "Sharded",
            post_restore(api, group, "Sharded", {
                "deliveryType": "automated", "snapshotId": snapshot["id"],
                "targetClusterName": "ShardedCopy", "targetGroupId": group,
            })["id"],
        )
        assert not restored["failed"], restored
        assert [cluster_state(copy) for copy in copies] == expected


def test_deleting_a_cluster_removes_its_backups(tmp_path: Path) -> None:
    """Snapshot chunks and captured oplog go with their cluster; another cluster's stay."""
    with own_server(tmp_path, ["--lease-seconds", "1"]) as (server, api):
        group = server.group_id
        ids = {}
        for name in ("Doomed", "Kept"):
            ids[name] = create_cluster(api, group, name, pit=True)["id"]
            client(wait_cluster_uri(api, group, name)).app.items.insert_many([{"_id": i} for i in range(100)])
            take_snapshot(api, group, name)

        def stored(name: str) -> list[Path]:
            root = server.data_dir / "blobs" / "clusters" / ids[name]
            return sorted(path for path in root.rglob("*") if path.is_file())

        kept = stored("Kept")
        assert stored("Doomed") and kept
        expect(api.delete(f"/api/atlas/v2/groups/{group}/clusters/Doomed", version=V_CLUSTERS), 202)
        deadline = time.time() + 30
        while stored("Doomed"):
            assert time.time() < deadline, stored("Doomed")
            time.sleep(0.5)
        assert set(kept) <= set(stored("Kept"))
        assert "deleted cluster's backups removed" in server.stderr_path.read_text()


def test_an_expired_link_is_refused(tmp_path: Path) -> None:
    with own_server(tmp_path, ["--download-link-seconds", "1"]) as (server, api):
        create_cluster(api, server.group_id, "Expiring")
        client(wait_cluster_uri(api, server.group_id, "Expiring")).a.b.insert_one({"x": 1})
        snapshot = take_snapshot(api, server.group_id, "Expiring")
        job = post_restore(api, server.group_id, "Expiring", {"deliveryType": "download", "snapshotId": snapshot["id"]})
        url = wait_job(api, server.group_id, "Expiring", job["id"])["deliveryUrl"][0]
        time.sleep(1.5)
        assert requests.get(url).status_code in (404, 410)
        deadline = time.time() + 15
        while not expect(api.get(f"{backup_prefix(server.group_id, 'Expiring')}/restoreJobs/{job['id']}"), 200)["expired"]:
            assert time.time() < deadline, "the job never reported expired"
            time.sleep(0.5)


def test_a_corrupt_blob_fails_the_job_and_leaves_the_target_untouched(api: AtlasClient, server) -> None:
    group = server.group_id
    source_name, target_name = unique("CorSrc"), unique("CorDst")
    source_cluster = create_cluster(api, group, source_name)
    create_cluster(api, group, target_name)
    client(wait_cluster_uri(api, group, source_name)).data.docs.insert_many([{"_id": i} for i in range(100)])
    target = client(wait_cluster_uri(api, group, target_name))
    target.kept.docs.insert_one({"_id": "untouched"})
    before = cluster_state(target)
    snapshot = take_snapshot(api, group, source_name)
    chunks = list((server.data_dir / "blobs" / "clusters" / source_cluster["id"]).rglob("chunks/*/*"))
    assert chunks, "the snapshot stored chunks"
    for chunk in chunks:
        raw = bytearray(chunk.read_bytes())
        raw[-1] ^= 0xFF
        chunk.write_bytes(bytes(raw))

    job = post_restore(
        api, group, source_name,
        {"deliveryType": "automated", "snapshotId": snapshot["id"], "targetClusterName": target_name, "targetGroupId": group},
    )
    ended = wait_job(api, group, source_name, job["id"])
    assert ended["failed"], ended
    assert "corrupt" in ended.get("failureReason", "") or "checksum" in str(ended), ended
    target = client(wait_cluster_uri(api, group, target_name))
    assert cluster_state(target) == before


def test_kill_9_during_an_automated_restore_leaves_old_or_new_data_wholly(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    flags = ["--lease-seconds", "2"]
    server = start_server(data_dir, tmp_path / "logs", [*flags, "--fault-restore-delay-ms", "5000"])
    api = AtlasClient(server.base_url, HTTPDigestAuth(server.public_key, server.private_key))
    group = server.group_id
    try:
        create_cluster(api, group, "KillSrc")
        create_cluster(api, group, "KillDst")
        write_varied_data(client(wait_cluster_uri(api, group, "KillSrc")))
        expected = cluster_state(client(wait_cluster_uri(api, group, "KillSrc")))
        client(wait_cluster_uri(api, group, "KillDst")).old.data.insert_many([{"_id": i} for i in range(10)])
        old = cluster_state(client(wait_cluster_uri(api, group, "KillDst")))
        snapshot = take_snapshot(api, group, "KillSrc")
        job = post_restore(
            api, group, "KillSrc",
            {"deliveryType": "automated", "snapshotId": snapshot["id"], "targetClusterName": "KillDst", "targetGroupId": group},
        )
        deadline = time.time() + 30
        while expect(api.get(f"{backup_prefix(group, 'KillSrc')}/restoreJobs/{job['id']}"), 200).get("progress") is None:
            # The job is running once the target refuses commands.
            try:
                client(wait_cluster_uri(api, group, "KillDst")).admin.command("ping")
            except pymongo.errors.PyMongoError:
                break
            assert time.time() < deadline, "the restore never started"
            time.sleep(0.1)
    finally:
        server.proc.kill()
        server.proc.wait(timeout=10)

    restarted = start_server(data_dir, tmp_path / "logs", flags)
    try:
        api = AtlasClient(restarted.base_url, HTTPDigestAuth(restarted.public_key, restarted.private_key))
        state = cluster_state(client(wait_cluster_uri(api, group, "KillDst")))
        assert state in (old, expected), "old or new data, never a mix"
        ended = wait_job(api, group, "KillSrc", job["id"], timeout=60)
        assert ended["finishedAt"] and not ended["failed"], ended
        assert cluster_state(client(wait_cluster_uri(api, group, "KillDst"))) == expected
    finally:
        assert restarted.stop() == 0


def test_a_point_in_time_across_a_restore_is_refused_until_a_new_snapshot(tmp_path: Path) -> None:
    """Atlas refuses points in time between the start of a restore and the completion of the
    snapshot taken after it; so does rewind, at request time. Snapshots are slowed down so
    that the one after the restore completes seconds after the swap."""
    with own_server(tmp_path, ["--fault-snapshot-delay-ms", "2500"]) as (server, api):
        group = server.group_id
        create_cluster(api, group, "Timeline", pit=True)
        create_cluster(api, group, "Elsewhere")
        mongo = client(wait_cluster_uri(api, group, "Timeline"))
        mongo.app.items.insert_many([{"_id": i} for i in range(20)])
        snapshot = take_snapshot(api, group, "Timeline")
        mongo.app.items.insert_many([{"_id": i} for i in range(20, 40)])
        restored = wait_job(
            api, group, "Timeline",
            post_restore(api, group, "Timeline", {
                "deliveryType": "automated", "snapshotId": snapshot["id"],
                "targetClusterName": "Timeline", "targetGroupId": group,
            })["id"],
        )
        assert not restored["failed"], restored
        swapped = _parse_utc(restored["finishedAt"])

        pit = {"deliveryType": "pointInTime", "targetClusterName": "Elsewhere", "targetGroupId": group}
        refused = api.post(f"{backup_prefix(group, 'Timeline')}/restoreJobs", {**pit, "pointInTimeUTCSeconds": swapped})
        body = expect(refused, 400)
        assert body["errorCode"] == "INVALID_PIT_RESTORE_TIME", body
        assert "pointInTimeUTCSeconds" in body["detail"] and "restore" in body["detail"], body

        # The snapshot Atlas takes after a restore re-opens point-in-time restores after it.
        deadline = time.time() + 30
        while True:
            snaps = expect(api.get(f"{backup_prefix(group, 'Timeline')}/snapshots"), 200)["results"]
            after = [s for s in snaps if s.get("description") == "after restore" and s["status"] == "completed"]
            if after:
                break
            assert time.time() < deadline, snaps
            time.sleep(0.2)
        rebased = _parse_utc(after[0]["createdAt"])
        still_refused = api.post(
            f"{backup_prefix(group, 'Timeline')}/restoreJobs", {**pit, "pointInTimeUTCSeconds": rebased - 1}
        )
        assert expect(still_refused, 400)["errorCode"] == "INVALID_PIT_RESTORE_TIME"
        time.sleep(3)  # capture covers the target second's end
        accepted = post_restore(api, group, "Timeline", {**pit, "pointInTimeUTCSeconds": rebased + 1})
        ended = wait_job(api, group, "Timeline", accepted["id"])
        assert not ended["failed"], ended
        assert sorted(d["_id"] for d in client(wait_cluster_uri(api, group, "Elsewhere")).app.items.find()) == list(range(20))


def _parse_utc(text: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
