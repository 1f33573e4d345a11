"""Request validation of every Create: each rule with a failing case and a passing edge case.

A failing case must give INVALID_ARGUMENT whose message names the field.
A passing case must return an Operation, and (where the operation can
succeed) the created resource must carry the requested value.
"""

from __future__ import annotations

from typing import NamedTuple

import grpc
import pytest

from helpers import (
    CODES_SOURCE_UNREACHABLE,
    DISK_SIZE_MAX,
    DISK_SIZE_MIN,
    IMAGE_MIN_DISK_SIZE_MAX,
    IMAGE_MIN_DISK_SIZE_MIN,
    ZONE,
    assert_id,
    bm_image_service_pb2,
    disk_pb2,
    disk_service_pb2,
    expect_error,
    expect_ok,
    image_pb2,
    image_service_pb2,
    snapshot_pb2,
    snapshot_service_pb2,
    unique_folder,
    unique_name,
    unpack,
)


class Case(NamedTuple):
    id: str
    overrides: dict
    field: str | None = None  # None: the request must be accepted
    fragments: tuple = ()


def labels_n(n: int) -> dict:
    return {f"k{i}": "v" for i in range(n)}


def folder_of(length: int):
    return lambda: unique_folder(length)


def _params(cases):
    return [pytest.param(c, id=c.id) for c in cases]


def _materialize(overrides: dict) -> dict:
    return {k: (v() if callable(v) else v) for k, v in overrides.items()}


# Rules shared by compute images, snapshots and disks (same annotations in the .proto files).
FOLDER_CASES = [
    Case("folder_id-missing", {"folder_id": ""}, "folder_id", ("required",)),
    Case("folder_id-50", {"folder_id": folder_of(50)}),
    Case("folder_id-51", {"folder_id": folder_of(51)}, "folder_id"),
]

COMMON_CASES = [
    Case("name-empty", {"name": ""}),
    Case("name-1", {"name": "a"}),
    Case("name-63", {"name": "a" + "b" * 61 + "c"}),
    Case("name-64", {"name": "a" * 64}, "name"),
    Case("name-inner-dash-digit", {"name": "a-1-b9"}),
    Case("name-ends-with-digit", {"name": "disk9"}),
    Case("name-trailing-dash", {"name": "ab-"}, "name"),
    Case("name-leading-dash", {"name": "-ab"}, "name"),
    Case("name-leading-digit", {"name": "1ab"}, "name"),
    Case("name-uppercase", {"name": "Bad"}, "name"),
    Case("name-underscore", {"name": "a_b"}, "name"),
    Case("name-dot", {"name": "a.b"}, "name"),
    Case("description-256", {"description": "d" * 256}),
    Case("description-257", {"description": "d" * 257}, "description", ("256",)),
    Case("labels-0", {"labels": {}}),
    Case("labels-64", {"labels": labels_n(64)}),
    Case("labels-65", {"labels": labels_n(65)}, "labels", ("64",)),
    Case("label-key-63", {"labels": {"k" * 63: "v"}}),
    Case("label-key-64", {"labels": {"k" * 64: "v"}}, "labels"),
    Case("label-key-empty", {"labels": {"": "v"}}, "labels"),
    Case("label-key-uppercase", {"labels": {"Bad": "v"}}, "labels"),
    Case("label-key-leading-digit", {"labels": {"1a": "v"}}, "labels"),
    Case("label-key-leading-dash", {"labels": {"-a": "v"}}, "labels"),
    Case("label-key-space", {"labels": {"a b": "v"}}, "labels"),
    # the .proto pattern is [-_./\\@0-9a-z]: in the regex "\\@" is an escaped "@", a backslash is not allowed
    Case("label-key-all-allowed-chars", {"labels": {"a-_./@09z": "v"}}),
    Case("label-key-backslash", {"labels": {"a\\b": "v"}}, "labels"),
    Case("label-value-63", {"labels": {"k": "v" * 63}}),
    Case("label-value-64", {"labels": {"k": "v" * 64}}, "labels"),
    Case("label-value-empty", {"labels": {"k": ""}}),
    Case("label-value-all-allowed-chars", {"labels": {"k": "-_./@09az"}}),
    Case("label-value-backslash", {"labels": {"k": "a\\b"}}, "labels"),
    Case("label-value-uppercase", {"labels": {"k": "Bad"}}, "labels"),
    Case("label-value-space", {"labels": {"k": "a b"}}, "labels"),
    Case("label-value-colon", {"labels": {"k": "a:b"}}, "labels"),
]

