"""NOT_FOUND, ALREADY_EXISTS and FAILED_PRECONDITION on Create."""

import grpc
import pytest

from helpers import (
    ZONE,
    disk_pb2,
    disk_service_pb2,
    expect_error,
    fake_id,
    image_service_pb2,
    snapshot_service_pb2,
    unique_folder,
    unpack,
)

NOT_FOUND = grpc.StatusCode.NOT_FOUND
ALREADY_EXISTS = grpc.StatusCode.ALREADY_EXISTS
FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


# -------------------------------------------------------------------- NOT_FOUND

@pytest.mark.parametrize("source", ["image_id", "disk_id", "snapshot_id"])
@pytest.mark.parametrize("length", [20, 50])
def test_image_from_unknown_source_is_not_found(fast, folder, source, length):
    missing = (fake_id() + "x" * 50)[:length]
    req = image_service_pb2.CreateImageRequest(folder_id=folder, **{source: missing})
    expect_error(NOT_FOUND, fast.images.Create, req)


def test_snapshot_of_unknown_disk_is_not_found(fast, folder):
    req = snapshot_service_pb2.CreateSnapshotRequest(folder_id=folder, disk_id=fake_id())
    expect_error(NOT_FOUND, fast.snapshots.Create, req)
    req = snapshot_service_pb2.CreateSnapshotRequest(folder_id=folder, disk_id="d" * 50)
    expect_error(NOT_FOUND, fast.snapshots.Create, req)


@pytest.mark.parametrize("source", ["image_id", "snapshot_id"])
def test_disk_from_unknown_source_is_not_found(fast, folder, source):
    req = disk_service_pb2.CreateDiskRequest(folder_id=folder, zone_id=ZONE, size=8 << 30, **{source: fake_id()})
    expect_error(NOT_FOUND, fast.disks.Create, req)
    req = disk_service_pb2.CreateDiskRequest(folder_id=folder, zone_id=ZONE, size=8 << 30, **{source: "s" * 50})
    expect_error(NOT_FOUND, fast.disks.Create, req)


def test_source_id_of_another_kind_is_not_found(fast, folder):
    disk = fast.ready_disk(folder)
    image = fast.ready_image(folder, disk_id=disk.id)
    snap = fast.ready_snapshot(folder, disk.id)
    # a disk id is not an image id, and so on
    expect_error(NOT_FOUND, fast.images.Create,
                 image_service_pb2.CreateImageRequest(folder_id=folder, image_id=disk.id))
    expect_error(NOT_FOUND, fast.images.Create,
                 image_service_pb2.CreateImageRequest(folder_id=folder, snapshot_id=image.id))
    expect_error(NOT_FOUND, fast.images.Create,
                 image_service_pb2.CreateImageRequest(folder_id=folder, disk_id=snap.id))
    expect_error(NOT_FOUND, fast.snapshots.Create,
                 snapshot_service_pb2.CreateSnapshotRequest(folder_id=folder, disk_id=image.id))
    expect_error(NOT_FOUND, fast.disks.Create,
                 disk_service_pb2.CreateDiskRequest(folder_id=folder, zone_id=ZONE, size=8 << 30,
                                                    image_id=snap.id))


# --------------------------------------------------------------- ALREADY_EXISTS

def _create(api, kind, folder, name, disk_id=None):
    """Create one resource of ``kind`` named ``name`` and wait until READY."""
    if kind == "disk":
        return api.ready_disk(folder, name=name)
    if kind == "image":
        return api.ready_image(folder, name=name, disk_id=disk_id)
    return api.ready_snapshot(folder, disk_id, name=name)


def _request(kind, folder, name, disk_id):
    if kind == "disk":
        return disk_service_pb2.CreateDiskRequest(folder_id=folder, name=name, zone_id=ZONE, size=8 << 30)
    if kind == "image":
        return image_service_pb2.CreateImageRequest(folder_id=folder, name=name, disk_id=disk_id)
    return snapshot_service_pb2.CreateSnapshotRequest(folder_id=folder, name=name, disk_id=disk_id)


def _method(api, kind):
    return {"disk": api.disks.Create, "image": api.images.Create, "snapshot": api.snapshots.Create}[kind]


KINDS = ["disk", "image", "snapshot"]


@pytest.mark.parametrize("kind", KINDS)
def test_duplicate_name_in_same_folder_is_already_exists(fast, folder, kind):
    src = fast.ready_disk(folder)
    _create(fast, kind, folder, "taken", src.id)
    expect_error(ALREADY_EXISTS, _method(fast, kind), _request(kind, folder, "taken", src.id))


@pytest.mark.parametrize("kind", KINDS)
def test_same_name_in_another_folder_is_fine(fast, folder, kind):
    src = fast.ready_disk(folder)
    _create(fast, kind, folder, "shared-name", src.id)
    other = unique_folder()
    other_src = fast.ready_disk(other)
    again = _create(fast, kind, other, "shared-name", other_src.id)
    assert again.folder_id == other
    assert again.name == "shared-name"


@pytest.mark.parametrize("kind", KINDS)
def test_empty_name_never_conflicts(fast, folder, kind):
    src = fast.ready_disk(folder)
    first = _create(fast, kind, folder, "", src.id)
    second = _create(fast, kind, folder, "", src.id)
    assert first.id != second.id


def test_same_name_for_different_kinds_is_fine(fast, folder):
    disk = fast.ready_disk(folder, name="same")
    image = fast.ready_image(folder, name="same", disk_id=disk.id)
    snap = fast.ready_snapshot(folder, disk.id, name="same")
    assert disk.name == image.name == snap.name == "same"


def test_name_of_creating_resource_is_taken(slow, folder):
    op = slow.create_disk_op(folder, name="busy")
    assert slow.get_op(op.id).done is False
    req = disk_service_pb2.CreateDiskRequest(folder_id=folder, name="busy", zone_id=ZONE, size=8 << 30)
    expect_error(ALREADY_EXISTS, slow.disks.Create, req)


# ---------------------------------------------------------- FAILED_PRECONDITION

def test_sources_that_are_still_creating_fail_precondition(slow, folder):
    op = slow.create_disk_op(folder)
    disk_id = unpack(op.metadata, disk_service_pb2.CreateDiskMetadata).disk_id
    assert slow.get_disk(disk_id).status == disk_pb2.Disk.Status.CREATING
    expect_error(FAILED_PRECONDITION, slow.images.Create,
                 image_service_pb2.CreateImageRequest(folder_id=folder, disk_id=disk_id))
    expect_error(FAILED_PRECONDITION, slow.snapshots.Create,
                 snapshot_service_pb2.CreateSnapshotRequest(folder_id=folder, disk_id=disk_id))



def test_a_body_that_is_not_protobuf_is_invalid_argument(fast):
    """Bad bytes are the caller's mistake: INVALID_ARGUMENT naming the field, never INTERNAL."""
    channel = grpc.insecure_channel(fast.addr)
    try:
        call = channel.unary_unary(
            "/yandex.cloud.compute.v1.DiskService/Create",
            request_serializer=lambda raw: raw,
            response_deserializer=lambda raw: raw,
        )
        with pytest.raises(grpc.RpcError) as caught:
            call(b"\x0a\xff\xff\xff\xff", timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
        assert "folder_id" in caught.value.details()
    finally:
        channel.close()
