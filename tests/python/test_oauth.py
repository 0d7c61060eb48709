"""Service-account OAuth 2.0 client-credentials flow, end to end over HTTP.

Create a service account (Digest, 2024-08-01) -> POST /api/oauth/token with
HTTP Basic (clientId:secret) -> Bearer calls work -> POST /api/oauth/revoke
-> the same token gets 401.
"""

from __future__ import annotations

import pytest
import requests

from conftest import V2023, V_SERVICE_ACCOUNTS, AtlasClient, ServerProcess, World, expect, media_type, wait_snapshot

TOKEN_PATH = "/api/oauth/token"
REVOKE_PATH = "/api/oauth/revoke"


@pytest.fixture(scope="module")
def service_account(api: AtlasClient, server: ServerProcess) -> dict:
    resp = api.post(
        f"/api/atlas/v2/orgs/{server.org_id}/serviceAccounts",
        {"name": "pytest-sa", "description": "python suite", "roles": ["ORG_OWNER"], "secretExpiresAfterHours": 24},
        version=V_SERVICE_ACCOUNTS,
    )
    body = expect(resp, 201)
    assert resp.headers["Content-Type"] == f"{media_type(V_SERVICE_ACCOUNTS)};charset=utf-8"
    assert body["clientId"] and body["secrets"] and body["secrets"][0]["secret"]
    return {"clientId": body["clientId"], "secret": body["secrets"][0]["secret"]}


def get_token(server: ServerProcess, client_id: str, secret: str, grant_type: str = "client_credentials"):
    return requests.post(
        server.base_url + TOKEN_PATH,
        auth=(client_id, secret),
        data={"grant_type": grant_type},
        timeout=30,
    )


def bearer_get(server: ServerProcess, path: str, token: str, version: str = V2023) -> requests.Response:
    return requests.get(
        server.base_url + path,
        headers={"Authorization": f"Bearer {token}", "Accept": media_type(version)},
        timeout=30,
    )


def test_token_bearer_revoke(api: AtlasClient, server: ServerProcess, service_account: dict, world: World):
    resp = get_token(server, service_account["clientId"], service_account["secret"])
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].split(";")[0] == "application/json"
    tok = resp.json()
    assert tok["token_type"] == "Bearer"
    assert tok["expires_in"] == 3600
    token = tok["access_token"]
    assert isinstance(token, str) and len(token) > 20

    # The bearer token works on project resources (ORG_OWNER covers the project).
    jobs = bearer_get(server, f"{world.prefix()}/restoreJobs", token)
    assert jobs.status_code == 200, jobs.text
    assert {j["id"] for j in world.jobs.values()} <= {j["id"] for j in jobs.json()["results"]}
    group = bearer_get(server, f"/api/atlas/v2/groups/{world.group_id}", token)
    assert group.status_code == 200, group.text
    assert group.json()["id"] == world.group_id

    # ... and for writes.
    snap = requests.post(
        server.base_url + f"{world.prefix()}/snapshots",
        headers={"Authorization": f"Bearer {token}", "Accept": media_type(V2023), "Content-Type": media_type(V2023)},
        json={"description": "taken with a bearer token", "retentionInDays": 1},
        timeout=30,
    )
    assert snap.status_code == 200, snap.text
    # Let it finish: a queued on-demand snapshot blocks the next one on this
    # cluster (UNFINISHED_ON_DEMAND_SNAPSHOT) for later tests.
    wait_snapshot(api, world.group_id, world.cluster, snap.json()["id"])

    revoke = requests.post(
        server.base_url + REVOKE_PATH,
        auth=(service_account["clientId"], service_account["secret"]),
        data={"token": token, "token_type_hint": "access_token"},
        timeout=30,
    )
    assert revoke.status_code == 200, revoke.text

    after = bearer_get(server, f"{world.prefix()}/restoreJobs", token)
    assert after.status_code == 401, after.text
    assert after.headers.get("X-Error-Code") == after.json()["errorCode"]


def test_two_tokens_are_independent(server: ServerProcess, service_account: dict, world: World):
    t1 = get_token(server, service_account["clientId"], service_account["secret"]).json()["access_token"]
    t2 = get_token(server, service_account["clientId"], service_account["secret"]).json()["access_token"]
    assert t1 != t2
    revoke = requests.post(
        server.base_url + REVOKE_PATH,
        auth=(service_account["clientId"], service_account["secret"]),
        data={"token": t1},
        timeout=30,
    )
    assert revoke.status_code == 200, revoke.text
    assert bearer_get(server, f"{world.prefix()}/restoreJobs", t1).status_code == 401
    assert bearer_get(server, f"{world.prefix()}/restoreJobs", t2).status_code == 200


def test_wrong_secret_is_invalid_client(server: ServerProcess, service_account: dict):
    resp = get_token(server, service_account["clientId"], "not-the-secret")
    assert resp.status_code == 401, resp.text
    assert resp.json()["error"] == "invalid_client"


def test_unknown_client_is_invalid_client(server: ServerProcess, service_account: dict):
    resp = get_token(server, "mdb_sa_id_000000000000000000000000", service_account["secret"])
    assert resp.status_code == 401, resp.text
    assert resp.json()["error"] == "invalid_client"


def test_missing_client_credentials(server: ServerProcess):
    resp = requests.post(server.base_url + TOKEN_PATH, data={"grant_type": "client_credentials"}, timeout=30)
    assert resp.status_code == 401, resp.text
    assert resp.json()["error"] == "invalid_client"


def test_wrong_grant_type(server: ServerProcess, service_account: dict):
    resp = get_token(server, service_account["clientId"], service_account["secret"], grant_type="password")
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == "unsupported_grant_type"


def test_garbage_bearer_token(server: ServerProcess, world: World):
    resp = bearer_get(server, f"{world.prefix()}/restoreJobs", "definitely-not-a-token")
    assert resp.status_code == 401, resp.text
    assert resp.headers.get("X-Error-Code") == resp.json()["errorCode"]