IMAGE_CASES = FOLDER_CASES + COMMON_CASES + [
    Case("family-empty", {"family": ""}),
    Case("family-3", {"family": "abc"}),
    Case("family-2", {"family": "ab"}, "family"),
    Case("family-63", {"family": "f" * 63}),
    Case("family-64", {"family": "f" * 64}, "family"),
    Case("family-inner-dash", {"family": "ubuntu-2204-lts"}),
    Case("family-trailing-dash", {"family": "abc-"}, "family"),
    Case("family-uppercase", {"family": "Ubuntu"}, "family"),
    Case("family-leading-digit", {"family": "1abc"}, "family"),
    Case("min_disk_size-unset", {"min_disk_size": 0}),
    Case("min_disk_size-min", {"min_disk_size": IMAGE_MIN_DISK_SIZE_MIN}),
    Case("min_disk_size-below-min", {"min_disk_size": IMAGE_MIN_DISK_SIZE_MIN - 1}, "min_disk_size",
         ("4194304",)),
    Case("min_disk_size-5", {"min_disk_size": 5}, "min_disk_size", ("4194304",)),
    Case("min_disk_size-negative", {"min_disk_size": -1}, "min_disk_size"),
    Case("min_disk_size-max", {"min_disk_size": IMAGE_MIN_DISK_SIZE_MAX}),
    Case("min_disk_size-above-max", {"min_disk_size": IMAGE_MIN_DISK_SIZE_MAX + 1}, "min_disk_size",
         ("4398046511104",)),
    Case("product_ids-one-50", {"product_ids": ["p" * 50]}),
    Case("product_ids-several", {"product_ids": ["a", "b", "c"]}),
    Case("product_ids-one-51", {"product_ids": ["p" * 51]}, "product_ids"),
    Case("product_ids-second-51", {"product_ids": ["ok", "p" * 51]}, "product_ids"),
    Case("source-missing", {"_source": None}, "source"),
    Case("image_id-51", {"_source": {"image_id": "a" * 51}}, "image_id"),
    Case("disk_id-51", {"_source": {"disk_id": "a" * 51}}, "disk_id"),
    Case("snapshot_id-51", {"_source": {"snapshot_id": "a" * 51}}, "snapshot_id"),
]

URI_CASES = [
    Case("uri-http", {"uri": "http://example.com/image.qcow2"}),
    Case("uri-https-port-query", {"uri": "https://storage.example.com:8443/b/i.img?x=1"}),
    Case("uri-ftp", {"uri": "ftp://example.com/image.qcow2"}, "uri"),
    Case("uri-file", {"uri": "file:///var/images/i.img"}, "uri"),
    Case("uri-no-scheme", {"uri": "example.com/image.qcow2"}, "uri"),
    Case("uri-relative-path", {"uri": "/images/i.img"}, "uri"),
    Case("uri-no-host", {"uri": "http://"}, "uri"),
    # an empty authority ("https:///x") has no host, and "http:host/x" is not an "http://" URL;
    # lenient WHATWG-style parsing would silently turn both into a different host
    Case("uri-empty-host", {"uri": "https:///image.qcow2"}, "uri"),
    Case("uri-empty-host-four-slashes", {"uri": "https:////image.qcow2"}, "uri"),
    Case("uri-scheme-without-slashes", {"uri": "http:example.com/image.qcow2"}, "uri"),
    Case("uri-empty-host-with-port", {"uri": "http://:80/image.qcow2"}, "uri"),
    Case("uri-garbage", {"uri": "not a url"}, "uri"),
]

