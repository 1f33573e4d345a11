"""One call, over gRPC or REST, with the headers a test chooses: used where a behaviour must
hold on both transports (authentication, folder access, idempotency keys, request ids).

An :class:`Rpc` names a call both ways: the gRPC stub method (``"disks.Get"``, an attribute
of :class:`helpers.Api`) with its request message, and the REST method, path and JSON body
of the same call (the protos' ``google.api.http`` rules). :meth:`Wire.call` makes it over
one transport and answers an :class:`Outcome` that reads the same on both: the
google.rpc.Code number, the message, and the answer as proto3 JSON (a gRPC response is
turned into the JSON the REST gateway would write, so ``out.body["createdBy"]`` works on
both).

gRPC calls here are plaintext, so credentials go as plain metadata
(``authorization: Bearer ...``): grpc's call credentials need TLS.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
import requests
from google.protobuf import empty_pb2  # noqa: F401  (Delete operations answer an Empty: MessageToDict needs it known)
from google.protobuf import field_mask_pb2
from google.protobuf.json_format import MessageToDict
from yandex.cloud.access import access_pb2

from helpers import (
    OP_TIMEOUT,
    POLL_INTERVAL,
    RPC_TIMEOUT,
    ZONE,
    api_endpoint_service_pb2,
    bm_image_service_pb2,
    disk_service_pb2,
    iam_token_service_pb2,
    image_service_pb2,
    operation_service_pb2,
    snapshot_service_pb2,
)

TRANSPORTS = ("grpc", "rest")

# google.rpc.Code numbers.
OK = 0
CANCELLED = 1
INVALID_ARGUMENT = 3
NOT_FOUND = 5
ALREADY_EXISTS = 6
PERMISSION_DENIED = 7
FAILED_PRECONDITION = 9
UNAUTHENTICATED = 16

# The HTTP status the REST gateway answers for each code (grpc-gateway's table).
HTTP_STATUS = {OK: 200, INVALID_ARGUMENT: 400, NOT_FOUND: 404, ALREADY_EXISTS: 409,
               PERMISSION_DENIED: 403, FAILED_PRECONDITION: 400, UNAUTHENTICATED: 401}
CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


@dataclass
class Rpc:
    """A call both ways: ``grpc`` is ``"service.Method"`` of :class:`helpers.Api`."""

    grpc: str
    request: Any
    http_method: str
    path: str
    body: dict | None = None

    def __str__(self) -> str:
        return f"{self.grpc} / {self.http_method} {self.path}"


@dataclass
class Outcome:
    transport: str
    rpc: Rpc
    code: int
    message: str
    body: Any  # proto3 JSON of the answer (REST: the error's google.rpc.Status JSON)
    http_status: int | None = None
    headers: dict = field(default_factory=dict)  # REST headers / gRPC metadata, lowercase names

    def describe(self) -> str:
        http = f" HTTP {self.http_status}" if self.http_status is not None else ""
        return (f"{self.rpc} over {self.transport}: {CODE_NAMES.get(self.code, self.code)}{http} "
                f"{self.message!r}\nbody: {self.body}")

    def ok(self) -> dict:
        """Requires success; returns the answer as JSON."""
        assert self.code == OK, f"expected success, got {self.describe()}"
        if self.transport == "rest":
            assert self.http_status == 200, self.describe()
        return self.body

    def expect(self, code: int, *fragments: str) -> "Outcome":
        """Requires the call to have failed with ``code`` (REST: that code in the JSON
        status body and its HTTP status); every fragment must be in the message."""
        assert self.code == code, f"expected {CODE_NAMES[code]}, got {self.describe()}"
        if self.transport == "rest":
            assert self.http_status == HTTP_STATUS[code], (
                f"expected HTTP {HTTP_STATUS[code]} for {CODE_NAMES[code]}, got {self.describe()}")
            assert isinstance(self.body, dict) and self.body.get("code") == code, (
                f"the error body is not a google.rpc.Status with code {code}: {self.describe()}")
            assert self.body.get("message") == self.message
        for fragment in fragments:
            assert fragment in self.message, (
                f"{CODE_NAMES[code]} message {self.message!r} does not mention {fragment!r} "
                f"({self.rpc} over {self.transport})")
        return self


def message_json(message) -> dict:
    """A protobuf message as the REST gateway writes it (fields without presence included)."""
    return MessageToDict(message, always_print_fields_with_no_presence=True)


class Wire:
    """Calls to one server over one transport."""

    def __init__(self, api, transport: str):
        assert transport in TRANSPORTS, transport
        self.api = api
        self.transport = transport
        self.base = f"http://{api.addr}"

    def __repr__(self) -> str:
        return f"Wire({self.api.name}, {self.transport})"

    def call(self, rpc: Rpc, token: str | None = None, authorization: str | None = None,
             headers: dict | None = None) -> Outcome:
        """Makes the call; ``token`` sends ``authorization: Bearer TOKEN``,
        ``authorization`` sends that value as it is; ``headers`` are more headers
        (gRPC: metadata, names lowercased)."""
        sent = dict(headers or {})
        if token is not None:
            sent["authorization"] = f"Bearer {token}"
        if authorization is not None:
            sent["authorization"] = authorization
        if self.transport == "grpc":
            return self._grpc(rpc, sent)
        return self._rest(rpc, sent)

    def _grpc(self, rpc: Rpc, headers: dict) -> Outcome:
        service, method = rpc.grpc.split(".")
        stub_method = getattr(getattr(self.api, service), method)
        metadata = tuple((name.lower(), value) for name, value in headers.items())
        try:
            response, call = stub_method.with_call(rpc.request, metadata=metadata, timeout=RPC_TIMEOUT)
        except grpc.RpcError as err:
            received = {}
            for name, value in (err.initial_metadata() or ()) + (err.trailing_metadata() or ()):
                received.setdefault(name, value)
            return Outcome("grpc", rpc, err.code().value[0], err.details() or "", None,
                           headers=received)
        received = dict(call.initial_metadata() or ())
        return Outcome("grpc", rpc, OK, "", message_json(response), headers=received)

    def _rest(self, rpc: Rpc, headers: dict) -> Outcome:
        response = requests.request(
            rpc.http_method, self.base + rpc.path, json=rpc.body, headers=headers, timeout=RPC_TIMEOUT,
        )
        try:
            body = response.json()
        except ValueError:
            pytest.fail(f"{rpc} answered HTTP {response.status_code} with non-JSON: {response.text!r}")
        received = {name.lower(): value for name, value in response.headers.items()}
        if response.status_code == 200:
            return Outcome("rest", rpc, OK, "", body, response.status_code, received)
        code = body.get("code") if isinstance(body, dict) else None
        message = body.get("message", "") if isinstance(body, dict) else ""
        return Outcome("rest", rpc, code if isinstance(code, int) else -1, message, body,
                       response.status_code, received)

    # ---- operations
    def get_operation(self, operation_id: str, token: str | None = None) -> Outcome:
        return self.call(Rpc("operations.Get", operation_service_pb2.GetOperationRequest(
            operation_id=operation_id), "GET", f"/operations/{operation_id}"), token=token)

    def wait(self, operation_id: str, token: str | None = None, timeout: float = OP_TIMEOUT) -> dict:
        """The operation once done (its JSON); fails the test after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            operation = self.get_operation(operation_id, token).ok()
            if operation.get("done"):
                return operation
            if time.monotonic() > deadline:
                pytest.fail(f"operation {operation_id} not done after {timeout}s ({self}): {operation}")
            time.sleep(POLL_INTERVAL)

    def wait_ok(self, operation_id: str, token: str | None = None) -> dict:
        """The response of the finished operation; fails if it ended with an error."""
        done = self.wait(operation_id, token)
        assert "response" in done and "error" not in done, f"operation {operation_id} failed: {done}"
        return done["response"]


