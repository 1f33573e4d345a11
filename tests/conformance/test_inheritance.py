"""What images, disks and snapshots inherit from their sources."""

import grpc
import pytest

from helpers import (
    GiB,
    LINUX,
    WINDOWS,
    expect_error,
    hw_gen2,
    hw_legacy_v2,
    image_service_pb2,
    disk_service_pb2,
    os_of,
)


# ---------------------------------------------------------------------------- os

def test_os_defaults_to_linux_for_every_source_kind(fast, folder):
    disk = fast.ready_disk(folder)
    from_disk = fast.ready_image(folder, disk_id=disk.id)
    assert from_disk.os.type == LINUX
    from_image = fast.ready_image(folder, image_id=from_disk.id)
    assert from_image.os.type == LINUX
    snap = fast.ready_snapshot(folder, disk.id)
    from_snap = fast.ready_image(folder, snapshot_id=snap.id)
    assert from_snap.os.type == LINUX


def test_requested_os_is_kept(fast, folder):
    disk = fast.ready_disk(folder)
    image = fast.ready_image(folder, disk_id=disk.id, os=os_of(WINDOWS))
    assert image.os.type == WINDOWS
    assert fast.get_image(image.id).os.type == WINDOWS


@pytest.fixture
def windows_chain(fast, folder):
    """A WINDOWS image, a disk made from it and a snapshot of that disk."""
    base_disk = fast.ready_disk(folder, size=8 * GiB)
    win_image = fast.ready_image(folder, disk_id=base_disk.id, os=os_of(WINDOWS))
    assert win_image.os.type == WINDOWS
    win_disk = fast.ready_disk(folder, size=8 * GiB, image_id=win_image.id)
    win_snap = fast.ready_snapshot(folder, win_disk.id)
    return win_image, win_disk, win_snap


def test_windows_passes_from_image_to_image(fast, folder, windows_chain):
    win_image, _, _ = windows_chain
    assert fast.ready_image(folder, image_id=win_image.id).os.type == WINDOWS


def test_windows_passes_through_disk_to_image(fast, folder, windows_chain):
    _, win_disk, _ = windows_chain
    image = fast.ready_image(folder, disk_id=win_disk.id)
    assert image.os.type == WINDOWS


def test_windows_passes_through_disk_and_snapshot_to_image(fast, folder, windows_chain):
    _, _, win_snap = windows_chain
    image = fast.ready_image(folder, snapshot_id=win_snap.id)
    assert image.os.type == WINDOWS
    # and further down the chain, image of that image
    assert fast.ready_image(folder, image_id=image.id).os.type == WINDOWS


@pytest.mark.parametrize("source", ["image", "disk", "snapshot"])
def test_requested_os_overrides_inherited_os(fast, folder, windows_chain, source):
    win_image, win_disk, win_snap = windows_chain
    src = {"image": {"image_id": win_image.id}, "disk": {"disk_id": win_disk.id},
           "snapshot": {"snapshot_id": win_snap.id}}[source]
    image = fast.ready_image(folder, os=os_of(LINUX), **src)
    assert image.os.type == LINUX


# ------------------------------------------------------------------- product_ids

@pytest.fixture
def product_chain(fast, folder):
    base_disk = fast.ready_disk(folder, size=8 * GiB)
    image = fast.ready_image(folder, disk_id=base_disk.id, product_ids=["prod-1", "prod-2"])
    assert list(image.product_ids) == ["prod-1", "prod-2"]
    disk = fast.ready_disk(folder, size=8 * GiB, image_id=image.id)
    snap = fast.ready_snapshot(folder, disk.id)
    return image, disk, snap


def test_product_ids_pass_image_to_disk_to_snapshot(product_chain):
    _, disk, snap = product_chain
    assert list(disk.product_ids) == ["prod-1", "prod-2"]
    assert list(snap.product_ids) == ["prod-1", "prod-2"]


@pytest.mark.parametrize("source", ["image", "disk", "snapshot"])
def test_product_ids_inherited_by_image(fast, folder, product_chain, source):
    image, disk, snap = product_chain
    src = {"image": {"image_id": image.id}, "disk": {"disk_id": disk.id},
           "snapshot": {"snapshot_id": snap.id}}[source]
    child = fast.ready_image(folder, **src)
    assert list(child.product_ids) == ["prod-1", "prod-2"]


@pytest.mark.parametrize("source", ["image", "disk", "snapshot"])
def test_requested_product_ids_override_inherited(fast, folder, product_chain, source):
    image, disk, snap = product_chain
    src = {"image": {"image_id": image.id}, "disk": {"disk_id": disk.id},
           "snapshot": {"snapshot_id": snap.id}}[source]
    child = fast.ready_image(folder, product_ids=["other"], **src)
    assert list(child.product_ids) == ["other"]


def test_plain_disk_and_its_image_have_no_product_ids(fast, folder):
    disk = fast.ready_disk(folder)
    assert list(disk.product_ids) == []
    image = fast.ready_image(folder, disk_id=disk.id)
    assert list(image.product_ids) == []


# ----------------------------------------------------------- hardware_generation

@pytest.fixture
def hw_chain(fast, folder):
    base_disk = fast.ready_disk(folder, size=8 * GiB)
    image = fast.ready_image(folder, disk_id=base_disk.id, hardware_generation=hw_legacy_v2())
    assert image.hardware_generation == hw_legacy_v2()
    disk = fast.ready_disk(folder, size=8 * GiB, image_id=image.id)
    snap = fast.ready_snapshot(folder, disk.id)
    return image, disk, snap


