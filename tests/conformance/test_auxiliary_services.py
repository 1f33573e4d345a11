"""ApiEndpointService, IamTokenService and gRPC health, through the SDK stubs."""

import datetime as dt

import grpc
import pytest

from helpers import (
    HEALTH_SERVING,
    HealthCheckRequest,
    api_endpoint_service_pb2,
    expect_error,
    expect_ok,
    iam_token_service_pb2,
    ts_to_datetime,
)

EXPECTED_ENDPOINT_IDS = {"compute", "operation", "baremetal", "iam", "endpoint"}


def test_api_endpoint_list(fast):
    resp = expect_ok(fast.endpoints.List, api_endpoint_service_pb2.ListApiEndpointsRequest())
    ids = {e.id for e in resp.endpoints}
    assert EXPECTED_ENDPOINT_IDS <= ids, f"missing endpoints: {EXPECTED_ENDPOINT_IDS - ids}"
    for endpoint in resp.endpoints:
        assert endpoint.address == fast.addr, f"endpoint {endpoint.id} points at {endpoint.address!r}"


def test_api_endpoint_get(fast):
    endpoint = expect_ok(fast.endpoints.Get, api_endpoint_service_pb2.GetApiEndpointRequest(api_endpoint_id="compute"))
    assert endpoint.id == "compute"
    assert endpoint.address == fast.addr


def test_api_endpoints_name_each_servers_own_address(fast, slow):
    assert fast.addr != slow.addr
    resp = expect_ok(slow.endpoints.List, api_endpoint_service_pb2.ListApiEndpointsRequest())
    assert resp.endpoints
    assert {e.address for e in resp.endpoints} == {slow.addr}


@pytest.mark.parametrize("identity", [
    {"yandex_passport_oauth_token": "y0_AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
    {"jwt": "eyJhbGciOiJQUzI1NiJ9.eyJpc3MiOiJhamUifQ.c2lnbmF0dXJl"},
])
def test_iam_token_create(fast, identity):
    resp = expect_ok(fast.iam.Create, iam_token_service_pb2.CreateIamTokenRequest(**identity))
    assert resp.iam_token, "iam_token is empty"
    assert resp.HasField("expires_at")
    assert ts_to_datetime(resp.expires_at) > dt.datetime.now(dt.timezone.utc)


def test_iam_token_create_without_identity_is_invalid(fast):
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, fast.iam.Create, iam_token_service_pb2.CreateIamTokenRequest())


@pytest.mark.parametrize("service", ["", "yandex.cloud.compute.v1.ImageService"])
def test_health_check_serving(fast, service):
    resp = fast.health_check(HealthCheckRequest(service=service), timeout=10)
    assert resp.status == HEALTH_SERVING


def test_disk_snapshot_schedules_are_an_empty_list(fast, folder):
    from helpers import disk_service_pb2

    disk = fast.ready_disk(folder)
    resp = expect_ok(
        fast.disks.ListSnapshotSchedules,
        disk_service_pb2.ListDiskSnapshotSchedulesRequest(disk_id=disk.id),
    )
    assert list(resp.snapshot_schedules) == [] and resp.next_page_token == ""
    expect_error(
        grpc.StatusCode.NOT_FOUND,
        fast.disks.ListSnapshotSchedules,
        disk_service_pb2.ListDiskSnapshotSchedulesRequest(disk_id="fhmnosuchdisk0000000"),
    )