SNAPSHOT_CASES = FOLDER_CASES + COMMON_CASES + [
    Case("disk_id-missing", {"disk_id": ""}, "disk_id"),
    Case("disk_id-51", {"disk_id": "d" * 51}, "disk_id"),
]

DISK_CASES = FOLDER_CASES + COMMON_CASES + [
    Case("zone_id-missing", {"zone_id": ""}, "zone_id"),
    # zones and disk types are those the server offers (--zones, --disk-types)
    Case("zone_id-offered", {"zone_id": "ru-central1-d"}),
    Case("zone_id-unknown", {"zone_id": "z" * 50}, "zone_id", ("unknown zone",)),
    Case("zone_id-51", {"zone_id": "z" * 51}, "zone_id"),
    Case("size-missing", {"size": 0}, "size"),
    Case("size-min", {"size": DISK_SIZE_MIN}),
    Case("size-below-min", {"size": DISK_SIZE_MIN - 1}, "size"),
    Case("size-negative", {"size": -DISK_SIZE_MIN}, "size"),
    Case("size-max", {"size": DISK_SIZE_MAX}),
    Case("size-above-max", {"size": DISK_SIZE_MAX + 1}, "size"),
    Case("type_id-offered", {"type_id": "network-ssd-nonreplicated"}),
    Case("type_id-unknown", {"type_id": "t" * 50}, "type_id", ("unknown disk type",)),
    Case("type_id-51", {"type_id": "t" * 51}, "type_id"),
    # block sizes are powers of two from 4 KiB to 128 KiB
    Case("block_size-4k", {"block_size": 4096}),
    Case("block_size-128k", {"block_size": 131072}),
    Case("block_size-256k", {"block_size": 262144}, "block_size", ("power of two",)),
    Case("block_size-not-a-power", {"block_size": 12288}, "block_size"),
    Case("block_size-3", {"block_size": 3}, "block_size"),
    Case("block_size-negative", {"block_size": -4096}, "block_size"),
    Case("block_size-huge", {"block_size": 2**63 - 1}, "block_size"),
    Case("image_id-51", {"image_id": "i" * 51}, "image_id"),
    Case("snapshot_id-51", {"snapshot_id": "s" * 51}, "snapshot_id"),
]


def _target_folder(values: dict, default_folder: str) -> str:
    """The folder a passing request creates its resource in."""
    return values.get("folder_id", default_folder)


def _check_stored(resource, values: dict):
    """The created resource carries the values that were requested."""
    for key, value in values.items():
        if key.startswith("_") or key in ("disk_id", "image_id", "snapshot_id", "uri"):
            continue
        if key == "min_disk_size" and value == 0:
            continue  # unset: defaulted from the source
        if not any(f.name == key for f in resource.DESCRIPTOR.fields):
            continue
        got = getattr(resource, key)
        if key == "labels":
            got = dict(got)
        elif key == "product_ids":
            got = list(got)
        assert got == value, f"{type(resource).__name__}.{key} is {got!r}, requested {value!r}"


# ----------------------------------------------------------------------- images

@pytest.mark.parametrize("case", _params(IMAGE_CASES))
def test_image_create_validation(fast, folder, case):
    values = _materialize(case.overrides)
    target = _target_folder(values, folder)
    # the source: a minimal READY disk (in the image's folder when that folder is valid)
    disk = fast.ready_disk(target if case.field is None else folder, size=DISK_SIZE_MIN)
    fields = {"folder_id": folder, "disk_id": disk.id}
    if "_source" in values:
        del fields["disk_id"]
        fields.update(values.pop("_source") or {})
    fields.update(values)
    req = image_service_pb2.CreateImageRequest(**fields)
    if case.field is not None:
        expect_error(grpc.StatusCode.INVALID_ARGUMENT, fast.images.Create, req, case.field, *case.fragments)
        return
    op = expect_ok(fast.images.Create, req)
    assert op.done is False
    image = fast._finish(op, image_pb2.Image)
    _check_stored(image, fields)


