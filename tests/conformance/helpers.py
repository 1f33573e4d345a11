"""Shared helpers for the imageplane conformance suite.

Everything here talks to a running server through the official ``yandexcloud``
SDK stubs; nothing is generated from the repository's own .proto files.
"""

from __future__ import annotations

import datetime as _dt
import random
import re
import string
import time
import uuid

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from yandex.cloud.baremetal.v1alpha import image_pb2 as bm_image_pb2
from yandex.cloud.baremetal.v1alpha import image_service_pb2 as bm_image_service_pb2
from yandex.cloud.baremetal.v1alpha import image_service_pb2_grpc as bm_image_service_pb2_grpc
from yandex.cloud.compute.v1 import disk_pb2
from yandex.cloud.compute.v1 import disk_service_pb2
from yandex.cloud.compute.v1 import disk_service_pb2_grpc
from yandex.cloud.compute.v1 import hardware_generation_pb2
from yandex.cloud.compute.v1 import image_pb2
from yandex.cloud.compute.v1 import image_service_pb2
from yandex.cloud.compute.v1 import image_service_pb2_grpc
from yandex.cloud.compute.v1 import snapshot_pb2
from yandex.cloud.compute.v1 import snapshot_service_pb2
from yandex.cloud.compute.v1 import snapshot_service_pb2_grpc
from yandex.cloud.endpoint import api_endpoint_service_pb2
from yandex.cloud.endpoint import api_endpoint_service_pb2_grpc
from yandex.cloud.iam.v1 import iam_token_service_pb2
from yandex.cloud.iam.v1 import iam_token_service_pb2_grpc
from yandex.cloud.operation import operation_pb2
from yandex.cloud.operation import operation_service_pb2
from yandex.cloud.operation import operation_service_pb2_grpc

ID_RE = re.compile(r"^[a-z][a-z0-9]{19}$")
TYPE_PREFIX = "type.googleapis.com/"

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30

IMAGE_MIN_DISK_SIZE_MIN = 4194304
IMAGE_MIN_DISK_SIZE_MAX = 4398046511104
DISK_SIZE_MIN = 4194304
DISK_SIZE_MAX = 28587302322176

ZONE = "ru-central1-a"

RPC_TIMEOUT = 10.0  # seconds, per RPC
POLL_INTERVAL = 0.02  # seconds between OperationService.Get polls
OP_TIMEOUT = 10.0  # seconds until an operation on the fast server must be done

CODE_CANCELLED = grpc.StatusCode.CANCELLED.value[0]  # 1
CODE_UNIMPLEMENTED = grpc.StatusCode.UNIMPLEMENTED.value[0]  # 12
CODE_NOT_FOUND = grpc.StatusCode.NOT_FOUND.value[0]  # 5
CODE_UNAVAILABLE = grpc.StatusCode.UNAVAILABLE.value[0]  # 14
# How an accepted import of an unreachable or missing source ends (no network here: the
# host does not resolve; with one, the host may answer 404).
CODES_SOURCE_UNREACHABLE = (CODE_NOT_FOUND, CODE_UNAVAILABLE)

LINUX = image_pb2.Os.Type.LINUX
WINDOWS = image_pb2.Os.Type.WINDOWS


# --------------------------------------------------------------------------- ids

def unique_folder(length: int = 20) -> str:
    """A fresh folder id: lowercase, starts with a letter, only [a-z0-9]."""
    s = "f"
    while len(s) < length:
        s += uuid.uuid4().hex
    return s[:length]


def unique_name(prefix: str = "n") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def fake_id() -> str:
    """A syntactically valid id that the server has never issued."""
    return "zz" + "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(18))


def assert_id(value: str, what: str = "id") -> None:
    assert ID_RE.match(value or ""), f"{what} {value!r} does not match [a-z][a-z0-9]{{19}}"


# ------------------------------------------------------------------------ errors

def expect_error(code: grpc.StatusCode, method, request, *fragments: str) -> grpc.RpcError:
    """Call ``method(request)`` and require it to fail with ``code``.

    Every string in ``fragments`` must occur in the error's details message.
    """
    try:
        response = method(request, timeout=RPC_TIMEOUT)
    except grpc.RpcError as err:  # noqa: PERF203
        details = err.details() or ""
        assert err.code() == code, (
            f"expected {code.name}, got {err.code().name}: {details!r}\nrequest: {request}"
        )
        for fragment in fragments:
            assert fragment in details, (
                f"{code.name} message {details!r} does not mention {fragment!r}\nrequest: {request}"
            )
        return err
    pytest.fail(
        f"expected {code.name}, but the call succeeded\nrequest: {request}\nresponse: {response}"
    )


