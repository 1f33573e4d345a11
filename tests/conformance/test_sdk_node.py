"""The official Node.js SDK (@yandex-cloud/nodejs-sdk, pinned in node/package.json)
against the real binary over TLS: node/dropin.mjs discovers the endpoints, creates a
compute image and a bare-metal image through ``Session.client`` and waits for them with the
SDK's ``waitForOperation``; these tests check what it prints. See dropin.mjs for what the
SDK does and how it is pointed at the server.

node_modules comes from ``npm ci`` in tests/conformance/node (scripts/test.sh runs it);
without it, or without ``node``, these tests fail, never skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import GiB, assert_id, unique_folder

NODE_DIR = Path(__file__).resolve().parent / "node"
DROPIN = NODE_DIR / "dropin.mjs"
SDK_PACKAGE = NODE_DIR / "node_modules" / "@yandex-cloud" / "nodejs-sdk" / "package.json"
RESULT_PREFIX = "DROPIN-RESULT "
RUN_TIMEOUT = 120  # seconds for one dropin.mjs run
ENDPOINT_IDS = {"compute", "baremetal", "operation", "iam", "endpoint"}


@pytest.fixture(scope="session")
def node():
    path = shutil.which("node")
    if path is None:
        pytest.fail("node is not on the PATH: the Node.js SDK tests need Node.js (v20 or later)", pytrace=False)
    if not SDK_PACKAGE.is_file():
        pytest.fail(
            f"{SDK_PACKAGE.parent} is missing: install the Node.js SDK first with\n"
            f"  (cd {NODE_DIR} && npm ci --no-audit --no-fund)\n"
            "(scripts/test.sh does this when node_modules is missing or package-lock.json changed)",
            pytrace=False,
        )
    pinned = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]["@yandex-cloud/nodejs-sdk"]
    installed = json.loads(SDK_PACKAGE.read_text())["version"]
    if installed != pinned:
        pytest.fail(f"node_modules has @yandex-cloud/nodejs-sdk {installed}, package.json pins {pinned}: "
                    f"run npm ci in {NODE_DIR}", pytrace=False)
    return path


def run_dropin(node, server, folder: str, baremetal_uri: str, *, iam_token: str | None = None,
               oauth_token: str | None = None) -> subprocess.CompletedProcess:
    cmd = [node, str(DROPIN), "--endpoint", server.authority, "--cert", str(server.cert_path),
           "--folder", folder, "--baremetal-uri", baremetal_uri, "--timeout-ms", str((RUN_TIMEOUT - 10) * 1000)]
    if iam_token is not None:
        cmd += ["--iam-token", iam_token]
    if oauth_token is not None:
        cmd += ["--oauth-token", oauth_token]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YC_", "IMAGEPLANE_"))}
    # The SDK exchanges OAuth tokens over grpc-js's default roots (see dropin.mjs).
    env["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] = str(server.cert_path)
    return subprocess.run(cmd, cwd=NODE_DIR, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)


def dropin_result(proc: subprocess.CompletedProcess) -> dict:
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    assert proc.returncode == 0 and len(lines) == 1, (
        f"dropin.mjs failed (exit code {proc.returncode})\nstderr:\n{proc.stderr}\nstdout:\n{proc.stdout}")
    return json.loads(lines[0][len(RESULT_PREFIX):])


def check_result(result: dict, server, folder: str, subject: str, iso_md5: str) -> None:
    pinned = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]["@yandex-cloud/nodejs-sdk"]
    assert result["sdkVersion"] == pinned
    endpoints = result["endpoints"]
    assert ENDPOINT_IDS <= set(endpoints), f"missing endpoint ids: {ENDPOINT_IDS - set(endpoints)}"
    assert set(endpoints.values()) == {server.authority}, endpoints
    assert result["endpointsViaSession"] == endpoints

    compute = result["compute"]
    op, done, image = compute["operation"], compute["done"], compute["response"]
    assert_id(op["id"], "operation id")
    assert op["description"] == "Create image"
    assert op["createdBy"] == subject, f"createdBy {op['createdBy']!r} != {subject!r}"
    assert op["metadataType"] == "type.googleapis.com/yandex.cloud.compute.v1.CreateImageMetadata"
    assert done["id"] == op["id"] and done["done"] is True and done["error"] is None
    assert done["createdBy"] == subject
    assert done["responseType"] == "type.googleapis.com/yandex.cloud.compute.v1.Image"
    assert image["id"] == compute["metadata"]["imageId"]
    assert image["folderId"] == folder
    assert image["name"] == compute["name"]
    assert image["description"] == "through @yandex-cloud/nodejs-sdk"
    assert image["labels"] == {"via": "node-sdk"}
    assert image["status"] == "READY"
    assert image["minDiskSize"] == compute["source"]["minDiskSize"] == 8 * GiB
    assert image["productIds"] == compute["source"]["productIds"]
    assert image["os"]["type"] == "LINUX"
    assert compute["get"] == image

    bm = result["baremetal"]
    op, done, image = bm["operation"], bm["done"], bm["response"]
    assert_id(op["id"], "operation id")
    assert op["createdBy"] == subject, f"createdBy {op['createdBy']!r} != {subject!r}"
    assert op["metadataType"] == "type.googleapis.com/yandex.cloud.baremetal.v1alpha.CreateImageMetadata"
    assert done["id"] == op["id"] and done["done"] is True and done["error"] is None
    assert done["responseType"] == "type.googleapis.com/yandex.cloud.baremetal.v1alpha.Image"
    assert image["id"] == bm["metadata"]["imageId"]
    assert image["folderId"] == folder
    assert image["name"] == bm["name"]
    assert image["labels"] == {"via": "node-sdk"}
    assert image["status"] == "READY"
    assert image["checksum"] == iso_md5
    assert bm["get"] == image


@pytest.mark.parametrize("credentials", [
    {"iam_token": "t1.conformance-anything"},
    {"oauth_token": "y0_conformance-any-oauth-token"},
], ids=["iam_token", "oauth_token"])
def test_node_sdk_creates_images_and_waits_for_them(node, tls, image_source, credentials):
    folder = unique_folder()
    proc = run_dropin(node, tls.server, folder, image_source.url("boot.iso"), **credentials)
    check_result(dropin_result(proc), tls.server, folder, "anonymous", image_source.iso_md5)


def test_node_sdk_exchanges_a_listed_oauth_token(node, authed, image_source):
    alice = authed.identities["alice"]
    folder = alice.folders[0]
    proc = run_dropin(node, authed.server, folder, image_source.url("boot.iso"), oauth_token=alice.token)
    check_result(dropin_result(proc), authed.server, folder, alice.subject, image_source.iso_md5)


def test_node_sdk_with_a_listed_token_as_its_iam_token(node, authed, image_source):
    bob = authed.identities["bob"]
    folder = unique_folder()
    proc = run_dropin(node, authed.server, folder, image_source.url("boot.iso"), iam_token=bob.token)
    check_result(dropin_result(proc), authed.server, folder, bob.subject, image_source.iso_md5)


def test_node_sdk_with_a_forged_token_is_unauthenticated(node, authed, image_source):
    proc = run_dropin(node, authed.server, unique_folder(), image_source.url("boot.iso"),
                      iam_token="t1.forged-conformance-token")
    assert proc.returncode == 1, f"exit code {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "DROPIN-ERROR" in proc.stderr and "UNAUTHENTICATED" in proc.stderr, proc.stderr
    assert RESULT_PREFIX not in proc.stdout