# ------------------------------------------------------------------ the calls used

PUBLIC_FOLDER = "standard-images"
SMALL_DISK = 4 * (1 << 20)  # the smallest disk: bytes


def create_disk(folder: str, name: str = "", size: int = SMALL_DISK, labels: dict | None = None) -> Rpc:
    request = disk_service_pb2.CreateDiskRequest(folder_id=folder, zone_id=ZONE, size=size, name=name,
                                                 labels=labels or {})
    body = {"folderId": folder, "zoneId": ZONE, "size": str(size)}
    if name:
        body["name"] = name
    if labels:
        body["labels"] = labels
    return Rpc("disks.Create", request, "POST", "/compute/v1/disks", body)


def create_image_from_image(folder: str, source_image_id: str, name: str) -> Rpc:
    request = image_service_pb2.CreateImageRequest(folder_id=folder, name=name, image_id=source_image_id)
    return Rpc("images.Create", request, "POST", "/compute/v1/images",
               {"folderId": folder, "name": name, "imageId": source_image_id})


def create_image_from_disk(folder: str, disk_id: str, name: str) -> Rpc:
    request = image_service_pb2.CreateImageRequest(folder_id=folder, name=name, disk_id=disk_id)
    return Rpc("images.Create", request, "POST", "/compute/v1/images",
               {"folderId": folder, "name": name, "diskId": disk_id})


