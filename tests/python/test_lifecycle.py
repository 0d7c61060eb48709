"""Process lifecycle of `rewind serve`: graceful SIGTERM and restart on the same data dir.

Runs its own server (not the session one) so stopping it cannot disturb the
other modules.
"""

from __future__ import annotations

import json

from requests.auth import HTTPDigestAuth

from conftest import V_CLUSTERS, AtlasClient, create_cluster, expect, start_server


def test_sigterm_exit_zero_and_restart_keeps_state(tmp_path):
    data = tmp_path / "data"
    first = start_server(data, tmp_path / "logs")
    try:
        assert any(line.startswith("rewind: first start") for line in first.stdout_lines), first.stdout_lines
        creds = json.loads((data / "bootstrap-credentials.json").read_text())
        api = AtlasClient(first.base_url, HTTPDigestAuth(creds["publicKey"], creds["privateKey"]))
        create_cluster(api, creds["groupId"], "Durable0")
    finally:
        rc = first.stop()
    assert rc == 0, f"first run exited {rc}: {first.stderr_tail()}"

    second = start_server(data, tmp_path / "logs")
    try:
        # No second bootstrap: same credentials file, no "first start" banner.
        assert not any(line.startswith("rewind: first start") for line in second.stdout_lines), second.stdout_lines
        assert json.loads((data / "bootstrap-credentials.json").read_text()) == creds
        api = AtlasClient(second.base_url, HTTPDigestAuth(creds["publicKey"], creds["privateKey"]))
        body = expect(api.get(f"/api/atlas/v2/groups/{creds['groupId']}/clusters/Durable0", version=V_CLUSTERS), 200)
        assert body["name"] == "Durable0"
    finally:
        rc = second.stop()
    assert rc == 0, f"second run exited {rc}: {second.stderr_tail()}"
