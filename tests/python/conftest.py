"""Shared fixtures for the Python (black-box) half of rewind's test suite.

Everything here talks to a real `rewind serve` process over a real socket:
no mocks, no in-process shortcuts.

* `server` (session): starts `$REWIND_BIN serve --listen 127.0.0.1:0` on a
  fresh data dir, parses the `rewind: listening on URL` line, reads
  `bootstrap-credentials.json`, and at the end sends SIGTERM and asserts the
  process exits 0.
* `api` (session): an `AtlasClient` bound to that server with the bootstrap
  Organization Owner key (HTTP Digest).
* `world` (session): a populated project (replica set with backup + PIT, a
  completed snapshot, one restore job of each delivery type, and a 2-shard
  sharded cluster with a completed snapshot).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from requests.auth import HTTPDigestAuth

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO_ROOT / "target" / "debug" / "rewind"
# `../shared/reference` sits beside the clone, both here and in CI.
REFERENCE_DIR = REPO_ROOT.parent / "shared" / "reference"

V2023 = "2023-01-01"  # restore jobs, snapshots, groups, orgs, apiKeys, schedule (old)
V_CLUSTERS = "2024-08-05"  # clusters (also the new schedule version)
V_SCHEDULE_NEW = "2024-08-05"
V_SERVICE_ACCOUNTS = "2024-08-01"
V_FLEX = "2024-11-13"

STARTUP_TIMEOUT = 30.0

_HYPOTHESIS_HOME: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    # Hypothesis (under schemathesis) keeps caches in ./.hypothesis by default;
    # keep the work tree clean by pointing it at a throw-away directory.
    global _HYPOTHESIS_HOME
    if os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        return
    import tempfile

    from hypothesis.configuration import set_hypothesis_home_dir

    _HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="rewind-hypothesis-")
    set_hypothesis_home_dir(_HYPOTHESIS_HOME)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _HYPOTHESIS_HOME:
        import shutil

        shutil.rmtree(_HYPOTHESIS_HOME, ignore_errors=True)


def media_type(version: str) -> str:
    return f"application/vnd.atlas.{version}+json"


def rewind_bin() -> Path:
    return Path(os.environ.get("REWIND_BIN", str(DEFAULT_BIN)))


# --------------------------------------------------------------------------
# Server process
# --------------------------------------------------------------------------


@dataclass
class ServerProcess:
    proc: subprocess.Popen
    base_url: str
    data_dir: Path
    stderr_path: Path
    stdout_lines: list[str]
    creds: dict[str, str]

    @property
    def org_id(self) -> str:
        return self.creds["orgId"]

    @property
    def group_id(self) -> str:
        return self.creds["groupId"]

    @property
    def public_key(self) -> str:
        return self.creds["publicKey"]

    @property
    def private_key(self) -> str:
        return self.creds["privateKey"]

    def stderr_tail(self, n: int = 4000) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-n:]
        except OSError:
            return "<no stderr>"

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM the process and return its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                raise AssertionError(
                    f"rewind did not exit within {timeout}s of SIGTERM; stderr tail:\n{self.stderr_tail()}"
                )
        return self.proc.returncode


def start_server(data_dir: Path, log_dir: Path, extra_args: list[str] | None = None) -> ServerProcess:
    """Start `rewind serve` on an ephemeral port and wait for its listening line."""
    binary = rewind_bin()
    if not binary.exists():
        pytest.fail(f"rewind binary not found at {binary} (build with `cargo build` or set REWIND_BIN)")
    log_dir.mkdir(parents=True, exist_ok=True)
    stderr_path = log_dir / f"rewind-{int(time.time() * 1000)}.stderr.log"
    stderr_file = open(stderr_path, "wb")
    cmd = [str(binary), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir), *(extra_args or [])]
    env = dict(os.environ)
    # Make sure nothing in the environment redirects the service elsewhere.
    for var in ("REWIND_LISTEN", "REWIND_DATA_DIR", "REWIND_CONFIG", "REWIND_PUBLIC_URL"):
        env.pop(var, None)
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr_file,
        env=env,
    )
    stderr_file.close()

    lines: list[str] = []
    found: "queue.Queue[str]" = queue.Queue()

    def pump() -> None:
        # Keep draining stdout for the whole life of the process so it can
        # never block on a full pipe.
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            lines.append(line)
            if line.startswith("rewind: listening on "):
                found.put(line[len("rewind: listening on ") :].strip())
        found.put("")  # EOF marker

    threading.Thread(target=pump, name="rewind-stdout", daemon=True).start()

    try:
        url = found.get(timeout=STARTUP_TIMEOUT)
    except queue.Empty:
        proc.kill()
        proc.wait()
        raise AssertionError(
            f"rewind printed no 'listening on' line within {STARTUP_TIMEOUT}s; stdout={lines!r}; "
            f"stderr:\n{stderr_path.read_text(errors='replace')[-4000:]}"
        )
    if not url:
        proc.wait(timeout=10)
        raise AssertionError(
            f"rewind exited (rc={proc.returncode}) before listening; stdout={lines!r}; "
            f"stderr:\n{stderr_path.read_text(errors='replace')[-4000:]}"
        )
    assert url.startswith("http://127.0.0.1:"), url
    creds_path = data_dir / "bootstrap-credentials.json"
    creds = json.loads(creds_path.read_text())
    for key in ("orgId", "groupId", "apiKeyId", "publicKey", "privateKey"):
        assert creds.get(key), f"bootstrap-credentials.json lacks {key}: {creds}"
    return ServerProcess(proc, url.rstrip("/"), data_dir, stderr_path, lines, creds)


@contextlib.contextmanager
def own_server(tmp_path: Path, extra_args: list[str]) -> Iterator[tuple[ServerProcess, "AtlasClient"]]:
    """A server of the test's own, started with `extra_args`, and a Digest client of it; it
    must stop cleanly on SIGTERM at the end."""
    server = start_server(tmp_path / "data", tmp_path / "logs", extra_args)
    try:
        yield server, AtlasClient(server.base_url, HTTPDigestAuth(server.public_key, server.private_key))
    finally:
        assert server.stop() == 0, f"rewind did not stop cleanly; stderr tail:\n{server.stderr_tail()}"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("rewind")
    # Restores hold a second before their swap, so a test can see a restore in progress.
    srv = start_server(root / "data", root / "logs", ["--fault-restore-delay-ms", "1000"])
    yield srv
    rc = srv.stop()
    assert rc == 0, f"rewind exited with {rc} after SIGTERM; stderr tail:\n{srv.stderr_tail()}"


# --------------------------------------------------------------------------
# HTTP client
# --------------------------------------------------------------------------

_DEFAULT = object()


def NO_AUTH(r: requests.PreparedRequest) -> requests.PreparedRequest:
    """An auth hook that adds nothing (`auth=None` would fall back to the session's auth)."""
    return r


class AtlasClient:
    """Thin wrapper over `requests` that speaks the Atlas v2 conventions."""

    def __init__(self, base_url: str, auth: Any = None):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.auth = auth
        # Every response this client saw, for the schema-validation sweep.
        self.log: list[requests.Response] = []

    def request(
        self,
        method: str,
        path: str,
        *,
        version: str | None = V2023,
        json_body: Any = _DEFAULT,
        data: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        auth: Any = _DEFAULT,
        timeout: float = 30.0,
        log: bool = True,
    ) -> requests.Response:
        hdrs: dict[str, str] = {}
        if version is not None:
            hdrs["Accept"] = media_type(version)
        body = data
        if json_body is not _DEFAULT:
            body = json.dumps(json_body)
            hdrs["Content-Type"] = media_type(version) if version else "application/json"
        if headers:
            hdrs.update(headers)
        kwargs: dict[str, Any] = {}
        if auth is not _DEFAULT:
            kwargs["auth"] = auth
        url = path if path.startswith("http") else self.base_url + path
        resp = self.session.request(method, url, headers=hdrs, data=body, params=params, timeout=timeout, **kwargs)
        if log:
            self.log.append(resp)
        return resp

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = _DEFAULT, **kw: Any) -> requests.Response:
        return self.request("POST", path, json_body=body, **kw)

    def patch(self, path: str, body: Any = _DEFAULT, **kw: Any) -> requests.Response:
        return self.request("PATCH", path, json_body=body, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.request("DELETE", path, **kw)


def expect(resp: requests.Response, status: int) -> Any:
    """Assert the status and return the decoded JSON body (or None)."""
    assert resp.status_code == status, (
        f"{resp.request.method} {resp.request.url} -> {resp.status_code} (expected {status}): {resp.text[:2000]}"
    )
    if resp.content:
        return resp.json()
    return None


@pytest.fixture(scope="session")
def digest_auth(server: ServerProcess) -> HTTPDigestAuth:
    return HTTPDigestAuth(server.public_key, server.private_key)


@pytest.fixture(scope="session")
def api(server: ServerProcess, digest_auth: HTTPDigestAuth) -> AtlasClient:
    return AtlasClient(server.base_url, digest_auth)


# --------------------------------------------------------------------------
# Resource helpers
# --------------------------------------------------------------------------


def cluster_body(name: str, *, sharded: bool = False, pit: bool = False, backup: bool = True) -> dict:
    region = {
        "providerName": "AWS",
        "regionName": "US_EAST_1",
        "priority": 7,
        "electableSpecs": {"instanceSize": "M30" if sharded else "M10", "nodeCount": 3},
    }
    specs = [{"regionConfigs": [dict(region)]} for _ in range(2 if sharded else 1)]
    return {
        "name": name,
        "clusterType": "SHARDED" if sharded else "REPLICASET",
        "backupEnabled": backup,
        "pitEnabled": pit,
        "replicationSpecs": specs,
    }


def backup_prefix(group_id: str, cluster: str) -> str:
    return f"/api/atlas/v2/groups/{group_id}/clusters/{cluster}/backup"


def create_cluster(api: AtlasClient, group_id: str, name: str, **kw: Any) -> dict:
    resp = api.post(f"/api/atlas/v2/groups/{group_id}/clusters", cluster_body(name, **kw), version=V_CLUSTERS)
    return expect(resp, 201)


def take_snapshot(api: AtlasClient, group_id: str, cluster: str, description: str = "pytest") -> dict:
    resp = api.post(f"{backup_prefix(group_id, cluster)}/snapshots", {"description": description, "retentionInDays": 1})
    return expect(resp, 200)


def wait_snapshot(api: AtlasClient, group_id: str, cluster: str, snapshot_id: str, timeout: float = 15.0) -> dict:
    """Poll GET snapshot until it is completed (the worker needs ~0.5 s)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = expect(api.get(f"{backup_prefix(group_id, cluster)}/snapshots/{snapshot_id}"), 200)
        if last["status"] == "completed":
            return last
        assert last["status"] in ("queued", "inProgress"), last
        time.sleep(0.1)
    raise AssertionError(f"snapshot {snapshot_id} not completed after {timeout}s: {last}")


def completed_snapshot(api: AtlasClient, group_id: str, cluster: str, description: str = "pytest") -> dict:
    snap = take_snapshot(api, group_id, cluster, description)
    return wait_snapshot(api, group_id, cluster, snap["id"])


# --------------------------------------------------------------------------
# The populated world
# --------------------------------------------------------------------------


@dataclass
class World:
    group_id: str
    org_id: str
    cluster: str  # replica set, backup + PIT
    snapshot: dict  # completed snapshot of `cluster`
    take_response: dict  # the 200 body of the POST /snapshots that made it
    jobs: dict[str, dict]  # deliveryType -> create (POST) response body
    sharded_cluster: str
    sharded_snapshot: dict  # completed snapshot of `sharded_cluster` (GET P/snapshots/{id} body)
    sharded_take_response: dict
    targets: dict[str, str] = field(default_factory=dict)
    # The raw HTTP responses of the creating requests (for header/schema checks).
    responses: dict[str, requests.Response] = field(default_factory=dict)

    def prefix(self, cluster: str | None = None) -> str:
        return backup_prefix(self.group_id, cluster or self.cluster)


@pytest.fixture(scope="session")
def world(api: AtlasClient, server: ServerProcess) -> World:
    g = server.group_id
    create_cluster(api, g, "Cluster0", pit=True)
    # Automated and PIT restores overwrite their target, and a target with a
    # restore in progress refuses another one; give each its own target.
    create_cluster(api, g, "TargetAuto")
    create_cluster(api, g, "TargetPit")
    create_cluster(api, g, "Sharded0", sharded=True)

    take = take_snapshot(api, g, "Cluster0", "world snapshot")
    responses = {"take": api.log[-1]}
    snap = wait_snapshot(api, g, "Cluster0", take["id"])

    sharded_take = take_snapshot(api, g, "Sharded0", "world sharded snapshot")
    responses["sharded_take"] = api.log[-1]
    wait_snapshot(api, g, "Sharded0", sharded_take["id"])
    sharded = expect(api.get(f"{backup_prefix(g, 'Sharded0')}/snapshots/shardedCluster/{sharded_take['id']}"), 200)

    p = backup_prefix(g, "Cluster0")
    jobs: dict[str, dict] = {}
    jobs["automated"] = expect(
        api.post(
            f"{p}/restoreJobs",
            {"deliveryType": "automated", "snapshotId": snap["id"], "targetClusterName": "TargetAuto", "targetGroupId": g},
        ),
        200,
    )
    responses["job:automated"] = api.log[-1]
    jobs["download"] = expect(api.post(f"{p}/restoreJobs", {"deliveryType": "download", "snapshotId": snap["id"]}), 200)
    responses["job:download"] = api.log[-1]

    # A point in time strictly after the completed snapshot and not in the future.
    created = _parse_ts(snap["createdAt"])
    while int(time.time()) - 1 <= created:
        time.sleep(0.1)
    pit_seconds = int(time.time()) - 1
    jobs["pointInTime"] = expect(
        api.post(
            f"{p}/restoreJobs",
            {
                "deliveryType": "pointInTime",
                "targetClusterName": "TargetPit",
                "targetGroupId": g,
                "pointInTimeUTCSeconds": pit_seconds,
            },
        ),
        200,
    )
    responses["job:pointInTime"] = api.log[-1]
    return World(
        group_id=g,
        org_id=server.org_id,
        cluster="Cluster0",
        snapshot=snap,
        take_response=take,
        jobs=jobs,
        sharded_cluster="Sharded0",
        sharded_snapshot=sharded,
        sharded_take_response=sharded_take,
        targets={"automated": "TargetAuto", "pointInTime": "TargetPit"},
        responses=responses,
    )


def _parse_ts(value: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())


# --------------------------------------------------------------------------
# Reference specs
# --------------------------------------------------------------------------


def reference_file(name: str) -> Path:
    path = REFERENCE_DIR / name
    if not path.is_file():
        pytest.skip(
            f"reference spec {name} not found at {path} (expected ../shared/reference beside the repo clone); "
            "schema checks need it"
        )
    return path


# --------------------------------------------------------------------------
# Live clusters (MongoDB drivers)
# --------------------------------------------------------------------------

def wait_cluster_uri(api: AtlasClient, group_id: str, name: str, timeout: float = 20.0) -> str:
    """Wait until the cluster is IDLE and served; return `connectionStrings.standard`."""
    deadline = time.time() + timeout
    while True:
        body = expect(api.get(f"/api/atlas/v2/groups/{group_id}/clusters/{name}", version=V_CLUSTERS), 200)
        uri = body.get("connectionStrings", {}).get("standard")
        if body["stateName"] == "IDLE" and uri:
            return uri
        assert time.time() < deadline, f"cluster {name} never served: {body}"
        time.sleep(0.1)


_cluster_names = itertools.count()


@pytest.fixture
def mongo_uri(api: AtlasClient, server: ServerProcess) -> str:
    """A fresh cluster created through the API, as its `connectionStrings.standard`.

    `REWIND_TEST_MONGO_URI` points the driver tests at another server instead (for developing
    the command layer against a bare wire server).
    """
    override = os.environ.get("REWIND_TEST_MONGO_URI")
    if override:
        return override
    name = f"Driver{next(_cluster_names)}-{int(time.time() * 1000) % 100000}"
    create_cluster(api, server.group_id, name, backup=True)
    return wait_cluster_uri(api, server.group_id, name)


@pytest.fixture
def mongo_client(mongo_uri: str) -> Iterator[Any]:
    """pymongo connected to the test's cluster."""
    import pymongo

    client = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=5000)
    yield client
    client.close()


@pytest.fixture
def scratch_db(mongo_client: Any) -> Iterator[Any]:
    """A database of its own for one test, dropped afterwards."""
    name = f"t{next(_cluster_names)}_{os.getpid()}_{int(time.time() * 1000) % 100000}"
    yield mongo_client[name]
    mongo_client.drop_database(name)