def expect_ok(method, request):
    """Call ``method(request)`` and require success; show the error nicely if not."""
    try:
        return method(request, timeout=RPC_TIMEOUT)
    except grpc.RpcError as err:
        pytest.fail(
            f"expected success, got {err.code().name}: {err.details()!r}\nrequest: {request}"
        )


# -------------------------------------------------------------------------- Any

def unpack(any_msg, cls):
    """Unpack a google.protobuf.Any, checking its type_url names ``cls`` exactly."""
    full_name = cls.DESCRIPTOR.full_name
    assert any_msg.type_url == TYPE_PREFIX + full_name, (
        f"type_url {any_msg.type_url!r} != {TYPE_PREFIX + full_name!r}"
    )
    msg = cls()
    assert any_msg.Unpack(msg), f"cannot unpack Any as {full_name}"
    return msg


def ts_to_datetime(ts) -> _dt.datetime:
    return ts.ToDatetime(tzinfo=_dt.timezone.utc)


def assert_recent_timestamp(msg, field: str, slack_seconds: float = 600) -> None:
    assert msg.HasField(field), f"{field} is not set on {type(msg).__name__}"
    when = ts_to_datetime(getattr(msg, field))
    now = _dt.datetime.now(_dt.timezone.utc)
    assert abs((now - when).total_seconds()) < slack_seconds, f"{field}={when} is not close to now ({now})"


# ------------------------------------------------------------------------ health
# grpcio-health-checking is not a dependency, so the two tiny messages of
# grpc/health/v1/health.proto are built at run time.

def _build_health_messages():
    fdp = descriptor_pb2.FileDescriptorProto(
        name="imageplane_conformance/grpc_health_v1.proto",
        package="grpc.health.v1",
        syntax="proto3",
    )
    req = fdp.message_type.add(name="HealthCheckRequest")
    req.field.add(
        name="service", number=1,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
    )
    resp = fdp.message_type.add(name="HealthCheckResponse")
    enum = resp.enum_type.add(name="ServingStatus")
    for i, n in enumerate(["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"]):
        enum.value.add(name=n, number=i)
    resp.field.add(
        name="status", number=1,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_ENUM,
        type_name=".grpc.health.v1.HealthCheckResponse.ServingStatus",
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName("grpc.health.v1.HealthCheckRequest")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName("grpc.health.v1.HealthCheckResponse")),
    )


HealthCheckRequest, HealthCheckResponse = _build_health_messages()
HEALTH_SERVING = 1


# --------------------------------------------------------------------------- API

