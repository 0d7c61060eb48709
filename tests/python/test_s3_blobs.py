"""Backups in S3: `rewind serve --blob-store s3://bucket/prefix` against a moto S3 server.

A snapshot lands in the bucket (every object with its SHA-256 header), an automated restore
from it into a second cluster brings back exactly the data, and a chunk corrupted or removed
in the bucket makes a restore fail with a reason naming the object, leaving the target as it
was.

moto comes from tests/python/requirements.txt (`.venv/bin/moto_server`, or
$REWIND_TEST_MOTO_SERVER). Without it the test is skipped locally and fails under CI.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from requests.auth import HTTPDigestAuth

from conftest import REPO_ROOT, AtlasClient, create_cluster, start_server, wait_cluster_uri
from restore_helpers import client, cluster_state, post_restore, take_snapshot, wait_job, write_varied_data

BUCKET = "rewind-e2e"
PREFIX = "backups/prod"
# Distinctive, so the test can check it never shows up in a message or a log.
SECRET = "moto-secret-access-key-6f1c"


def moto_server_path() -> str | None:
    configured = os.environ.get("REWIND_TEST_MOTO_SERVER")
    if configured:
        return configured if Path(configured).exists() else None
    for candidate in (Path(sys.executable).parent / "moto_server", REPO_ROOT / ".venv" / "bin" / "moto_server"):
        if candidate.exists():
            return str(candidate)
    return shutil.which("moto_server")


@pytest.fixture
def moto(tmp_path: Path):
    binary = moto_server_path()
    if binary is None:
        message = "moto_server not found (pip install -r tests/python/requirements.txt): S3 test NOT run"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = open(tmp_path / "moto.log", "wb")
    proc = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(port)], stdin=subprocess.DEVNULL, stdout=log, stderr=log
    )
    log.close()
    deadline = time.time() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None, f"moto_server exited: {(tmp_path / 'moto.log').read_text()[-2000:]}"
            assert time.time() < deadline, "moto_server never listened"
            time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def objects(s3, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return keys


def test_backups_live_in_s3_and_a_corrupt_object_fails_the_restore(
    moto: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    for name, value in {
        "AWS_ENDPOINT_URL": moto,
        "AWS_ACCESS_KEY_ID": "moto-key-id",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    s3 = boto3.client("s3")  # from the same environment as the server
    s3.create_bucket(Bucket=BUCKET)

    data_dir = tmp_path / "data"
    server = start_server(data_dir, tmp_path / "logs", ["--blob-store", f"s3://{BUCKET}/{PREFIX}"])
    try:
        api = AtlasClient(server.base_url, HTTPDigestAuth(server.public_key, server.private_key))
        group = server.group_id
        source_cluster = create_cluster(api, group, "S3Src")
        create_cluster(api, group, "S3Dst")
        source = client(wait_cluster_uri(api, group, "S3Src"))
        write_varied_data(source)
        expected = cluster_state(source)
        snapshot = take_snapshot(api, group, "S3Src")
        assert snapshot["storageSizeBytes"] > 0

        # The snapshot is in the bucket, under the prefix, not on local disk.
        cluster_prefix = f"{PREFIX}/clusters/{source_cluster['id']}/"
        stored = objects(s3, cluster_prefix)
        chunks = sorted(key for key in stored if "/chunks/" in key)
        assert chunks, f"no chunk objects under {cluster_prefix}: {stored}"
        assert any(snapshot["id"] in key for key in stored), stored
        assert not (data_dir / "blobs").exists()
        assert all(key.startswith(f"{PREFIX}/") for key in objects(s3, ""))
        # Every object carries the SHA-256 of its payload.
        for key in stored[:20]:
            raw = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            assert raw[:8] == b"RWBLOB1\n", key
            assert hashlib.sha256(raw[40:]).digest() == raw[8:40], key

        # An automated restore from S3 into another cluster brings back exactly the snapshot.
        source.shop.orders.delete_many({})
        job = post_restore(
            api, group, "S3Src",
            {"deliveryType": "automated", "snapshotId": snapshot["id"], "targetClusterName": "S3Dst", "targetGroupId": group},
        )
        ended = wait_job(api, group, "S3Src", job["id"])
        assert not ended["failed"] and ended["finishedAt"], ended
        target = client(wait_cluster_uri(api, group, "S3Dst"))
        assert cluster_state(target) == expected

        # Corrupt one chunk in the bucket: the restore fails, names the object, and leaves the
        # target as it was.
        target.after.restore.insert_one({"_id": "kept"})
        before = cluster_state(target)
        victim = chunks[len(chunks) // 2]
        original = s3.get_object(Bucket=BUCKET, Key=victim)["Body"].read()
        corrupted = bytearray(original)
        corrupted[-1] ^= 0xFF
        s3.put_object(Bucket=BUCKET, Key=victim, Body=bytes(corrupted))
        relative = victim[len(PREFIX) + 1 :]

        def failed_restore() -> str:
            job = post_restore(
                api, group, "S3Src",
                {"deliveryType": "automated", "snapshotId": snapshot["id"], "targetClusterName": "S3Dst", "targetGroupId": group},
            )
            ended = wait_job(api, group, "S3Src", job["id"])
            assert ended["failed"], ended
            reason = ended.get("failureReason") or ""
            assert relative in reason, ended
            assert SECRET not in str(ended)
            assert cluster_state(client(wait_cluster_uri(api, group, "S3Dst"))) == before
            print("restore failed:", reason)
            return reason

        reason = failed_restore()
        assert "corrupt" in reason and "checksum mismatch" in reason, reason

        # A missing object fails it just as clearly.
        s3.put_object(Bucket=BUCKET, Key=victim, Body=original)
        s3.delete_object(Bucket=BUCKET, Key=victim)
        reason = failed_restore()
        assert "missing" in reason, reason
    finally:
        rc = server.stop()
    assert rc == 0, server.stderr_tail()
    assert SECRET not in server.stderr_path.read_text(errors="replace")
