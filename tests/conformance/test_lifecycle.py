"""The whole life of images, snapshots and disks through the official SDK's stubs: List
with filter, order and pages; Update with a mask; Delete; GetLatestByFamily;
ListOperations; access bindings; disk Move and Relocate; the public catalogue. These are
what Terraform- and Packer-style tools call."""

import grpc
from google.protobuf import field_mask_pb2
from yandex.cloud.access import access_pb2
from yandex.cloud.compute.v1 import disk_pb2

from helpers import (
    GiB,
    disk_service_pb2,
    expect_error,
    expect_ok,
    image_pb2,
    image_service_pb2,
    snapshot_service_pb2,
    unpack,
)


def list_all(method, request_cls, field, **kw):
    """Every item of a list, page by page."""
    items, token = [], ""
    while True:
        page = expect_ok(method, request_cls(page_token=token, **kw))
        items.extend(getattr(page, field))
        if not page.next_page_token:
            return items
        assert len(page.next_page_token) <= 100
        token = page.next_page_token


def test_images_list_filtered_ordered_and_paged(fast, folder):
    disk = fast.ready_disk(folder, size=GiB)
    for name in ["c-image", "a-image", "b-image"]:
        fast.ready_image(folder, name=name, disk_id=disk.id, family="web")
    images = list_all(fast.images.List, image_service_pb2.ListImagesRequest, "images",
                      folder_id=folder, page_size=2, order_by="name asc")
    assert [image.name for image in images] == ["a-image", "b-image", "c-image"]
    filtered = expect_ok(fast.images.List, image_service_pb2.ListImagesRequest(
        folder_id=folder, filter='name IN ("a-image", "c-image") AND status = "READY"'))
    assert sorted(image.name for image in filtered.images) == ["a-image", "c-image"]
    error = expect_error(grpc.StatusCode.INVALID_ARGUMENT, fast.images.List,
                         image_service_pb2.ListImagesRequest(folder_id=folder, filter="name ==="))
    assert "position" in error.details()
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, fast.images.List,
                 image_service_pb2.ListImagesRequest(folder_id=folder, page_size=1001), "page_size")


def test_latest_by_family_in_the_public_catalogue_and_a_folder(fast, folder):
    latest = expect_ok(fast.images.GetLatestByFamily, image_service_pb2.GetImageLatestByFamilyRequest(
        folder_id="standard-images", family="ubuntu-2204-lts"))
    assert latest.status == image_pb2.Image.Status.READY
    assert latest.os.type == image_pb2.Os.Type.LINUX
    disk = fast.ready_disk(folder, size=GiB)
    fast.ready_image(folder, name="v1", disk_id=disk.id, family="app")
    second = fast.ready_image(folder, name="v2", disk_id=disk.id, family="app")
    found = expect_ok(fast.images.GetLatestByFamily, image_service_pb2.GetImageLatestByFamilyRequest(
        folder_id=folder, family="app"))
    assert found.id == second.id
    expect_error(grpc.StatusCode.NOT_FOUND, fast.images.GetLatestByFamily,
                 image_service_pb2.GetImageLatestByFamilyRequest(folder_id=folder, family="none"))


def test_update_then_delete_then_the_name_is_free(fast, folder):
    disk = fast.ready_disk(folder, size=GiB)
    snapshot = fast.ready_snapshot(folder, disk.id, name="nightly")
    op = expect_ok(fast.snapshots.Update, snapshot_service_pb2.UpdateSnapshotRequest(
        snapshot_id=snapshot.id, update_mask=field_mask_pb2.FieldMask(paths=["labels"]),
        labels={"keep": "yes"}, name="ignored"))
    done = fast.wait_op(op)
    updated = fast.get_snapshot(snapshot.id)
    assert updated.labels == {"keep": "yes"} and updated.name == "nightly"
    assert done.WhichOneof("result") == "response"
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, fast.snapshots.Update,
                 snapshot_service_pb2.UpdateSnapshotRequest(snapshot_id=snapshot.id), "update_mask")
    # The disk is in use by nothing now; the snapshot goes, then the disk.
    op = expect_ok(fast.snapshots.Delete, snapshot_service_pb2.DeleteSnapshotRequest(snapshot_id=snapshot.id))
    fast.wait_op(op)
    fast.expect_snapshot_gone(snapshot.id)
    fast.ready_snapshot(folder, disk.id, name="nightly")
    operations = expect_ok(fast.snapshots.ListOperations,
                           snapshot_service_pb2.ListSnapshotOperationsRequest(snapshot_id=snapshot.id))
    assert [o.description for o in operations.operations] == [
        "Delete snapshot", "Update snapshot", "Create snapshot"]


def test_a_disk_moves_relocates_and_keeps_its_bindings(fast, folder):
    disk = fast.ready_disk(folder, size=GiB, name="mobile")
    binding = access_pb2.AccessBinding(
        role_id="compute.viewer", subject=access_pb2.Subject(id="aje1", type="serviceAccount"))
    fast.wait_op(expect_ok(fast.disks.SetAccessBindings, access_pb2.SetAccessBindingsRequest(
        resource_id=disk.id, access_bindings=[binding])))
    listed = expect_ok(fast.disks.ListAccessBindings, access_pb2.ListAccessBindingsRequest(resource_id=disk.id))
    assert list(listed.access_bindings) == [binding]
    other_folder = folder + "x"
    done = fast.wait_op(expect_ok(fast.disks.Move, disk_service_pb2.MoveDiskRequest(
        disk_id=disk.id, destination_folder_id=other_folder)))
    assert unpack(done.response, disk_pb2.Disk).folder_id == other_folder
    done = fast.wait_op(expect_ok(fast.disks.Relocate, disk_service_pb2.RelocateDiskRequest(
        disk_id=disk.id, destination_zone_id="ru-central1-b")))
    assert unpack(done.response, disk_pb2.Disk).zone_id == "ru-central1-b"
    moved = list_all(fast.disks.List, disk_service_pb2.ListDisksRequest, "disks", folder_id=other_folder)
    assert [d.id for d in moved] == [disk.id]
    listed = expect_ok(fast.disks.ListAccessBindings, access_pb2.ListAccessBindingsRequest(resource_id=disk.id))
    assert list(listed.access_bindings) == [binding]


def test_a_resource_in_use_cannot_be_deleted(slow, folder):
    op = slow.create_disk_op(folder, size=GiB)
    disk_id = unpack(op.metadata, disk_service_pb2.CreateDiskMetadata).disk_id
    error = expect_error(grpc.StatusCode.FAILED_PRECONDITION, slow.disks.Delete,
                         disk_service_pb2.DeleteDiskRequest(disk_id=disk_id))
    assert op.id in error.details()
