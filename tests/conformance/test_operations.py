"""OperationService Get/Cancel and the life of running operations."""

import time

import grpc
import pytest

from helpers import (
    CODE_CANCELLED,
    CODE_NOT_FOUND,
    GiB,
    ZONE,
    assert_id,
    disk_pb2,
    disk_service_pb2,
    expect_error,
    fake_id,
    image_pb2,
    image_service_pb2,
    operation_service_pb2,
    snapshot_pb2,
    snapshot_service_pb2,
    ts_to_datetime,
    unpack,
)

FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


# ------------------------------------------------------------------- bad ids

def test_get_unknown_operation_is_not_found(fast):
    expect_error(grpc.StatusCode.NOT_FOUND, fast.operations.Get,
                 operation_service_pb2.GetOperationRequest(operation_id=fake_id()))


def test_get_empty_operation_id_is_invalid(fast):
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, fast.operations.Get,
                 operation_service_pb2.GetOperationRequest(operation_id=""))


def test_cancel_unknown_operation_is_not_found(fast):
    expect_error(grpc.StatusCode.NOT_FOUND, fast.operations.Cancel,
                 operation_service_pb2.CancelOperationRequest(operation_id=fake_id()))


def test_cancel_empty_operation_id_is_invalid(fast):
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, fast.operations.Cancel,
                 operation_service_pb2.CancelOperationRequest(operation_id=""))


def test_resource_id_is_not_an_operation_id(fast, folder):
    disk = fast.ready_disk(folder)
    expect_error(grpc.StatusCode.NOT_FOUND, fast.operations.Get,
                 operation_service_pb2.GetOperationRequest(operation_id=disk.id))


# -------------------------------------------------------------- finished ops

def test_operation_ids_are_unique(fast, folder):
    ops = [fast.create_disk_op(folder) for _ in range(5)]
    ids = [op.id for op in ops]
    for op_id in ids:
        assert_id(op_id, "operation id")
    assert len(set(ids)) == len(ids)
    disk_ids = {unpack(op.metadata, disk_service_pb2.CreateDiskMetadata).disk_id for op in ops}
    assert len(disk_ids) == len(ops)


def test_done_operation_timestamps(fast, folder):
    op = fast.create_disk_op(folder)
    done = fast.wait_op(op)
    assert done.created_at == op.created_at
    assert ts_to_datetime(done.modified_at) >= ts_to_datetime(done.created_at)
    assert done.created_by == op.created_by


def test_cancel_of_succeeded_operation_changes_nothing(fast, folder):
    op = fast.create_disk_op(folder, name="keep-me")
    before = fast.wait_op(op)
    assert before.WhichOneof("result") == "response"
    disk_before = fast.get_disk(unpack(op.metadata, disk_service_pb2.CreateDiskMetadata).disk_id)

    cancelled = fast.cancel_op(op.id)
    assert cancelled == before
    assert fast.get_op(op.id) == before
    disk_after = fast.get_disk(disk_before.id)
    assert disk_after.status == disk_pb2.Disk.Status.READY
    assert disk_after == disk_before


def test_cancel_of_failed_operation_changes_nothing(fast, folder, image_source):
    op = fast.create_image_op(folder, uri=image_source.url("missing.img"))
    before = fast.wait_op(op)
    assert before.WhichOneof("result") == "error"
    assert before.error.code == CODE_NOT_FOUND
    cancelled = fast.cancel_op(op.id)
    assert cancelled == before
    assert fast.get_op(op.id) == before


# ----------------------------------------------------- running ops (slow server)

def test_running_disk_operation(slow, folder):
    op = slow.create_disk_op(folder, name="pending", size=3 * GiB)
    disk_id = unpack(op.metadata, disk_service_pb2.CreateDiskMetadata).disk_id
    time.sleep(0.2)
    got = slow.get_op(op.id)
    assert got.done is False
    assert got.WhichOneof("result") is None
    assert got.metadata == op.metadata
    disk = slow.get_disk(disk_id)
    assert disk.status == disk_pb2.Disk.Status.CREATING
    assert disk.id == disk_id
    assert disk.folder_id == folder
    assert disk.name == "pending"
    assert disk.size == 3 * GiB
    assert disk.zone_id == ZONE


def test_cancel_running_disk_operation(slow, folder):
    op = slow.create_disk_op(folder, name="to-cancel")
    disk_id = unpack(op.metadata, disk_service_pb2.CreateDiskMetadata).disk_id
    assert slow.get_disk(disk_id).status == disk_pb2.Disk.Status.CREATING

    cancelled = slow.cancel_op(op.id)
    assert cancelled.id == op.id
    assert cancelled.done is True
    assert cancelled.WhichOneof("result") == "error"
    assert cancelled.error.code == CODE_CANCELLED
    assert cancelled.metadata == op.metadata

    got = slow.get_op(op.id)
    assert got.done is True
    assert got.WhichOneof("result") == "error"
    assert got.error.code == CODE_CANCELLED
    assert got.error == cancelled.error

    slow.expect_disk_gone(disk_id)

    # cancelling again returns the finished operation unchanged
    again = slow.cancel_op(op.id)
    assert again == got

    # the name is free again
    new_op = slow.create_disk_op(folder, name="to-cancel")
    assert new_op.done is False
    new_id = unpack(new_op.metadata, disk_service_pb2.CreateDiskMetadata).disk_id
    assert new_id != disk_id
    assert slow.get_disk(new_id).name == "to-cancel"
    slow.cancel_op(new_op.id)