@pytest.mark.parametrize("case", _params(URI_CASES))
def test_image_create_uri_validation(fast, folder, case):
    req = image_service_pb2.CreateImageRequest(folder_id=folder, name=unique_name("u"), **case.overrides)
    if case.field is not None:
        expect_error(grpc.StatusCode.INVALID_ARGUMENT, fast.images.Create, req, case.field, *case.fragments)
        return
    op = expect_ok(fast.images.Create, req)
    assert op.done is False
    meta = unpack(op.metadata, image_service_pb2.CreateImageMetadata)
    assert_id(meta.image_id)
    done = fast.wait_op(op)
    # The URIs name hosts that do not resolve here: the accepted import ends unreachable.
    assert done.WhichOneof("result") == "error"
    assert done.error.code in CODES_SOURCE_UNREACHABLE, f"accepted uri import ended with {done.error}"


# -------------------------------------------------------------------- snapshots

@pytest.mark.parametrize("case", _params(SNAPSHOT_CASES))
def test_snapshot_create_validation(fast, folder, case):
    values = _materialize(case.overrides)
    target = _target_folder(values, folder)
    disk = fast.ready_disk(target if case.field is None else folder)
    fields = {"folder_id": folder, "disk_id": disk.id}
    fields.update(values)
    req = snapshot_service_pb2.CreateSnapshotRequest(**fields)
    if case.field is not None:
        expect_error(grpc.StatusCode.INVALID_ARGUMENT, fast.snapshots.Create, req, case.field, *case.fragments)
        return
    op = expect_ok(fast.snapshots.Create, req)
    assert op.done is False
    snap = fast._finish(op, snapshot_pb2.Snapshot)
    _check_stored(snap, fields)


# ------------------------------------------------------------------------ disks

@pytest.mark.parametrize("case", _params(DISK_CASES))
def test_disk_create_validation(fast, folder, case):
    values = _materialize(case.overrides)
    fields = {"folder_id": folder, "zone_id": ZONE, "size": DISK_SIZE_MIN}
    fields.update(values)
    req = disk_service_pb2.CreateDiskRequest(**fields)
    if case.field is not None:
        expect_error(grpc.StatusCode.INVALID_ARGUMENT, fast.disks.Create, req, case.field, *case.fragments)
        return
    op = expect_ok(fast.disks.Create, req)
    assert op.done is False
    disk = fast._finish(op, disk_pb2.Disk)
    _check_stored(disk, fields)


# -------------------------------------------------------------------- baremetal



def _uri_of(length: int) -> str:
    prefix = "https://example.com/"
    return prefix + "u" * (length - len(prefix))


