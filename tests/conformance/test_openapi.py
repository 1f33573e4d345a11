"""The OpenAPI document, read by a tool nobody here wrote: schemathesis generates requests
for every operation from it, in every phase (examples, coverage, fuzzing, and stateful
sequences that follow the document's links from a create to its resource), and runs every
check on the answers: no server error, statuses, content types, headers and bodies as
documented, every request the document calls valid accepted and every one it calls
invalid refused. The few fields whose rules JSON Schema cannot state are listed, by name,
in schemathesis_hooks.py (and in docs/api.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Examples per operation: enough to reach every route's error paths in about a minute.
MAX_EXAMPLES = "60"
PHASES = "examples,coverage,fuzzing,stateful"


def schemathesis(addr: str, cwd: Path, *options: str) -> str:
    """Runs `st run` on the server's document with every check and our hooks; its output
    if it found nothing."""
    st = Path(sys.executable).parent / "st"
    assert st.is_file(), f"schemathesis is not installed in {st.parent}"
    env = dict(os.environ)
    env["PYTHONPATH"] = str(HERE)
    env["SCHEMATHESIS_HOOKS"] = "schemathesis_hooks"
    cmd = [
        str(st), "run", f"http://{addr}/openapi.json",
        "--checks", "all",
        # One worker: with two, CPython 3.11.7's `ast` (which schemathesis uses from its
        # worker threads) raised a spurious "SystemError: AST constructor recursion depth
        # mismatch" in a CI run (cpython gh-106905).
        "--workers", "1",
        "--seed", "20261125",
        "--no-color",
        "--output-sanitize", "false",
        *options,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=cwd, env=env)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-20000:]}\n{proc.stderr[-5000:]}"
    out = proc.stdout
    assert "failures" not in out.lower() and "errors" not in out.lower(), out[-5000:]
    return out


def test_schemathesis_finds_no_failure_in_any_phase_with_every_check(fuzzed, tmp_path):
    out = schemathesis(fuzzed.addr, tmp_path, "--phases", PHASES, "--max-examples", MAX_EXAMPLES)
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert f"✅  {phase}" in out, f"the {phase} phase did not pass:\n{out[-5000:]}"


def test_stateful_sequences_follow_the_links_from_a_create_to_its_resource(fuzzed, tmp_path):
    # One kind's routes, so that the sequences are long enough to create and then follow.
    out = schemathesis(fuzzed.addr, tmp_path, "--phases", "stateful", "--max-examples", "300",
                       "--include-path-regex", r"^/compute/v1/disks(/\{disk_id\})?$")
    covered = [line.split("API Links:")[1].split()[0] for line in out.splitlines() if "API Links:" in line]
    assert covered and int(covered[0]) >= 3, f"links followed: {covered}\n{out[-5000:]}"


def test_the_document_carries_the_protos_rules_and_links(fuzzed):
    import requests

    document = requests.get(f"http://{fuzzed.addr}/openapi.json", timeout=10).json()
    assert document["openapi"].startswith("3.1")
    paths = document["paths"]
    page_size = next(p for p in paths["/compute/v1/images"]["get"]["parameters"] if p["name"] == "pageSize")
    assert (page_size["schema"]["minimum"], page_size["schema"]["maximum"]) == (0, 1000), page_size
    create = paths["/compute/v1/images"]["post"]
    links = create["responses"]["200"]["links"]
    for rpc in ("Get", "Update", "Delete"):
        link = links[f"yandex.cloud.compute.v1.ImageService.{rpc}"]
        assert link["parameters"] == {"image_id": "$response.body#/metadata/imageId"}, link
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["folderId"]["minLength"] == 1 and "folderId" in body["required"]
    assert [group["oneOf"] for group in body["allOf"] if "oneOf" in group], body.get("allOf")
    labels = body["properties"]["labels"]["anyOf"][0]
    assert labels["propertyNames"]["pattern"] and labels["maxProperties"] == 64, labels
    # no route answers 501: the token service's methods are all served
    iam = {path for path in paths if path.startswith("/iam/v1/tokens")}
    assert iam == {"/iam/v1/tokens", "/iam/v1/tokens:createForServiceAccount", "/iam/v1/tokens:revoke"}