def test_hardware_generation_passes_image_to_disk_to_snapshot(hw_chain):
    _, disk, snap = hw_chain
    assert disk.hardware_generation.WhichOneof("features") == "legacy_features"
    assert disk.hardware_generation == hw_legacy_v2()
    assert snap.hardware_generation == hw_legacy_v2()


@pytest.mark.parametrize("source", ["image", "disk", "snapshot"])
def test_hardware_generation_inherited_by_image(fast, folder, hw_chain, source):
    image, disk, snap = hw_chain
    src = {"image": {"image_id": image.id}, "disk": {"disk_id": disk.id},
           "snapshot": {"snapshot_id": snap.id}}[source]
    child = fast.ready_image(folder, **src)
    assert child.hardware_generation == hw_legacy_v2()


@pytest.mark.parametrize("source", ["image", "disk", "snapshot"])
def test_requested_hardware_generation_overrides_inherited(fast, folder, hw_chain, source):
    image, disk, snap = hw_chain
    src = {"image": {"image_id": image.id}, "disk": {"disk_id": disk.id},
           "snapshot": {"snapshot_id": snap.id}}[source]
    child = fast.ready_image(folder, hardware_generation=hw_gen2(), **src)
    assert child.hardware_generation.WhichOneof("features") == "generation2_features"


def test_snapshot_requested_hardware_generation_wins(fast, folder, hw_chain):
    _, disk, _ = hw_chain
    snap = fast.ready_snapshot(folder, disk.id, hardware_generation=hw_gen2())
    assert snap.hardware_generation.WhichOneof("features") == "generation2_features"
    assert fast.get_snapshot(snap.id).hardware_generation.WhichOneof("features") == "generation2_features"


# ------------------------------------------------------------------------- sizes

def test_sizes_from_disk(fast, folder):
    disk = fast.ready_disk(folder, size=9 * GiB)
    image = fast.ready_image(folder, disk_id=disk.id)
    assert image.min_disk_size == 9 * GiB
    assert image.storage_size == 9 * GiB


def test_sizes_from_snapshot(fast, folder):
    small = fast.ready_disk(folder, size=5 * GiB)
    first = fast.ready_snapshot(folder, small.id)
    # a bigger disk restored from that snapshot, and a snapshot of it
    big = fast.ready_disk(folder, size=11 * GiB, snapshot_id=first.id)
    assert big.size == 11 * GiB
    snap = fast.ready_snapshot(folder, big.id)
    assert snap.disk_size == 11 * GiB
    assert snap.storage_size == 11 * GiB
    image = fast.ready_image(folder, snapshot_id=snap.id)
    assert image.min_disk_size == snap.disk_size
    assert image.storage_size == snap.storage_size


def test_sizes_from_image_keep_min_disk_size_and_storage_size_apart(fast, folder):
    disk = fast.ready_disk(folder, size=8 * GiB)
    src = fast.ready_image(folder, disk_id=disk.id, min_disk_size=16 * GiB)
    assert src.min_disk_size == 16 * GiB
    assert src.storage_size == 8 * GiB
    child = fast.ready_image(folder, image_id=src.id)
    assert child.min_disk_size == 16 * GiB
    assert child.storage_size == 8 * GiB


def test_requested_larger_min_disk_size_wins(fast, folder):
    disk = fast.ready_disk(folder, size=8 * GiB)
    image = fast.ready_image(folder, disk_id=disk.id, min_disk_size=20 * GiB)
    assert image.min_disk_size == 20 * GiB
    snap = fast.ready_snapshot(folder, disk.id)
    image2 = fast.ready_image(folder, snapshot_id=snap.id, min_disk_size=8 * GiB)  # equal is fine
    assert image2.min_disk_size == 8 * GiB


@pytest.mark.parametrize("source", ["image", "disk", "snapshot"])
def test_requested_min_disk_size_below_source_size_is_refused(fast, folder, source):
    disk = fast.ready_disk(folder, size=8 * GiB)
    if source == "image":
        src = {"image_id": fast.ready_image(folder, disk_id=disk.id).id}
    elif source == "snapshot":
        src = {"snapshot_id": fast.ready_snapshot(folder, disk.id).id}
    else:
        src = {"disk_id": disk.id}
    req = image_service_pb2.CreateImageRequest(folder_id=folder, min_disk_size=8 * GiB - 1, **src)
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, fast.images.Create, req, "min_disk_size")


def test_disk_from_image_must_be_at_least_min_disk_size(fast, folder):
    disk = fast.ready_disk(folder, size=8 * GiB)
    image = fast.ready_image(folder, disk_id=disk.id, min_disk_size=16 * GiB)
    req = disk_service_pb2.CreateDiskRequest(folder_id=folder, zone_id="ru-central1-a",
                                             size=16 * GiB - 1, image_id=image.id)
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, fast.disks.Create, req, "size")
    ok = fast.ready_disk(folder, size=16 * GiB, image_id=image.id)
    assert ok.size == 16 * GiB


def test_disk_from_snapshot_must_be_at_least_disk_size(fast, folder):
    disk = fast.ready_disk(folder, size=8 * GiB)
    snap = fast.ready_snapshot(folder, disk.id)
    req = disk_service_pb2.CreateDiskRequest(folder_id=folder, zone_id="ru-central1-a",
                                             size=8 * GiB - 4096, snapshot_id=snap.id)
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, fast.disks.Create, req, "size")
    ok = fast.ready_disk(folder, size=8 * GiB, snapshot_id=snap.id)
    assert ok.size == 8 * GiB
