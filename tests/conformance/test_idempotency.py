"""The call headers that change what a call does or how it is traced: ``idempotency-key``
(gRPC metadata; REST ``Idempotency-Key``) and ``x-request-id``, over gRPC and REST.

Idempotency keys: a call that starts an operation, repeated with the same key and the same
request, answers the first call's operation and does the work once; the same key with
another request is INVALID_ARGUMENT; keys are per subject; racing calls with one key (on
one server, and on two replicas sharing PostgreSQL) get one operation. Request ids: the
caller's ``x-request-id`` is echoed and is the request id of the call's log lines; a call
without one gets a made-up one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import uuid

import grpc
import pytest
import requests

from calls import (
    INVALID_ARGUMENT,
    NOT_FOUND,
    OK,
    TRANSPORTS,
    Rpc,
    Wire,
    create_disk,
    create_image_from_image,
    delete_of,
    get_of,
    get_operation,
    latest_public_image,
    list_of,
    list_operations_of,
    listed_ids,
    update_labels_of,
)
from conftest import ServerProcess
from helpers import Api, unique_folder, unique_name

RACERS = 16
TEST_DATABASE_VARIABLE = "IMAGEPLANE_TEST_DATABASE_URL"


@pytest.fixture(params=TRANSPORTS)
def transport(request) -> str:
    return request.param


def new_key() -> str:
    return str(uuid.uuid4())


def keyed(key: str) -> dict:
    return {"idempotency-key": key}


def disk_names(wire: Wire, folder: str, token: str | None = None) -> list[str]:
    body = wire.call(list_of("disks", folder), token=token).ok()
    return [disk.get("name", "") for disk in body.get("disks", [])]


def race(wires: list[Wire], rpc: Rpc, key: str, token: str | None = None):
    """``RACERS`` threads send the same call with the same key at once, spread over the
    wires; each thread has its own connection. Returns the outcomes."""
    barrier = threading.Barrier(RACERS)
    outcomes: list = [None] * RACERS
    errors: list = []

    def run(index: int) -> None:
        base = wires[index % len(wires)]
        channel = None
        try:
            if base.transport == "grpc":
                channel = grpc.insecure_channel(base.api.addr,
                                                options=[("grpc.use_local_subchannel_pool", 1)])
                grpc.channel_ready_future(channel).result(timeout=10)
                wire = Wire(Api(channel, base.api.addr, base.api.name), "grpc")
            else:
                wire = base
            barrier.wait(timeout=20)
            outcomes[index] = wire.call(rpc, token=token, headers=keyed(key))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
            barrier.abort()
        finally:
            if channel is not None:
                channel.close()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, f"a racing call raised: {errors[0]!r}"
    assert all(outcome is not None for outcome in outcomes), "a racing call did not finish"
    return outcomes


def assert_one_operation(outcomes) -> dict:
    failed = [o for o in outcomes if o.code != OK]
    assert not failed, f"{len(failed)} of {len(outcomes)} racing calls failed, e.g. {failed[0].describe()}"
    ids = {o.body["id"] for o in outcomes}
    assert len(ids) == 1, f"{len(outcomes)} calls with one key answered {len(ids)} operations: {sorted(ids)}"
    return outcomes[0].body


# ------------------------------------------------------------- 1: same key, same call

def test_a_repeated_create_answers_the_first_operation(fast, transport):
    wire = Wire(fast, transport)
    folder = unique_folder()
    key = new_key()
    rpc = create_disk(folder, unique_name("once"), labels={"try": "one"})
    first = wire.call(rpc, headers=keyed(key)).ok()
    second = wire.call(rpc, headers=keyed(key)).ok()
    assert second["id"] == first["id"], f"the repeat started operation {second['id']}, not {first['id']}"
    assert second["metadata"]["diskId"] == first["metadata"]["diskId"]
    disk = wire.wait_ok(first["id"])
    # after the operation is done the key still answers it, now done
    third = wire.call(rpc, headers=keyed(key)).ok()
    assert third["id"] == first["id"] and third["done"] is True, third
    # through the other transport too: a key belongs to the call, not to how it came
    other = Wire(fast, "rest" if transport == "grpc" else "grpc")
    assert other.call(rpc, headers=keyed(key)).ok()["id"] == first["id"]
    assert listed_ids(wire.call(list_of("disks", folder)), "disks") == [disk["id"]]
    assert len(wire.call(list_operations_of("disks", disk["id"])).ok()["operations"]) == 1


def test_a_repeated_image_create_answers_the_first_operation(fast, transport):
    wire = Wire(fast, transport)
    folder = unique_folder()
    key = new_key()
    public = wire.call(latest_public_image()).ok()
    rpc = create_image_from_image(folder, public["id"], unique_name("img"))
    ids = {wire.call(rpc, headers=keyed(key)).ok()["id"] for _ in range(3)}
    assert len(ids) == 1, f"one key answered {len(ids)} operations"
    image = wire.wait_ok(ids.pop())
    assert listed_ids(wire.call(list_of("images", folder)), "images") == [image["id"]]


def test_repeated_updates_and_deletes_answer_the_first_operation(fast, transport):
    wire = Wire(fast, transport)
    folder = unique_folder()
    disk = wire.wait_ok(wire.call(create_disk(folder, unique_name("upd"))).ok()["id"])

    update_key = new_key()
    update = update_labels_of("disks", disk["id"], {"round": "one"})
    first = wire.call(update, headers=keyed(update_key)).ok()
    assert wire.call(update, headers=keyed(update_key)).ok()["id"] == first["id"]
    wire.wait_ok(first["id"])
    assert wire.call(update, headers=keyed(update_key)).ok()["id"] == first["id"]
    descriptions = [o["description"] for o in
                    wire.call(list_operations_of("disks", disk["id"])).ok()["operations"]]
    assert descriptions == ["Update disk", "Create disk"], descriptions

    delete_key = new_key()
    delete = delete_of("disks", disk["id"])
    first = wire.call(delete, headers=keyed(delete_key)).ok()
    assert wire.call(delete, headers=keyed(delete_key)).ok()["id"] == first["id"]
    wire.wait_ok(first["id"])
    wire.call(get_of("disks", disk["id"])).expect(NOT_FOUND)
    # the disk is gone; the repeated delete still answers its operation, not NOT_FOUND
    again = wire.call(delete, headers=keyed(delete_key)).ok()
    assert again["id"] == first["id"] and again["done"] is True, again
    descriptions = [o["description"] for o in
                    wire.call(list_operations_of("disks", disk["id"])).ok()["operations"]]
    assert descriptions == ["Delete disk", "Update disk", "Create disk"], descriptions
    # without a key the delete is a new call, which finds nothing to delete
    wire.call(delete).expect(NOT_FOUND)


# ------------------------------------------------------- 2: same key, another call

def test_a_key_used_for_another_request_is_refused(fast, transport):
    wire = Wire(fast, transport)
    folder = unique_folder()
    key = new_key()
    first_name, second_name = unique_name("first"), unique_name("second")
    first = wire.call(create_disk(folder, first_name), headers=keyed(key)).ok()
    refused = wire.call(create_disk(folder, second_name), headers=keyed(key))
    refused.expect(INVALID_ARGUMENT, "idempotency-key", "another request")
    # another RPC with the key is another request too
    public = wire.call(latest_public_image()).ok()
    wire.call(create_image_from_image(folder, public["id"], second_name),
              headers=keyed(key)).expect(INVALID_ARGUMENT, "idempotency-key")
    wire.wait_ok(first["id"])
    assert disk_names(wire, folder) == [first_name]
    assert wire.call(list_of("images", folder)).ok().get("images", []) == []
    # the key still answers its own request
    assert wire.call(create_disk(folder, first_name), headers=keyed(key)).ok()["id"] == first["id"]


# ------------------------------------------------------------------- 3: racing

def test_racing_calls_with_one_key_start_one_operation(fast, transport):
    wire = Wire(fast, transport)
    for _ in range(2):
        folder = unique_folder()
        operation = assert_one_operation(race([wire], create_disk(folder, unique_name("race")), new_key()))
        disk = wire.wait_ok(operation["id"])
        assert listed_ids(wire.call(list_of("disks", folder)), "disks") == [disk["id"]]


# ------------------------------------------------------------ 4: keys per subject

def test_keys_are_per_subject(plain_authed, transport):
    alice, bob = plain_authed.identities["alice"], plain_authed.identities["bob"]
    wire = Wire(plain_authed, transport)
    folder = alice.folders[0]
    key = new_key()
    rpc = create_disk(folder, labels={"shared-key": key[:8]})  # unnamed: two may coexist
    by_alice = wire.call(rpc, token=alice.token, headers=keyed(key)).ok()
    by_bob = wire.call(rpc, token=bob.token, headers=keyed(key)).ok()
    assert by_bob["id"] != by_alice["id"], "bob's call with alice's key answered alice's operation"
    assert (by_alice["createdBy"], by_bob["createdBy"]) == (alice.subject, bob.subject)
    # each replays their own
    assert wire.call(rpc, token=alice.token, headers=keyed(key)).ok()["id"] == by_alice["id"]
    assert wire.call(rpc, token=bob.token, headers=keyed(key)).ok()["id"] == by_bob["id"]
    disks = {wire.wait_ok(op["id"], token=alice.token)["id"] for op in (by_alice, by_bob)}
    listed = wire.call(list_of("disks", folder), token=alice.token).ok().get("disks", [])
    mine = {d["id"] for d in listed if d.get("labels", {}).get("shared-key") == key[:8]}
    assert mine == disks


# -------------------------------------------------------- 5: two replicas, PostgreSQL

@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    """Two servers on one PostgreSQL database, in a fresh schema of their own (dropped
    afterwards); skipped when IMAGEPLANE_TEST_DATABASE_URL is not set."""
    base_url = os.environ.get(TEST_DATABASE_VARIABLE, "")
    if not base_url:
        pytest.skip(f"{TEST_DATABASE_VARIABLE} is not set: the PostgreSQL replica test did NOT run "
                    "(set it to e.g. postgres://postgres@127.0.0.1:5432/test)")
    psql = shutil.which("psql")
    assert psql, "psql is needed to make a fresh schema for the PostgreSQL replica test"
    schema = f"imageplane_conformance_{uuid.uuid4().hex[:16]}"

    def sql(statement: str) -> None:
        proc = subprocess.run([psql, base_url, "-v", "ON_ERROR_STOP=1", "-q", "-c", statement],
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, f"psql {statement!r}: {proc.stderr}"

    sql(f"CREATE SCHEMA {schema}")
    url = f"{base_url}{'&' if '?' in base_url else '?'}options=-csearch_path%3D{schema}"
    started = []
    try:
        for index in range(2):
            server = ServerProcess(f"replica-{index}", "0s", tmp_path_factory.mktemp(f"replica-{index}"),
                                   extra_args=("--database-url", url))
            server.start()
            channel = grpc.insecure_channel(server.addr)
            grpc.channel_ready_future(channel).result(timeout=10)
            api = Api(channel, server.addr, server.name)
            api.server = server
            started.append(api)
        yield started
    finally:
        for api in started:
            api.channel.close()
            api.server.stop()
        sql(f"DROP SCHEMA {schema} CASCADE")


def test_racing_calls_with_one_key_on_two_replicas_start_one_operation(replicas):
    for transport in TRANSPORTS:
        wires = [Wire(api, transport) for api in replicas]
        for _ in range(2):
            folder = unique_folder()
            key = new_key()
            rpc = create_disk(folder, unique_name("replicas"))
            operation = assert_one_operation(race(wires, rpc, key))
            disk = wires[0].wait_ok(operation["id"])
            for wire in wires:
                assert listed_ids(wire.call(list_of("disks", folder)), "disks") == [disk["id"]], wire
                assert wire.call(rpc, headers=keyed(key)).ok()["id"] == operation["id"], wire
            wires[1].call(create_disk(folder, unique_name("other")), headers=keyed(key)).expect(
                INVALID_ARGUMENT, "idempotency-key")


# ------------------------------------------------------------ 6: malformed keys

def test_keys_are_at_most_128_visible_ascii_bytes(fast, transport):
    wire = Wire(fast, transport)
    folder = unique_folder()
    for bad in ("k" * 129, "with space"):
        wire.call(create_disk(folder, unique_name("bad")), headers=keyed(bad)).expect(
            INVALID_ARGUMENT, "idempotency-key")
    assert disk_names(wire, folder) == []
    longest = "k" * 100 + new_key()[:28]
    assert len(longest) == 128
    rpc = create_disk(folder, unique_name("longest"))
    first = wire.call(rpc, headers=keyed(longest)).ok()
    assert wire.call(rpc, headers=keyed(longest)).ok()["id"] == first["id"]


# ------------------------------------------------------------------- x-request-id

@pytest.fixture(scope="module")
def json_logged(tmp_path_factory):
    """A server of its own (no authentication) whose log lines are JSON."""
    server = ServerProcess("json-logged", "0s", tmp_path_factory.mktemp("json-logged"),
                           extra_args=("--log-format", "json"))
    server.start()
    channel = grpc.insecure_channel(server.addr)
    grpc.channel_ready_future(channel).result(timeout=10)
    api = Api(channel, server.addr, server.name)
    api.server = server
    yield api
    channel.close()
    server.stop()


def request_id_of(line: dict) -> str | None:
    """The request id a JSON log line carries: its own field, its span's, or a parent span's."""
    if "request_id" in line:
        return line["request_id"]
    for span in [line.get("span") or {}, *(line.get("spans") or [])]:
        if "request_id" in span:
            return span["request_id"]
    return None


def log_lines_of(server: ServerProcess, request_id: str, timeout: float = 5.0) -> list[dict]:
    """The JSON log lines of one request id, once its "call finished" line is written."""
    deadline = time.monotonic() + timeout
    while True:
        lines = []
        for raw in server.stderr_path.read_text("utf-8", "replace").splitlines():
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
            except json.JSONDecodeError:
                pytest.fail(f"a log line of --log-format json is not JSON: {raw!r}")
            if request_id_of(line) == request_id:
                lines.append(line)
        if any(line.get("message") == "call finished" for line in lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


ROUTES = {"disks.Create": "POST /compute/v1/disks", "operations.Get": "GET /operations/{operation_id}"}
RPC_PATHS = {"disks.Create": "/yandex.cloud.compute.v1.DiskService/Create",
             "operations.Get": "/yandex.cloud.operation.OperationService/Get"}


def check_call_logged(server, outcome, request_id: str) -> None:
    lines = log_lines_of(server, request_id)
    finished = [line for line in lines if line.get("message") == "call finished"]
    assert len(finished) == 1, f"{len(finished)} 'call finished' lines with request id {request_id}: {lines}"
    line = finished[0]
    fields = {**line, **(line.get("fields") or {})}
    assert fields.get("protocol") == outcome.transport, line
    assert fields.get("rpc") == RPC_PATHS[outcome.rpc.grpc], line
    assert fields.get("grpc_status") == outcome.code, line
    if outcome.transport == "rest":
        assert fields.get("route") == ROUTES[outcome.rpc.grpc], line
        assert fields.get("http_status") == outcome.http_status, line


@pytest.mark.parametrize("fails", [False, True], ids=["ok", "error"])
def test_a_request_id_is_echoed_and_names_the_calls_log_lines(json_logged, transport, fails):
    wire = Wire(json_logged, transport)
    request_id = f"my-id-123-{uuid.uuid4().hex[:8]}"
    rpc = get_operation("zz" + uuid.uuid4().hex[:18]) if fails else create_disk(unique_folder())
    outcome = wire.call(rpc, headers={"x-request-id": request_id})
    assert outcome.code == (NOT_FOUND if fails else OK), outcome.describe()
    assert outcome.headers.get("x-request-id") == request_id, (
        f"x-request-id not echoed over {transport}: {outcome.headers}")
    check_call_logged(json_logged.server, outcome, request_id)


def test_a_call_without_a_request_id_gets_one(json_logged, transport):
    wire = Wire(json_logged, transport)
    made_up = []
    for _ in range(2):
        outcome = wire.call(create_disk(unique_folder()))
        outcome.ok()
        request_id = outcome.headers.get("x-request-id")
        assert request_id, f"no x-request-id in the answer over {transport}: {outcome.headers}"
        assert len(request_id) <= 128 and request_id.isascii() and request_id.isprintable() and " " not in request_id
        check_call_logged(json_logged.server, outcome, request_id)
        made_up.append(request_id)
    assert made_up[0] != made_up[1], f"two calls got the same made-up request id {made_up[0]}"


def test_rest_request_ids_are_echoed_by_requests_as_sent(json_logged):
    """The header name as a browser or curl sends it (``X-Request-Id``)."""
    response = requests.get(f"http://{json_logged.addr}/compute/v1/disks?folderId={unique_folder()}",
                            headers={"X-Request-Id": "My-Id-123"}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers.get("X-Request-Id") == "My-Id-123"
