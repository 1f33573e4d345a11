"""The REST gateway as Python's ``requests`` uses it: a client that always sends a JSON
body (``json={}``), asks HEAD, sends header bytes as given, and writes update masks in
the proto's snake_case."""

from __future__ import annotations

import time

import requests

from helpers import OP_TIMEOUT, POLL_INTERVAL, RPC_TIMEOUT, ZONE, unique_folder, unique_name


def base(api) -> str:
    return f"http://{api.addr}"


def create_disk(api, folder: str, headers=None) -> requests.Response:
    return requests.post(
        f"{base(api)}/compute/v1/disks",
        json={"folderId": folder, "zoneId": ZONE, "size": str(1 << 30), "name": unique_name("d")},
        headers=headers or {},
        timeout=RPC_TIMEOUT,
    )


def wait(api, operation: dict) -> dict:
    deadline = time.monotonic() + OP_TIMEOUT
    while time.monotonic() < deadline:
        current = requests.get(f"{base(api)}/operations/{operation['id']}", timeout=RPC_TIMEOUT).json()
        if current["done"]:
            return current
        time.sleep(POLL_INTERVAL)
    raise AssertionError(f"operation {operation['id']} did not finish within {OP_TIMEOUT}s")


def test_cancel_takes_the_empty_json_body_requests_sends(slow):
    created = create_disk(slow, unique_folder())
    assert created.status_code == 200, created.text
    cancelled = requests.post(f"{base(slow)}/operations/{created.json()['id']}:cancel",
                              json={}, timeout=RPC_TIMEOUT)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["done"] is True
    assert cancelled.json()["error"]["code"] == 1


def test_head_answers_as_get_without_a_body(fast):
    created = create_disk(fast, unique_folder())
    disk_id = created.json()["metadata"]["diskId"]
    for path in (f"/compute/v1/disks/{disk_id}", "/compute/v1/disks/fhmnosuchdisk0000000",
                 "/openapi.json"):
        got = requests.get(base(fast) + path, timeout=RPC_TIMEOUT)
        head = requests.head(base(fast) + path, timeout=RPC_TIMEOUT)
        assert head.status_code == got.status_code, path
        assert head.headers["content-length"] == str(len(got.content)), path
        assert head.content == b"", path


def test_a_raw_utf8_idempotency_key_is_refused_not_ignored(fast):
    folder = unique_folder()
    for _ in range(2):
        reply = create_disk(fast, folder, headers={"Idempotency-Key": "ключ-1".encode()})
        assert reply.status_code == 400, reply.text
        assert reply.json()["message"].startswith("idempotency-key: "), reply.text
    listed = requests.get(f"{base(fast)}/compute/v1/disks", params={"folderId": folder},
                          timeout=RPC_TIMEOUT).json()
    assert listed["disks"] == [], "neither call created a disk"


def test_an_update_mask_in_snake_case_updates_only_its_fields(fast):
    folder = unique_folder()
    disk = wait(fast, create_disk(fast, folder).json())["response"]
    url = f"{base(fast)}/compute/v1/disks/{disk['id']}"
    reply = requests.patch(url, json={
        "updateMask": "disk_placement_policy.placement_group_id,description",
        "description": "placed",
        "name": "Not A Name",
        "diskPlacementPolicy": {"placementGroupId": "group-1", "placementGroupPartition": "2"},
    }, timeout=RPC_TIMEOUT)
    assert reply.status_code == 200, reply.text
    updated = requests.get(url, timeout=RPC_TIMEOUT).json()
    assert updated["description"] == "placed"
    assert updated["name"] == disk["name"]
    assert updated["diskPlacementPolicy"] == {"placementGroupId": "group-1",
                                              "placementGroupPartition": "0"}


def test_a_json_key_given_twice_is_refused(fast):
    first, second = unique_folder(), unique_folder()
    body = (f'{{"folderId": "{first}", "folderId": "{second}", "zoneId": "{ZONE}", '
            f'"size": "{1 << 30}"}}')
    reply = requests.post(f"{base(fast)}/compute/v1/disks", data=body,
                          headers={"Content-Type": "application/json"}, timeout=RPC_TIMEOUT)
    assert reply.status_code == 400, reply.text
    assert reply.json()["message"].startswith("folderId: is given twice"), reply.text