def create_snapshot(folder: str, disk_id: str, name: str) -> Rpc:
    request = snapshot_service_pb2.CreateSnapshotRequest(folder_id=folder, disk_id=disk_id, name=name)
    return Rpc("snapshots.Create", request, "POST", "/compute/v1/snapshots",
               {"folderId": folder, "diskId": disk_id, "name": name})


def create_bm_image(folder: str, name: str, uri: str) -> Rpc:
    request = bm_image_service_pb2.CreateImageRequest(folder_id=folder, name=name, uri=uri)
    return Rpc("bm_images.Create", request, "POST", "/baremetal/v1alpha/images",
               {"folderId": folder, "name": name, "uri": uri})


def list_of(kind: str, folder: str) -> Rpc:
    """List of ``kind`` (images, disks, snapshots, bm_images) in the folder."""
    requests_by_kind = {
        "images": (image_service_pb2.ListImagesRequest, "/compute/v1/images"),
        "disks": (disk_service_pb2.ListDisksRequest, "/compute/v1/disks"),
        "snapshots": (snapshot_service_pb2.ListSnapshotsRequest, "/compute/v1/snapshots"),
        "bm_images": (bm_image_service_pb2.ListImagesRequest, "/baremetal/v1alpha/images"),
    }
    cls, path = requests_by_kind[kind]
    return Rpc(f"{kind}.List", cls(folder_id=folder, page_size=1000), "GET",
               f"{path}?folderId={folder}&pageSize=1000")


def listed_ids(outcome: Outcome, kind: str) -> list[str]:
    """The ids of a List answer (REST and gRPC name the list field alike)."""
    field_name = "images" if kind in ("images", "bm_images") else kind
    body = outcome.ok()
    assert not body.get("nextPageToken"), "more than one page: the test expects a small folder"
    return [item["id"] for item in body.get(field_name, [])]


# What each kind's per-resource calls are named: (stub, REST collection, id field of requests).
KINDS = {
    "images": ("images", "/compute/v1/images", image_service_pb2, "Image", "image_id"),
    "disks": ("disks", "/compute/v1/disks", disk_service_pb2, "Disk", "disk_id"),
    "snapshots": ("snapshots", "/compute/v1/snapshots", snapshot_service_pb2, "Snapshot", "snapshot_id"),
    "bm_images": ("bm_images", "/baremetal/v1alpha/images", bm_image_service_pb2, "Image", "image_id"),
}


def get_of(kind: str, resource_id: str) -> Rpc:
    stub, path, module, noun, id_field = KINDS[kind]
    request = getattr(module, f"Get{noun}Request")(**{id_field: resource_id})
    return Rpc(f"{stub}.Get", request, "GET", f"{path}/{resource_id}")


def update_name_of(kind: str, resource_id: str, name: str) -> Rpc:
    stub, path, module, noun, id_field = KINDS[kind]
    request = getattr(module, f"Update{noun}Request")(
        **{id_field: resource_id}, update_mask=field_mask_pb2.FieldMask(paths=["name"]), name=name)
    return Rpc(f"{stub}.Update", request, "PATCH", f"{path}/{resource_id}",
               {"updateMask": "name", "name": name})


def update_labels_of(kind: str, resource_id: str, labels: dict) -> Rpc:
    stub, path, module, noun, id_field = KINDS[kind]
    request = getattr(module, f"Update{noun}Request")(
        **{id_field: resource_id}, update_mask=field_mask_pb2.FieldMask(paths=["labels"]), labels=labels)
    return Rpc(f"{stub}.Update", request, "PATCH", f"{path}/{resource_id}",
               {"updateMask": "labels", "labels": labels})


