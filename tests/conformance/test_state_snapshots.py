"""State snapshots through tools nobody here wrote: curl takes a snapshot over REST and puts
it back after a reset; grpcurl reads the same snapshot from the server-streaming
ExportState (its google.api.HttpBody parts joined); a snapshot of a newer schema is
refused naming both versions and changes nothing."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time

import pytest
import requests

from conftest import _start_api
from helpers import OP_TIMEOUT, POLL_INTERVAL, unique_folder
from test_grpcurl import grpcurl  # noqa: F401  (the fixture)


@pytest.fixture(scope="module")
def admin(tmp_path_factory):
    server, channel, api = _start_api("admin", "0s", tmp_path_factory, extra_args=("--enable-admin",))
    yield api
    channel.close()
    server.stop()


def rows(snapshot: bytes) -> list[str]:
    """The rows of a snapshot, without the replica's hold on running operations, sorted."""
    found = []
    for line in snapshot.decode().splitlines()[1:]:
        row = json.loads(line)
        if row["table"] == "operations":
            row["row"].pop("owner")
            row["row"].pop("lease_until_ms")
        found.append(json.dumps(row, sort_keys=True))
    return sorted(found)


def curl(*args: str) -> subprocess.CompletedProcess:
    path = shutil.which("curl")
    assert path, "curl is not installed"
    return subprocess.run([path, "-sS", "--fail-with-body", *args], capture_output=True, timeout=60)


def test_curl_takes_a_snapshot_and_puts_it_back_and_grpcurl_reads_the_same(admin, grpcurl, tmp_path):  # noqa: F811
    base = f"http://{admin.addr}"
    folder = unique_folder()
    created = requests.post(f"{base}/compute/v1/disks", timeout=30, json={
        "folderId": folder, "name": "kept", "zoneId": "ru-central1-a", "size": "4194304"}).json()
    deadline = time.monotonic() + OP_TIMEOUT
    while not created["done"]:
        assert time.monotonic() < deadline
        time.sleep(POLL_INTERVAL)
        created = requests.get(f"{base}/operations/{created['id']}", timeout=30).json()

    taken = curl("-D", str(tmp_path / "headers"), f"{base}/imageplane/v1/state")
    assert taken.returncode == 0, taken.stderr
    snapshot = taken.stdout
    assert "content-type: application/x-ndjson" in (tmp_path / "headers").read_text().lower()
    header = json.loads(snapshot.splitlines()[0])
    assert (header["imageplaneState"], header["schema"]) == (1, 4), header
    assert any(json.loads(line)["row"].get("name") == "kept" for line in snapshot.splitlines()[1:])

    # grpcurl prints each streamed HttpBody as JSON, `data` in base64.
    out = grpcurl(admin.addr, "imageplane.v1.AdminService/ExportState", data={}).stdout
    decoder, parts, at = json.JSONDecoder(), [], 0
    while at < len(out.strip()):
        part, at = decoder.raw_decode(out, at)
        parts.append(part)
        while at < len(out) and out[at].isspace():
            at += 1
    assert parts[0]["contentType"] == "application/x-ndjson", parts[0]
    streamed = b"".join(base64.b64decode(part.get("data", "")) for part in parts)
    assert rows(streamed) == rows(snapshot)

    # Reset, then put the snapshot back: the disk is there again.
    assert requests.post(f"{base}/imageplane/v1/reset", timeout=30).status_code == 200
    assert requests.get(f"{base}/compute/v1/disks?folderId={folder}", timeout=30).json().get("disks", []) == []
    file = tmp_path / "state.ndjson"
    file.write_bytes(snapshot)
    put = curl("-X", "PUT", "--data-binary", f"@{file}", f"{base}/imageplane/v1/state")
    assert put.returncode == 0, put.stdout + put.stderr
    assert json.loads(put.stdout)["snapshotSchema"] == "4"
    names = [disk["name"] for disk in requests.get(f"{base}/compute/v1/disks?folderId={folder}", timeout=30).json()["disks"]]
    assert names == ["kept"]

    # A snapshot of a newer schema: 400 naming both versions, nothing changed.
    file.write_bytes(snapshot.replace(b'"schema":4', b'"schema":9', 1))
    refused = curl("-X", "PUT", "--data-binary", f"@{file}", f"{base}/imageplane/v1/state")
    assert refused.returncode != 0
    error = json.loads(refused.stdout)
    assert error["code"] == 3 and "schema version 9" in error["message"] and "(4" in error["message"], error
    assert rows(curl(f"{base}/imageplane/v1/state").stdout) == rows(snapshot)