class Api:
    """Stubs for one running server plus convenience wrappers."""

    def __init__(self, channel: grpc.Channel, addr: str, name: str):
        self.channel = channel
        self.addr = addr
        self.name = name
        self.images = image_service_pb2_grpc.ImageServiceStub(channel)
        self.snapshots = snapshot_service_pb2_grpc.SnapshotServiceStub(channel)
        self.disks = disk_service_pb2_grpc.DiskServiceStub(channel)
        self.bm_images = bm_image_service_pb2_grpc.ImageServiceStub(channel)
        self.operations = operation_service_pb2_grpc.OperationServiceStub(channel)
        self.endpoints = api_endpoint_service_pb2_grpc.ApiEndpointServiceStub(channel)
        self.iam = iam_token_service_pb2_grpc.IamTokenServiceStub(channel)
        self.health_check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=HealthCheckRequest.SerializeToString,
            response_deserializer=HealthCheckResponse.FromString,
        )

    # ---- operations
    def get_op(self, op_id: str):
        return expect_ok(self.operations.Get, operation_service_pb2.GetOperationRequest(operation_id=op_id))

    def cancel_op(self, op_id: str):
        return expect_ok(self.operations.Cancel, operation_service_pb2.CancelOperationRequest(operation_id=op_id))

    def wait_op(self, op_or_id, timeout: float = OP_TIMEOUT):
        op_id = op_or_id if isinstance(op_or_id, str) else op_or_id.id
        deadline = time.monotonic() + timeout
        while True:
            op = self.get_op(op_id)
            if op.done:
                return op
            if time.monotonic() > deadline:
                pytest.fail(f"operation {op_id} not done after {timeout}s on the {self.name} server: {op}")
            time.sleep(POLL_INTERVAL)

    # ---- raw creates (return the Operation)
    def create_disk_op(self, folder_id: str, size: int = 8 * GiB, zone_id: str = ZONE, **kw):
        req = disk_service_pb2.CreateDiskRequest(folder_id=folder_id, zone_id=zone_id, size=size, **kw)
        return expect_ok(self.disks.Create, req)

    def create_image_op(self, folder_id: str, **kw):
        return expect_ok(self.images.Create, image_service_pb2.CreateImageRequest(folder_id=folder_id, **kw))

    def create_snapshot_op(self, folder_id: str, disk_id: str, **kw):
        req = snapshot_service_pb2.CreateSnapshotRequest(folder_id=folder_id, disk_id=disk_id, **kw)
        return expect_ok(self.snapshots.Create, req)

    def create_bm_image_op(self, folder_id: str, name: str, uri: str, **kw):
        req = bm_image_service_pb2.CreateImageRequest(folder_id=folder_id, name=name, uri=uri, **kw)
        return expect_ok(self.bm_images.Create, req)

    # ---- create and wait for READY (return the resource from the operation response)
    def _finish(self, op, cls):
        done = self.wait_op(op)
        assert done.WhichOneof("result") == "response", f"operation {op.id} failed: {done.error}"
        res = unpack(done.response, cls)
        assert res.status == cls.Status.READY, f"{cls.__name__} {res.id} is {cls.Status.Name(res.status)}, not READY"
        return res

    def ready_disk(self, folder_id: str, size: int = 8 * GiB, **kw) -> disk_pb2.Disk:
        return self._finish(self.create_disk_op(folder_id, size=size, **kw), disk_pb2.Disk)

    def ready_image(self, folder_id: str, **kw) -> image_pb2.Image:
        return self._finish(self.create_image_op(folder_id, **kw), image_pb2.Image)

    def ready_snapshot(self, folder_id: str, disk_id: str, **kw) -> snapshot_pb2.Snapshot:
        return self._finish(self.create_snapshot_op(folder_id, disk_id, **kw), snapshot_pb2.Snapshot)

    # ---- gets
    def get_image(self, image_id: str):
        return expect_ok(self.images.Get, image_service_pb2.GetImageRequest(image_id=image_id))

    def get_disk(self, disk_id: str):
        return expect_ok(self.disks.Get, disk_service_pb2.GetDiskRequest(disk_id=disk_id))

    def get_snapshot(self, snapshot_id: str):
        return expect_ok(self.snapshots.Get, snapshot_service_pb2.GetSnapshotRequest(snapshot_id=snapshot_id))

    def get_bm_image(self, image_id: str):
        return expect_ok(self.bm_images.Get, bm_image_service_pb2.GetImageRequest(image_id=image_id))

    def expect_image_gone(self, image_id: str):
        expect_error(grpc.StatusCode.NOT_FOUND, self.images.Get, image_service_pb2.GetImageRequest(image_id=image_id))

    def expect_disk_gone(self, disk_id: str):
        expect_error(grpc.StatusCode.NOT_FOUND, self.disks.Get, disk_service_pb2.GetDiskRequest(disk_id=disk_id))

    def expect_snapshot_gone(self, snapshot_id: str):
        expect_error(grpc.StatusCode.NOT_FOUND, self.snapshots.Get,
                     snapshot_service_pb2.GetSnapshotRequest(snapshot_id=snapshot_id))

    def expect_bm_image_gone(self, image_id: str):
        expect_error(grpc.StatusCode.NOT_FOUND, self.bm_images.Get,
                     bm_image_service_pb2.GetImageRequest(image_id=image_id))


def check_new_operation(op, description: str, metadata_cls):
    """Checks common to every freshly returned Create operation; returns unpacked metadata."""
    assert_id(op.id, "operation id")
    assert op.done is False, f"Create returned an operation that is already done: {op}"
    assert op.WhichOneof("result") is None, f"a running operation carries a result: {op}"
    assert op.description == description, f"operation description {op.description!r} != {description!r}"
    assert_recent_timestamp(op, "created_at")
    assert_recent_timestamp(op, "modified_at")
    assert op.created_by, "operation created_by is empty"
    assert op.HasField("metadata"), "operation has no metadata"
    return unpack(op.metadata, metadata_cls)


def hw_legacy_v2():
    return hardware_generation_pb2.HardwareGeneration(
        legacy_features=hardware_generation_pb2.LegacyHardwareFeatures(
            pci_topology=hardware_generation_pb2.PCITopology.PCI_TOPOLOGY_V2,
        )
    )


def hw_gen2():
    return hardware_generation_pb2.HardwareGeneration(
        generation2_features=hardware_generation_pb2.Generation2HardwareFeatures(),
    )


def os_of(os_type):
    return image_pb2.Os(type=os_type)