# ---------------------------------------------- running ops (medium server, 3 s)

@pytest.fixture
def medium_pending(medium, folder):
    """A READY disk, then an image and a snapshot of it that are still being created."""
    op = medium.create_disk_op(folder, size=8 * GiB)
    done = medium.wait_op(op, timeout=medium.delay_seconds + 10)
    assert done.WhichOneof("result") == "response", done
    disk = unpack(done.response, disk_pb2.Disk)
    image_op = medium.create_image_op(folder, disk_id=disk.id, name="pending-image")
    snap_op = medium.create_snapshot_op(folder, disk.id, name="pending-snap")
    started = time.monotonic()
    image_id = unpack(image_op.metadata, image_service_pb2.CreateImageMetadata).image_id
    snapshot_id = unpack(snap_op.metadata, snapshot_service_pb2.CreateSnapshotMetadata).snapshot_id
    return {
        "disk": disk, "image_op": image_op, "snap_op": snap_op,
        "image_id": image_id, "snapshot_id": snapshot_id, "started": started,
    }


def _still_within_delay(medium, started):
    elapsed = time.monotonic() - started
    assert elapsed < medium.delay_seconds - 0.5, (
        f"test too slow ({elapsed:.1f}s) to observe running operations on the medium server"
    )


def test_creating_image_and_snapshot(medium, folder, medium_pending):
    p = medium_pending
    image = medium.get_image(p["image_id"])
    snap = medium.get_snapshot(p["snapshot_id"])
    assert image.status == image_pb2.Image.Status.CREATING
    assert image.name == "pending-image"
    assert snap.status == snapshot_pb2.Snapshot.Status.CREATING
    assert snap.source_disk_id == p["disk"].id
    assert medium.get_op(p["image_op"].id).done is False
    assert medium.get_op(p["snap_op"].id).done is False
    _still_within_delay(medium, p["started"])

    # ...and they finish READY once the delay has passed
    img_done = medium.wait_op(p["image_op"], timeout=medium.delay_seconds + 10)
    snap_done = medium.wait_op(p["snap_op"], timeout=medium.delay_seconds + 10)
    assert unpack(img_done.response, image_pb2.Image).status == image_pb2.Image.Status.READY
    assert unpack(snap_done.response, snapshot_pb2.Snapshot).status == snapshot_pb2.Snapshot.Status.READY
    assert medium.get_image(p["image_id"]).status == image_pb2.Image.Status.READY
    assert medium.get_snapshot(p["snapshot_id"]).status == snapshot_pb2.Snapshot.Status.READY


def test_creating_image_and_snapshot_are_not_usable_as_sources(medium, folder, medium_pending):
    p = medium_pending
    img, snap = p["image_id"], p["snapshot_id"]
    expect_error(FAILED_PRECONDITION, medium.images.Create,
                 image_service_pb2.CreateImageRequest(folder_id=folder, image_id=img))
    expect_error(FAILED_PRECONDITION, medium.images.Create,
                 image_service_pb2.CreateImageRequest(folder_id=folder, snapshot_id=snap))
    expect_error(FAILED_PRECONDITION, medium.disks.Create,
                 disk_service_pb2.CreateDiskRequest(folder_id=folder, zone_id=ZONE, size=8 * GiB, image_id=img))
    expect_error(FAILED_PRECONDITION, medium.disks.Create,
                 disk_service_pb2.CreateDiskRequest(folder_id=folder, zone_id=ZONE, size=8 * GiB,
                                                    snapshot_id=snap))
    _still_within_delay(medium, p["started"])


def test_cancel_running_image_and_snapshot(medium, folder, medium_pending):
    p = medium_pending
    c_img = medium.cancel_op(p["image_op"].id)
    c_snap = medium.cancel_op(p["snap_op"].id)
    _still_within_delay(medium, p["started"])
    for cancelled in (c_img, c_snap):
        assert cancelled.done is True
        assert cancelled.WhichOneof("result") == "error"
        assert cancelled.error.code == CODE_CANCELLED
    medium.expect_image_gone(p["image_id"])
    medium.expect_snapshot_gone(p["snapshot_id"])

    # names are free again
    new_img_op = medium.create_image_op(folder, disk_id=p["disk"].id, name="pending-image")
    new_snap_op = medium.create_snapshot_op(folder, p["disk"].id, name="pending-snap")

    # once the original delay is over, the cancelled operations stay cancelled
    time.sleep(max(0.0, medium.delay_seconds + 0.5 - (time.monotonic() - p["started"])))
    for op in (p["image_op"], p["snap_op"]):
        got = medium.get_op(op.id)
        assert got.done is True
        assert got.WhichOneof("result") == "error", f"cancelled operation later changed: {got}"
        assert got.error.code == CODE_CANCELLED
    medium.expect_image_gone(p["image_id"])
    medium.expect_snapshot_gone(p["snapshot_id"])

    new_img = medium.wait_op(new_img_op, timeout=medium.delay_seconds + 10)
    new_snap = medium.wait_op(new_snap_op, timeout=medium.delay_seconds + 10)
    assert unpack(new_img.response, image_pb2.Image).name == "pending-image"
    assert unpack(new_snap.response, snapshot_pb2.Snapshot).name == "pending-snap"