def delete_of(kind: str, resource_id: str) -> Rpc:
    stub, path, module, noun, id_field = KINDS[kind]
    request = getattr(module, f"Delete{noun}Request")(**{id_field: resource_id})
    return Rpc(f"{stub}.Delete", request, "DELETE", f"{path}/{resource_id}")


def list_operations_of(kind: str, resource_id: str) -> Rpc:
    stub, path, module, noun, id_field = KINDS[kind]
    request = getattr(module, f"List{noun}OperationsRequest")(**{id_field: resource_id})
    return Rpc(f"{stub}.ListOperations", request, "GET", f"{path}/{resource_id}/operations")


def list_access_bindings_of(kind: str, resource_id: str) -> Rpc:
    stub, path, *_ = KINDS[kind]
    return Rpc(f"{stub}.ListAccessBindings", access_pb2.ListAccessBindingsRequest(resource_id=resource_id),
               "GET", f"{path}/{resource_id}:listAccessBindings")


def set_access_bindings_of(kind: str, resource_id: str) -> Rpc:
    stub, path, *_ = KINDS[kind]
    binding = access_pb2.AccessBinding(role_id="compute.viewer",
                                       subject=access_pb2.Subject(id="ajeintruder", type="userAccount"))
    return Rpc(f"{stub}.SetAccessBindings",
               access_pb2.SetAccessBindingsRequest(resource_id=resource_id, access_bindings=[binding]),
               "POST", f"{path}/{resource_id}:setAccessBindings",
               {"accessBindings": [{"roleId": "compute.viewer",
                                    "subject": {"id": "ajeintruder", "type": "userAccount"}}]})


def move_disk(disk_id: str, destination: str) -> Rpc:
    return Rpc("disks.Move", disk_service_pb2.MoveDiskRequest(disk_id=disk_id, destination_folder_id=destination),
               "POST", f"/compute/v1/disks/{disk_id}:move", {"destinationFolderId": destination})


def get_operation(operation_id: str) -> Rpc:
    return Rpc("operations.Get", operation_service_pb2.GetOperationRequest(operation_id=operation_id),
               "GET", f"/operations/{operation_id}")


def cancel_operation(operation_id: str) -> Rpc:
    return Rpc("operations.Cancel", operation_service_pb2.CancelOperationRequest(operation_id=operation_id),
               "GET", f"/operations/{operation_id}:cancel")


def latest_public_image() -> Rpc:
    request = image_service_pb2.GetImageLatestByFamilyRequest(folder_id=PUBLIC_FOLDER, family="ubuntu-2204-lts")
    return Rpc("images.GetLatestByFamily", request, "GET",
               f"/compute/v1/images:latestByFamily?folderId={PUBLIC_FOLDER}&family=ubuntu-2204-lts")


def iam_token_for(oauth_token: str) -> Rpc:
    return Rpc("iam.Create", iam_token_service_pb2.CreateIamTokenRequest(yandex_passport_oauth_token=oauth_token),
               "POST", "/iam/v1/tokens", {"yandexPassportOauthToken": oauth_token})


def iam_token_for_jwt(jwt: str) -> Rpc:
    return Rpc("iam.Create", iam_token_service_pb2.CreateIamTokenRequest(jwt=jwt),
               "POST", "/iam/v1/tokens", {"jwt": jwt})


def iam_token_for_service_account(service_account_id: str) -> Rpc:
    return Rpc("iam.CreateForServiceAccount",
               iam_token_service_pb2.CreateIamTokenForServiceAccountRequest(service_account_id=service_account_id),
               "POST", "/iam/v1/tokens:createForServiceAccount", {"serviceAccountId": service_account_id})


def revoke_iam_token(iam_token: str) -> Rpc:
    return Rpc("iam.Revoke", iam_token_service_pb2.RevokeIamTokenRequest(iam_token=iam_token),
               "POST", "/iam/v1/tokens:revoke", {"iamToken": iam_token})


def list_endpoints() -> Rpc:
    return Rpc("endpoints.List", api_endpoint_service_pb2.ListApiEndpointsRequest(), "GET", "/endpoints")
