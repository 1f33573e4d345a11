"""Hostile input as the official client sees it: a huge bad value must come back as
INVALID_ARGUMENT (or NOT_FOUND), not as a client-side RESOURCE_EXHAUSTED because the
error message itself was too large to receive."""

import grpc
import pytest

from helpers import (
    ZONE,
    disk_service_pb2,
    expect_error,
    image_service_pb2,
    operation_service_pb2,
)

HUGE = "X" * 200_000


@pytest.mark.parametrize("overrides", [
    {"name": HUGE},
    {"labels": {HUGE: "v"}},
    {"description": HUGE},
])
def test_a_huge_bad_value_is_invalid_argument_with_a_short_message(fast, folder, overrides):
    request = disk_service_pb2.CreateDiskRequest(
        folder_id=folder, zone_id=ZONE, size=8 << 30, **overrides
    )
    error = expect_error(grpc.StatusCode.INVALID_ARGUMENT, fast.disks.Create, request)
    assert len(error.details()) < 2048


def test_a_huge_operation_id_is_invalid_argument(fast):
    error = expect_error(
        grpc.StatusCode.INVALID_ARGUMENT,
        fast.operations.Get,
        operation_service_pb2.GetOperationRequest(operation_id=HUGE),
        "operation_id",
    )
    assert len(error.details()) < 2048


def test_a_uri_over_8_kib_is_refused_at_once(fast, folder):
    uri = "https://storage.example/" + "a" * 8192
    error = expect_error(
        grpc.StatusCode.INVALID_ARGUMENT,
        fast.images.Create,
        image_service_pb2.CreateImageRequest(folder_id=folder, uri=uri),
        "uri",
    )
    assert len(error.details()) < 2048
