"""Every create path, followed to the end through OperationService.Get."""

import grpc

from helpers import (
    CODE_NOT_FOUND,
    GiB,
    LINUX,
    ZONE,
    assert_id,
    assert_recent_timestamp,
    bm_image_service_pb2,
    check_new_operation,
    disk_pb2,
    disk_service_pb2,
    expect_error,
    fake_id,
    image_pb2,
    image_service_pb2,
    snapshot_pb2,
    snapshot_service_pb2,
    unpack,
)


def _finished_response(api, op, cls):
    done = api.wait_op(op)
    assert done.id == op.id
    assert done.done is True
    assert done.WhichOneof("result") == "response", f"operation failed: {done.error}"
    assert done.metadata == op.metadata, "metadata changed while the operation ran"
    assert done.description == op.description
    assert done.created_at == op.created_at
    return done, unpack(done.response, cls)


# ------------------------------------------------------------------------ disks

def test_create_empty_disk(fast, folder):
    req = disk_service_pb2.CreateDiskRequest(
        folder_id=folder, name="data-disk", description="an empty disk",
        labels={"env": "test", "team": "a.b/c@d"}, zone_id=ZONE, size=8 * GiB,
    )
    op = fast.disks.Create(req, timeout=10)
    meta = check_new_operation(op, "Create disk", disk_service_pb2.CreateDiskMetadata)
    assert_id(meta.disk_id, "disk id")
    assert meta.disk_id != op.id

    done, disk = _finished_response(fast, op, disk_pb2.Disk)
    assert disk.id == meta.disk_id
    assert disk.folder_id == folder
    assert disk.name == "data-disk"
    assert disk.description == "an empty disk"
    assert dict(disk.labels) == {"env": "test", "team": "a.b/c@d"}
    assert disk.zone_id == ZONE
    assert disk.size == 8 * GiB
    assert disk.type_id == "network-hdd"
    assert disk.block_size == 4096
    assert disk.status == disk_pb2.Disk.Status.READY
    assert disk.WhichOneof("source") is None
    assert_recent_timestamp(disk, "created_at")

    got = fast.get_disk(disk.id)
    assert got == disk


def test_create_disk_keeps_requested_type_and_block_size(fast, folder):
    disk = fast.ready_disk(folder, size=4 * GiB, type_id="network-ssd", block_size=8192)
    assert disk.type_id == "network-ssd"
    assert disk.block_size == 8192
    assert disk.size == 4 * GiB


def test_create_disk_from_image(fast, folder):
    src = fast.ready_disk(folder, size=6 * GiB)
    image = fast.ready_image(folder, disk_id=src.id, product_ids=["prod-a"])
    op = fast.create_disk_op(folder, size=10 * GiB, image_id=image.id, name="from-image")
    meta = check_new_operation(op, "Create disk", disk_service_pb2.CreateDiskMetadata)
    _, disk = _finished_response(fast, op, disk_pb2.Disk)
    assert disk.id == meta.disk_id
    assert disk.status == disk_pb2.Disk.Status.READY
    assert disk.size == 10 * GiB
    assert disk.WhichOneof("source") == "source_image_id"
    assert disk.source_image_id == image.id
    assert list(disk.product_ids) == ["prod-a"]
    assert disk.name == "from-image"
    assert fast.get_disk(disk.id) == disk


def test_create_disk_from_snapshot(fast, folder):
    src = fast.ready_disk(folder, size=5 * GiB)
    snap = fast.ready_snapshot(folder, src.id)
    op = fast.create_disk_op(folder, size=5 * GiB, snapshot_id=snap.id)
    meta = check_new_operation(op, "Create disk", disk_service_pb2.CreateDiskMetadata)
    _, disk = _finished_response(fast, op, disk_pb2.Disk)
    assert disk.id == meta.disk_id
    assert disk.status == disk_pb2.Disk.Status.READY
    assert disk.size == 5 * GiB
    assert disk.WhichOneof("source") == "source_snapshot_id"
    assert disk.source_snapshot_id == snap.id
    assert fast.get_disk(disk.id) == disk


