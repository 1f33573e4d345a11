"""The REST gateway as curl sees it: the URLs, JSON and errors of Yandex Cloud's REST API
on the gRPC port, over HTTP/1.1 and HTTP/2 (h2c, prior knowledge)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest

from helpers import OP_TIMEOUT, POLL_INTERVAL, assert_id, unique_folder


@pytest.fixture(scope="session")
def curl():
    path = shutil.which("curl")
    assert path, "curl is not installed"

    def run(method: str, url: str, body: dict | str | None = None, headers=(), flags=()):
        """Runs curl; returns (status, headers dict, parsed JSON body)."""
        cmd = [path, "-sS", "-X", method, "-D", "-", *flags]
        for header in headers:
            cmd += ["-H", header]
        if body is not None:
            data = body if isinstance(body, str) else json.dumps(body)
            cmd += ["-H", "Content-Type: application/json", "--data-binary", data]
        cmd.append(url)
        # Bytes, not text: text mode would turn the header lines' CRLF into LF.
        proc = subprocess.run(cmd, capture_output=True, timeout=30)
        assert proc.returncode == 0, f"{' '.join(cmd)}: {proc.stderr!r}"
        head, _, payload = proc.stdout.decode("utf-8").partition("\r\n\r\n")
        lines = head.split("\r\n")
        status = int(lines[0].split()[1])
        received = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            received[name.strip().lower()] = value.strip()
        try:
            parsed = json.loads(payload)
        except json.JSONDecodeError:
            pytest.fail(f"{method} {url} answered {status} with non-JSON: {payload!r}")
        return status, received, parsed

    return run


def base(api) -> str:
    return f"http://{api.addr}"


def wait_rest(curl, api, operation: dict) -> dict:
    deadline = time.monotonic() + OP_TIMEOUT
    while time.monotonic() < deadline:
        status, _, current = curl("GET", f"{base(api)}/operations/{operation['id']}")
        assert status == 200, current
        if current["done"]:
            return current
        time.sleep(POLL_INTERVAL)
    pytest.fail(f"operation {operation['id']} did not finish")


@pytest.mark.parametrize("flags", [(), ("--http2-prior-knowledge",)], ids=["http1", "h2c"])
def test_create_a_disk_and_an_image_and_follow_the_operation(fast, curl, flags):
    folder = unique_folder()
    status, headers, operation = curl(
        "POST", f"{base(fast)}/compute/v1/disks",
        {"folderId": folder, "zoneId": "ru-central1-a", "size": "10737418240", "name": "data"},
        flags=flags,
    )
    assert status == 200, operation
    assert headers["content-type"] == "application/json"
    assert headers["x-request-id"]
    assert_id(operation["id"])
    assert operation["done"] is False
    assert operation["metadata"]["@type"] == "type.googleapis.com/yandex.cloud.compute.v1.CreateDiskMetadata"
    disk_id = operation["metadata"]["diskId"]

    done = wait_rest(curl, fast, operation)
    assert done["response"]["@type"] == "type.googleapis.com/yandex.cloud.compute.v1.Disk"
    assert done["response"]["status"] == "READY"
    assert done["response"]["size"] == "10737418240"

    status, _, disk = curl("GET", f"{base(fast)}/compute/v1/disks/{disk_id}", flags=flags)
    assert status == 200 and disk["id"] == disk_id and disk["zoneId"] == "ru-central1-a"

    status, _, operation = curl(
        "POST", f"{base(fast)}/compute/v1/images",
        {"folderId": folder, "name": "golden", "diskId": disk_id, "os": {"type": "WINDOWS"}},
        flags=flags,
    )
    assert status == 200, operation
    image = wait_rest(curl, fast, operation)["response"]
    assert image["os"] == {"type": "WINDOWS"}
    assert image["minDiskSize"] == "10737418240"
    status, _, fetched = curl("GET", f"{base(fast)}/compute/v1/images/{image['id']}", flags=flags)
    assert status == 200 and fetched["name"] == "golden"


def test_a_bare_metal_image_from_a_uri(fast, curl, image_source):
    status, _, operation = curl(
        "POST", f"{base(fast)}/baremetal/v1alpha/images",
        {"folderId": unique_folder(), "name": "boot", "uri": image_source.url("boot.iso")},
    )
    assert status == 200, operation
    image = wait_rest(curl, fast, operation)["response"]
    assert image["checksum"] == image_source.iso_md5
    status, _, fetched = curl("GET", f"{base(fast)}/baremetal/v1alpha/images/{image['id']}")
    assert status == 200 and fetched["status"] == "READY"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_cancel_by_get_and_by_post(slow, curl, method):
    status, _, operation = curl(
        "POST", f"{base(slow)}/compute/v1/disks",
        {"folderId": unique_folder(), "zoneId": "ru-central1-a", "size": "4194304"},
    )
    assert status == 200, operation
    status, _, cancelled = curl(method, f"{base(slow)}/operations/{operation['id']}:cancel")
    assert status == 200, cancelled
    assert cancelled["done"] is True and cancelled["error"]["code"] == 1
    status, _, gone = curl("GET", f"{base(slow)}/compute/v1/disks/{operation['metadata']['diskId']}")
    assert status == 404 and gone["code"] == 5


def test_errors_carry_a_google_rpc_status(fast, curl):
    status, _, error = curl(
        "POST", f"{base(fast)}/compute/v1/images",
        {"folderId": unique_folder(), "name": "Bad_Name", "diskId": "fhmnosuchdisk0000000"},
    )
    assert status == 400 and error["code"] == 3, error
    assert error["message"].startswith("name: ")
    assert error["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert error["details"][0]["fieldViolations"][0]["field"] == "name"

    status, _, error = curl("GET", f"{base(fast)}/compute/v1/images/fd8nosuchimage000000")
    assert status == 404 and error["code"] == 5, error

    status, _, error = curl("POST", f"{base(fast)}/compute/v1/disks", '{"folderId": ')
    assert status == 400 and error["code"] == 3 and "line 1 column" in error["message"], error

    status, _, error = curl("GET", f"{base(fast)}/no/such/path")
    assert status == 404 and error["code"] == 5, error

    status, headers, error = curl("DELETE", f"{base(fast)}/compute/v1/images")
    assert status == 405 and headers["allow"] == "GET, HEAD, POST", (headers, error)

    # every RPC is served: Revoke too (without --auth-tokens every token is anonymous's)
    status, _, answer = curl(
        "POST", f"{base(fast)}/iam/v1/tokens:revoke", {"iamToken": "t1.x"}
    )
    assert status == 200 and answer == {"subjectId": "anonymous"}, answer


def test_request_ids_are_echoed(fast, curl):
    _, headers, _ = curl(
        "GET", f"{base(fast)}/operations/oprnosuchoperation00", headers=["X-Request-Id: curl-42"]
    )
    assert headers["x-request-id"] == "curl-42"


def test_the_whole_life_of_an_image_through_curl(fast, curl):
    """List with a filter and pages, GetLatestByFamily, PATCH with an update mask,
    ListOperations, DELETE, then 404: the calls a Terraform-style tool makes, as JSON."""
    folder = unique_folder()
    url = base(fast)
    status, _, operation = curl(
        "POST", f"{url}/compute/v1/disks",
        {"folderId": folder, "zoneId": "ru-central1-a", "size": "1073741824"},
    )
    disk_id = wait_rest(curl, fast, operation)["response"]["id"]
    images = []
    for name, family in [("web-1", "web"), ("web-2", "web"), ("db-1", "database")]:
        status, _, operation = curl(
            "POST", f"{url}/compute/v1/images",
            {"folderId": folder, "name": name, "family": family, "diskId": disk_id},
        )
        assert status == 200, operation
        images.append(wait_rest(curl, fast, operation)["response"])

    query = f"folderId={folder}&filter=family%20%3D%20%22web%22&orderBy=name%20desc&pageSize=1"
    status, _, page = curl("GET", f"{url}/compute/v1/images?{query}")
    assert status == 200, page
    assert [image["name"] for image in page["images"]] == ["web-2"]
    assert page["nextPageToken"]
    status, _, page = curl("GET", f"{url}/compute/v1/images?{query}&pageToken={page['nextPageToken']}")
    assert [image["name"] for image in page["images"]] == ["web-1"] and page["nextPageToken"] == ""

    status, _, latest = curl("GET", f"{url}/compute/v1/images:latestByFamily?folderId={folder}&family=web")
    assert status == 200 and latest["name"] == "web-2", latest
    status, _, bad = curl("GET", f"{url}/compute/v1/images?folderId={folder}&filter=name%20%3D%3D%20%22x%22")
    assert status == 400 and bad["code"] == 3 and "position" in bad["message"], bad

    image_id = images[0]["id"]
    status, _, operation = curl(
        "PATCH", f"{url}/compute/v1/images/{image_id}",
        {"updateMask": "name,labels", "name": "web-1-renamed", "labels": {"env": "prod"}},
    )
    assert status == 200, operation
    updated = wait_rest(curl, fast, operation)["response"]
    assert (updated["name"], updated["labels"], updated["family"]) == ("web-1-renamed", {"env": "prod"}, "web")
    status, _, taken = curl(
        "PATCH", f"{url}/compute/v1/images/{image_id}", {"updateMask": "name", "name": "db-1"},
    )
    assert status == 409 and taken["code"] == 6, taken

    status, _, operation = curl("DELETE", f"{url}/compute/v1/images/{image_id}")
    assert status == 200 and operation["metadata"]["imageId"] == image_id, operation
    done = wait_rest(curl, fast, operation)
    assert done["response"]["@type"] == "type.googleapis.com/google.protobuf.Empty", done
    status, _, gone = curl("GET", f"{url}/compute/v1/images/{image_id}")
    assert status == 404 and gone["code"] == 5, gone
    status, _, operations = curl("GET", f"{url}/compute/v1/images/{image_id}/operations")
    assert status == 200, operations
    assert [op["description"] for op in operations["operations"]] == [
        "Delete image", "Update image", "Create image"]
