"""HTTP Digest against the live server with independent client implementations.

1. `curl --digest` (subprocess, /usr/bin/curl by default, `$CURL` overrides);
2. Python `requests` + `HTTPDigestAuth`;
3. a hand-built RFC 7616 client (hashlib), which lets the test pick MD5 or
   SHA-256 explicitly, control `nc`/`cnonce`, and replay a header verbatim.

For each: create a restore job through POST /restoreJobs and read it back by
id; a wrong private key gives 401 + `X-Error-Code` + a Digest challenge with
realm "MMS Public API".
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from requests.auth import HTTPDigestAuth

from conftest import (
    NO_AUTH,
    V2023,
    AtlasClient,
    ServerProcess,
    backup_prefix,
    completed_snapshot,
    create_cluster,
    expect,
    media_type,
)

REALM = "MMS Public API"
CURL = os.environ.get("CURL", "/usr/bin/curl")
CLUSTER = "DigestSrc"


@pytest.fixture(scope="module")
def src(api: AtlasClient, server: ServerProcess) -> str:
    """A replica set whose snapshots feed the download jobs created here."""
    create_cluster(api, server.group_id, CLUSTER)
    return backup_prefix(server.group_id, CLUSTER)


def job_count(api: AtlasClient, prefix: str) -> int:
    return expect(api.get(f"{prefix}/restoreJobs"), 200)["totalCount"]


def fresh_snapshot_id(api: AtlasClient, server: ServerProcess) -> str:
    # One active download per snapshot (CANNOT_DOWNLOAD_SNAPSHOT_CONCURRENTLY),
    # so every download job here gets its own snapshot.
    return completed_snapshot(api, server.group_id, CLUSTER, "digest client test")["id"]


def assert_challenge(headers: list[str]) -> dict[str, dict[str, str]]:
    """Parse the `WWW-Authenticate` values; require Digest MD5 + SHA-256 in realm MMS Public API."""
    by_alg: dict[str, dict[str, str]] = {}
    for value in headers:
        assert value.startswith("Digest "), value
        params = dict(
            (k, v1 if v1 else v2) for k, v1, v2 in re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]+))', value[len("Digest ") :])
        )
        assert params.get("realm") == REALM, value
        assert "auth" in params.get("qop", "").split(","), value
        assert params.get("nonce"), value
        by_alg[params.get("algorithm", "MD5").upper()] = params
    assert {"MD5", "SHA-256"} <= set(by_alg), f"challenges offered: {headers}"
    return by_alg


def www_authenticate(resp: requests.Response) -> list[str]:
    return resp.raw.headers.getlist("WWW-Authenticate")


# --------------------------------------------------------------------------
# 1. curl --digest
# --------------------------------------------------------------------------


def curl(server: ServerProcess, method: str, path: str, body: dict | None = None, password: str | None = None):
    if not Path(CURL).exists() and not shutil.which(CURL):
        pytest.skip(f"curl not found at {CURL}")
    args = [
        CURL, "--silent", "--show-error", "--digest",
        "--user", f"{server.public_key}:{password if password is not None else server.private_key}",
        "-X", method,
        "-H", f"Accept: {media_type(V2023)}",
        "--dump-header", "-",
        "--max-time", "30",
    ]
    if body is not None:
        args += ["-H", f"Content-Type: {media_type(V2023)}", "--data-binary", json.dumps(body)]
    args.append(server.base_url + path)
    proc = subprocess.run(args, capture_output=True, timeout=60)
    assert proc.returncode == 0, f"curl failed ({proc.returncode}): {proc.stderr.decode()}"
    out = proc.stdout.decode()
    # --digest makes two exchanges; the dump holds both header blocks. Keep the last.
    blocks = re.split(r"\r?\n\r?\n", out)
    # blocks: [hdr1, body1?, hdr2, body2] -- find the last block that starts with HTTP/
    idx = max(i for i, b in enumerate(blocks) if b.startswith("HTTP/"))
    head = blocks[idx].splitlines()
    status = int(head[0].split()[1])
    headers: dict[str, list[str]] = {}
    for line in head[1:]:
        k, _, v = line.partition(":")
        headers.setdefault(k.strip().lower(), []).append(v.strip())
    text = "\n\n".join(blocks[idx + 1 :]).strip()
    return status, headers, text


def test_curl_digest_create_and_read_back(api: AtlasClient, server: ServerProcess, src: str):
    before = job_count(api, src)
    sid = fresh_snapshot_id(api, server)
    status, headers, text = curl(server, "POST", f"{src}/restoreJobs", {"deliveryType": "download", "snapshotId": sid})
    assert status == 200, text
    assert headers["content-type"] == [f"{media_type(V2023)};charset=utf-8"]
    job = json.loads(text)
    assert job["deliveryType"] == "download" and job["snapshotId"] == sid
    status, _, text = curl(server, "GET", f"{src}/restoreJobs/{job['id']}")
    assert status == 200, text
    assert json.loads(text)["id"] == job["id"]
    # The unauthenticated first leg of curl's Digest exchange created nothing.
    assert job_count(api, src) == before + 1


def test_curl_digest_wrong_password(server: ServerProcess, src: str):
    status, headers, text = curl(server, "GET", f"{src}/restoreJobs", password="wrong-private-key")
    assert status == 401, text
    body = json.loads(text)
    assert headers.get("x-error-code") == [body["errorCode"]]
    assert body["error"] == 401
    assert_challenge(headers.get("www-authenticate", []))


# --------------------------------------------------------------------------
# 2. requests.HTTPDigestAuth
# --------------------------------------------------------------------------


def test_requests_digest_create_and_read_back(api: AtlasClient, server: ServerProcess, src: str):
    before = job_count(api, src)
    sid = fresh_snapshot_id(api, server)
    client = AtlasClient(server.base_url, HTTPDigestAuth(server.public_key, server.private_key))
    job = expect(client.post(f"{src}/restoreJobs", {"deliveryType": "download", "snapshotId": sid}), 200)
    # requests answered a challenge first: the POST went out twice.
    resp = client.log[-1]
    assert [r.status_code for r in resp.history] == [401], resp.history
    got = expect(client.get(f"{src}/restoreJobs/{job['id']}"), 200)
    assert got["id"] == job["id"]
    assert job_count(api, src) == before + 1


def test_requests_digest_wrong_password(server: ServerProcess, src: str):
    client = AtlasClient(server.base_url, HTTPDigestAuth(server.public_key, "wrong-private-key"))
    resp = client.get(f"{src}/restoreJobs")
    assert resp.status_code == 401, resp.text
    body = resp.json()
    assert resp.headers.get("X-Error-Code") == body["errorCode"]
    assert resp.headers["Content-Type"].split(";")[0] == "application/json"
    assert_challenge(www_authenticate(resp))


def test_requests_digest_unknown_user(server: ServerProcess, src: str):
    client = AtlasClient(server.base_url, HTTPDigestAuth("nosuchkey", server.private_key))
    resp = client.get(f"{src}/restoreJobs")
    assert resp.status_code == 401, resp.text
    assert_challenge(www_authenticate(resp))


# --------------------------------------------------------------------------
# 3. Hand-built Digest (MD5 and SHA-256)
# --------------------------------------------------------------------------

HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


def digest_header(
    *, alg: str, chal: dict[str, str], user: str, password: str, method: str, uri: str, nc: int, cnonce: str,
    tamper: bool = False,
) -> str:
    h = lambda s: HASHES[alg](s.encode()).hexdigest()  # noqa: E731
    ha1 = h(f"{user}:{chal['realm']}:{password}")
    ha2 = h(f"{method}:{uri}")
    ncv = f"{nc:08x}"
    response = h(f"{ha1}:{chal['nonce']}:{ncv}:{cnonce}:auth:{ha2}")
    if tamper:
        response = ("0" if response[0] != "0" else "1") + response[1:]
    return (
        f'Digest username="{user}", realm="{chal["realm"]}", nonce="{chal["nonce"]}", uri="{uri}", '
        f'algorithm={alg}, response="{response}", qop=auth, nc={ncv}, cnonce="{cnonce}"'
    )


def raw(server: ServerProcess, method: str, url: str, *, auth_header: str | None = None, body: dict | None = None):
    headers = {"Accept": media_type(V2023)}
    if auth_header:
        headers["Authorization"] = auth_header
    data = None
    if body is not None:
        headers["Content-Type"] = media_type(V2023)
        data = json.dumps(body)
    # A fresh connection per request, no auth handler: every header is ours.
    with requests.Session() as s:
        return s.request(method, url, headers=headers, data=data, auth=NO_AUTH, timeout=30)


@pytest.mark.parametrize("alg", ["MD5", "SHA-256"])
def test_manual_digest_round_trip(api: AtlasClient, server: ServerProcess, src: str, alg: str):
    sid = fresh_snapshot_id(api, server)
    url = f"{server.base_url}{src}/restoreJobs?pretty=false"
    uri = urlsplit(url).path + "?" + urlsplit(url).query
    body = {"deliveryType": "download", "snapshotId": sid}
    before = job_count(api, src)

    # First leg, like the Go SDK: the full body, no credentials -> 401, and no side effect.
    first = raw(server, "POST", url, body=body)
    assert first.status_code == 401, first.text
    assert first.headers.get("X-Error-Code") == first.json()["errorCode"]
    chal = assert_challenge(www_authenticate(first))[alg]
    assert job_count(api, src) == before, "the unauthenticated POST created a restore job"

    cnonce = secrets.token_hex(8)
    hdr = digest_header(alg=alg, chal=chal, user=server.public_key, password=server.private_key,
                        method="POST", uri=uri, nc=1, cnonce=cnonce)
    second = raw(server, "POST", url, auth_header=hdr, body=body)
    assert second.status_code == 200, second.text
    job = second.json()
    assert job["snapshotId"] == sid
    assert job_count(api, src) == before + 1

    # Read it back with a new challenge of the same algorithm.
    get_url = f"{server.base_url}{src}/restoreJobs/{job['id']}"
    chal2 = assert_challenge(www_authenticate(raw(server, "GET", get_url)))[alg]
    hdr2 = digest_header(alg=alg, chal=chal2, user=server.public_key, password=server.private_key,
                         method="GET", uri=urlsplit(get_url).path, nc=1, cnonce=secrets.token_hex(8))
    got = raw(server, "GET", get_url, auth_header=hdr2)
    assert got.status_code == 200, got.text
    assert got.json()["id"] == job["id"]


@pytest.mark.parametrize("alg", ["MD5", "SHA-256"])
def test_manual_digest_replay_refused(server: ServerProcess, src: str, alg: str):
    url = f"{server.base_url}{src}/restoreJobs"
    chal = assert_challenge(www_authenticate(raw(server, "GET", url)))[alg]
    hdr = digest_header(alg=alg, chal=chal, user=server.public_key, password=server.private_key,
                        method="GET", uri=urlsplit(url).path, nc=1, cnonce=secrets.token_hex(8))
    ok = raw(server, "GET", url, auth_header=hdr)
    assert ok.status_code == 200, ok.text
    # Byte-for-byte replay: same nonce, same nc, same cnonce.
    replay = raw(server, "GET", url, auth_header=hdr)
    assert replay.status_code == 401, f"replayed Digest header accepted: {replay.status_code} {replay.text[:300]}"
    assert replay.headers.get("X-Error-Code") == replay.json()["errorCode"]
    assert_challenge(www_authenticate(replay))
    # The same nonce with the next nc is a legitimate follow-up (requests relies on it).
    hdr2 = digest_header(alg=alg, chal=chal, user=server.public_key, password=server.private_key,
                         method="GET", uri=urlsplit(url).path, nc=2, cnonce=secrets.token_hex(8))
    follow = raw(server, "GET", url, auth_header=hdr2)
    assert follow.status_code == 200, follow.text


@pytest.mark.parametrize("alg", ["MD5", "SHA-256"])
def test_manual_digest_bad_response_refused(server: ServerProcess, src: str, alg: str):
    url = f"{server.base_url}{src}/restoreJobs"
    chal = assert_challenge(www_authenticate(raw(server, "GET", url)))[alg]
    hdr = digest_header(alg=alg, chal=chal, user=server.public_key, password=server.private_key,
                        method="GET", uri=urlsplit(url).path, nc=1, cnonce=secrets.token_hex(8), tamper=True)
    resp = raw(server, "GET", url, auth_header=hdr)
    assert resp.status_code == 401, resp.text


def test_manual_digest_uri_must_match_request(server: ServerProcess, src: str):
    """A valid response computed for another URI must not authorize this request."""
    url = f"{server.base_url}{src}/restoreJobs"
    chal = assert_challenge(www_authenticate(raw(server, "GET", url)))["MD5"]
    other = urlsplit(url).path.replace("/restoreJobs", "/snapshots")
    hdr = digest_header(alg="MD5", chal=chal, user=server.public_key, password=server.private_key,
                        method="GET", uri=other, nc=1, cnonce=secrets.token_hex(8))
    resp = raw(server, "GET", url, auth_header=hdr)
    assert resp.status_code in (400, 401), resp.text
    assert resp.status_code != 200


def test_challenge_before_body_keeps_connection_usable_or_says_close(server: ServerProcess, src: str):
    """Digest's first leg is answered 401 before the server reads the request
    body. If the server then drops the keep-alive connection, it must say so
    (`Connection: close`); otherwise a client that sends the authenticated
    second leg on the same connection races the close and fails
    (seen with requests' HTTPDigestAuth: RemoteDisconnected on a POST).
    Deterministic reproduction: the body arrives a moment after the headers."""
    import socket
    import time

    host, port = urlsplit(server.base_url).hostname, urlsplit(server.base_url).port
    body = json.dumps({"description": "x" * 2000, "retentionInDays": 1}).encode()
    head = (
        f"POST {src}/snapshots HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: {media_type(V2023)}\r\n"
        f"Content-Type: {media_type(V2023)}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(head)
        time.sleep(0.2)
        try:
            sock.sendall(body)
        except OSError:
            pass  # already closed: judged by the headers below
        sock.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        status_line, _, rest = data.partition(b"\r\n")
        assert status_line.startswith(b"HTTP/1.1 401"), data[:300]
        headers = {
            k.strip().lower(): v.strip()
            for k, _, v in (line.partition(":") for line in rest.split(b"\r\n\r\n")[0].decode().split("\r\n"))
        }
        length = int(headers.get("content-length", "0"))
        body_start = data.split(b"\r\n\r\n", 1)[1]
        while len(body_start) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body_start += chunk
        if headers.get("connection", "").lower() == "close":
            return  # the server announced the close: correct
        # No close announced: the connection must still serve a request.
        second = f"GET /api/atlas/v2/openapi.json HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
        try:
            sock.sendall(second)
            reply = sock.recv(64)
        except OSError as exc:
            reply = repr(exc).encode()
        assert reply.startswith(b"HTTP/1.1 200"), (
            "401 sent without reading the body and without `Connection: close`, "
            f"then the keep-alive connection was dropped (next request got {reply[:60]!r})"
        )