# -------------------------------------------------------------------- snapshots

def test_create_snapshot_from_disk(fast, folder):
    disk = fast.ready_disk(folder, size=12 * GiB)
    req = snapshot_service_pb2.CreateSnapshotRequest(
        folder_id=folder, disk_id=disk.id, name="snap-1", description="first snapshot",
        labels={"k": "v"},
    )
    op = fast.snapshots.Create(req, timeout=10)
    meta = check_new_operation(op, "Create snapshot", snapshot_service_pb2.CreateSnapshotMetadata)
    assert_id(meta.snapshot_id, "snapshot id")
    assert meta.disk_id == disk.id

    _, snap = _finished_response(fast, op, snapshot_pb2.Snapshot)
    assert snap.id == meta.snapshot_id
    assert snap.folder_id == folder
    assert snap.name == "snap-1"
    assert snap.description == "first snapshot"
    assert dict(snap.labels) == {"k": "v"}
    assert snap.status == snapshot_pb2.Snapshot.Status.READY
    assert snap.source_disk_id == disk.id
    assert snap.disk_size == 12 * GiB
    assert snap.storage_size == 12 * GiB
    assert_recent_timestamp(snap, "created_at")
    assert fast.get_snapshot(snap.id) == snap
    # the source disk is untouched
    assert fast.get_disk(disk.id) == disk


# ----------------------------------------------------------------------- images

def test_create_image_from_disk(fast, folder):
    disk = fast.ready_disk(folder, size=8 * GiB)
    req = image_service_pb2.CreateImageRequest(
        folder_id=folder, name="img-from-disk", description="image of a disk",
        labels={"os": "linux"}, family="ubuntu-2204", disk_id=disk.id,
    )
    op = fast.images.Create(req, timeout=10)
    meta = check_new_operation(op, "Create image", image_service_pb2.CreateImageMetadata)
    assert_id(meta.image_id, "image id")

    _, image = _finished_response(fast, op, image_pb2.Image)
    assert image.id == meta.image_id
    assert image.folder_id == folder
    assert image.name == "img-from-disk"
    assert image.description == "image of a disk"
    assert dict(image.labels) == {"os": "linux"}
    assert image.family == "ubuntu-2204"
    assert image.status == image_pb2.Image.Status.READY
    assert image.min_disk_size == 8 * GiB
    assert image.storage_size == 8 * GiB
    assert image.os.type == LINUX
    assert_recent_timestamp(image, "created_at")
    assert fast.get_image(image.id) == image


def test_create_image_from_image(fast, folder):
    disk = fast.ready_disk(folder, size=8 * GiB)
    src = fast.ready_image(folder, disk_id=disk.id)
    op = fast.create_image_op(folder, image_id=src.id, name="copy")
    meta = check_new_operation(op, "Create image", image_service_pb2.CreateImageMetadata)
    _, image = _finished_response(fast, op, image_pb2.Image)
    assert image.id == meta.image_id != src.id
    assert image.name == "copy"
    assert image.status == image_pb2.Image.Status.READY
    assert image.min_disk_size == src.min_disk_size
    assert image.storage_size == src.storage_size
    assert fast.get_image(image.id) == image
    assert fast.get_image(src.id) == src


def test_create_image_from_snapshot(fast, folder):
    disk = fast.ready_disk(folder, size=7 * GiB)
    snap = fast.ready_snapshot(folder, disk.id)
    op = fast.create_image_op(folder, snapshot_id=snap.id, name="from-snap")
    meta = check_new_operation(op, "Create image", image_service_pb2.CreateImageMetadata)
    _, image = _finished_response(fast, op, image_pb2.Image)
    assert image.id == meta.image_id
    assert image.status == image_pb2.Image.Status.READY
    assert image.min_disk_size == snap.disk_size == 7 * GiB
    assert image.storage_size == snap.storage_size
    assert image.os.type == LINUX
    assert fast.get_image(image.id) == image