BAREMETAL_CASES = [
    Case("folder_id-missing", {"folder_id": ""}, "folder_id"),
    Case("folder_id-50", {"folder_id": folder_of(50)}),
    Case("folder_id-51", {"folder_id": folder_of(51)}, "folder_id"),
    Case("folder_id-dots-dashes", {"folder_id": lambda: unique_folder(12) + ".a-b"}),
    Case("folder_id-uppercase", {"folder_id": "Fabc"}, "folder_id"),
    Case("folder_id-leading-digit", {"folder_id": "1abc"}, "folder_id"),
    Case("folder_id-underscore", {"folder_id": "a_b"}, "folder_id"),
    Case("name-missing", {"name": ""}, "name"),
    Case("name-1", {"name": "a"}, "name"),
    Case("name-2", {"name": "ab"}),
    Case("name-63", {"name": "a" * 63}),
    Case("name-64", {"name": "a" * 64}, "name"),
    Case("name-double-dash", {"name": "a--b"}),
    Case("name-trailing-dash", {"name": "ab-"}, "name"),
    Case("name-leading-dash", {"name": "-ab"}, "name"),
    Case("name-leading-digit", {"name": "1ab"}, "name"),
    Case("name-uppercase", {"name": "Ab"}, "name"),
    Case("description-1024", {"description": "d" * 1024}),
    Case("description-1025", {"description": "d" * 1025}, "description"),
    Case("uri-missing", {"uri": ""}, "uri"),
    Case("uri-1024", {"uri": _uri_of(1024)}),
    Case("uri-1025", {"uri": _uri_of(1025)}, "uri"),
    Case("uri-http", {"uri": "http://example.com/bm.img"}),
    Case("uri-ftp", {"uri": "ftp://example.com/bm.img"}, "uri"),
    Case("uri-no-scheme", {"uri": "example.com/bm.img"}, "uri"),
    Case("uri-no-host", {"uri": "https://"}, "uri"),
    Case("uri-empty-host", {"uri": "https:///bm.img"}, "uri"),
    Case("uri-scheme-without-slashes", {"uri": "http:example.com/bm.img"}, "uri"),
    Case("uri-garbage", {"uri": "not a url"}, "uri"),
    Case("labels-64", {"labels": labels_n(64)}),
    Case("labels-65", {"labels": labels_n(65)}, "labels"),
    Case("label-key-63", {"labels": {"k" * 63: "v"}}),
    Case("label-key-64", {"labels": {"k" * 64: "v"}}, "labels"),
    Case("label-key-empty", {"labels": {"": "v"}}, "labels"),
    Case("label-key-allowed-chars", {"labels": {"a_b-1": "v"}}),
    Case("label-key-dot", {"labels": {"a.b": "v"}}, "labels"),
    Case("label-key-slash", {"labels": {"a/b": "v"}}, "labels"),
    Case("label-key-at", {"labels": {"a@b": "v"}}, "labels"),
    Case("label-key-uppercase", {"labels": {"Ab": "v"}}, "labels"),
    Case("label-key-leading-digit", {"labels": {"1a": "v"}}, "labels"),
    Case("label-value-empty", {"labels": {"k": ""}}),
    Case("label-value-63", {"labels": {"k": "v" * 63}}),
    Case("label-value-64", {"labels": {"k": "v" * 64}}, "labels"),
    Case("label-value-allowed-chars", {"labels": {"k": "-a_b-1"}}),
    Case("label-value-dot", {"labels": {"k": "a.b"}}, "labels"),
    Case("label-value-slash", {"labels": {"k": "a/b"}}, "labels"),
    Case("label-value-at", {"labels": {"k": "a@b"}}, "labels"),
    Case("label-value-uppercase", {"labels": {"k": "A"}}, "labels"),
]


@pytest.mark.parametrize("case", _params(BAREMETAL_CASES))
def test_baremetal_create_validation(fast, folder, case, image_source):
    fields = {"folder_id": folder, "name": unique_name("bm"), "uri": image_source.url("boot.iso")}
    fields.update(_materialize(case.overrides))
    req = bm_image_service_pb2.CreateImageRequest(**fields)
    if case.field is not None:
        expect_error(grpc.StatusCode.INVALID_ARGUMENT, fast.bm_images.Create, req, case.field, *case.fragments)
        return
    op = expect_ok(fast.bm_images.Create, req)
    assert op.done is False
    meta = unpack(op.metadata, bm_image_service_pb2.CreateImageMetadata)
    assert_id(meta.image_id)
    done = fast.wait_op(op)
    if "uri" in case.overrides:
        # Its own URI names a host that does not resolve here.
        assert done.WhichOneof("result") == "error"
        assert done.error.code in CODES_SOURCE_UNREACHABLE, f"accepted import ended with {done.error}"
    else:
        assert done.WhichOneof("result") == "response", f"accepted import failed: {done.error}"