def test_create_image_from_uri_imports_a_qcow2(fast, folder, image_source):
    op = fast.create_image_op(folder, uri=image_source.url("disk.qcow2"), name="imported")
    meta = check_new_operation(op, "Create image", image_service_pb2.CreateImageMetadata)
    assert_id(meta.image_id, "image id")
    done = fast.wait_op(op)
    assert done.done is True
    assert done.WhichOneof("result") == "response", f"uri import failed: {done.error}"
    image = image_pb2.Image()
    assert done.response.Unpack(image)
    assert image.status == image_pb2.Image.Status.READY
    assert image.storage_size == image_source.qcow2.stat().st_size
    assert image.size == GiB
    assert image.min_disk_size == GiB
    assert image.os.type == LINUX
    assert fast.get_image(meta.image_id) == image


def test_failed_uri_import_leaves_nothing_and_frees_the_name(fast, folder, image_source):
    op = fast.create_image_op(folder, uri=image_source.url("missing.qcow2"), name="imported")
    meta = check_new_operation(op, "Create image", image_service_pb2.CreateImageMetadata)
    done = fast.wait_op(op)
    assert done.WhichOneof("result") == "error", f"uri import unexpectedly succeeded: {done}"
    assert done.error.code == CODE_NOT_FOUND, f"error {done.error}"
    assert "404" in done.error.message, done.error.message
    fast.expect_image_gone(meta.image_id)
    # the failed import frees the name again
    op2 = fast.create_image_op(folder, uri=image_source.url("disk.qcow2"), name="imported")
    assert op2.id != op.id
    assert fast.wait_op(op2).WhichOneof("result") == "response"


def test_create_baremetal_image_from_uri(fast, folder, image_source):
    req = bm_image_service_pb2.CreateImageRequest(
        folder_id=folder, name="bm-image", description="bare metal", uri=image_source.url("boot.iso"),
        labels={"a": "b"},
    )
    op = fast.bm_images.Create(req, timeout=10)
    assert_id(op.id, "operation id")
    assert op.done is False
    assert op.WhichOneof("result") is None
    assert op.description, "operation description is empty"
    assert_recent_timestamp(op, "created_at")
    assert_recent_timestamp(op, "modified_at")
    assert op.created_by
    meta = unpack(op.metadata, bm_image_service_pb2.CreateImageMetadata)
    assert_id(meta.image_id, "image id")
    done = fast.wait_op(op)
    assert done.WhichOneof("result") == "response", f"baremetal import failed: {done.error}"
    image = fast.get_bm_image(meta.image_id)
    assert image.status == image.Status.READY
    assert image.checksum == image_source.iso_md5
    assert image.name == "bm-image" and dict(image.labels) == {"a": "b"}


def test_operation_get_returns_same_operation_as_create(fast, folder):
    op = fast.create_disk_op(folder)
    got = fast.get_op(op.id)
    assert got.id == op.id
    assert got.metadata == op.metadata
    assert got.description == op.description
    assert got.created_at == op.created_at
    assert got.created_by == op.created_by


def test_unknown_resource_get_is_not_found(fast):
    expect_error(grpc.StatusCode.NOT_FOUND, fast.images.Get, image_service_pb2.GetImageRequest(image_id=fake_id()))
    expect_error(grpc.StatusCode.NOT_FOUND, fast.disks.Get, disk_service_pb2.GetDiskRequest(disk_id=fake_id()))
    expect_error(grpc.StatusCode.NOT_FOUND, fast.snapshots.Get,
                 snapshot_service_pb2.GetSnapshotRequest(snapshot_id=fake_id()))
    expect_error(grpc.StatusCode.NOT_FOUND, fast.bm_images.Get,
                 bm_image_service_pb2.GetImageRequest(image_id=fake_id()))
