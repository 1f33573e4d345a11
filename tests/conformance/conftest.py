"""Fixtures that run the real imageplane binary.

Servers (session scoped, started lazily on first use):

* ``fast``   -- ``--operation-delay 0s``: background work finishes at once.
* ``slow``   -- ``--operation-delay 60s``: operations stay running, resources CREATING.
* ``medium`` -- ``--operation-delay 3s``: used only where a READY source is needed
  first and a still-running operation right after (CREATING images/snapshots).

The binary is ``$IMAGEPLANE_BIN`` (relative paths are taken from the repository
root) or ``target/debug/imageplane``.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import Api, unique_folder  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
READY_RE = re.compile(r"^imageplane listening on (127\.0\.0\.1:(\d+))$")
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

_RUNNING: list["ServerProcess"] = []


def imageplane_binary() -> Path:
    raw = os.environ.get("IMAGEPLANE_BIN", "target/debug/imageplane")
    path = Path(raw)
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path


class ServerProcess:
    def __init__(self, name: str, delay: str, workdir: Path, binary: Path | None = None,
                 extra_args: tuple[str, ...] = ()):
        self.name = name
        self.extra_args = extra_args
        self.delay = delay
        self.workdir = workdir
        self.binary = binary or imageplane_binary()
        self.data_dir = workdir / "data"
        self.stderr_path = workdir / "stderr.log"
        self.proc: subprocess.Popen | None = None
        self.ready_line: str | None = None
        self.addr: str | None = None
        self.extra_stdout = b""
        self.returncode: int | None = None
        self._drain: threading.Thread | None = None

    # -- helpers
    def stderr_tail(self, limit: int = 6000) -> str:
        try:
            data = self.stderr_path.read_bytes()
        except OSError:
            return "<no stderr log>"
        text = ANSI_RE.sub("", data.decode("utf-8", "replace"))[-limit:]
        return text if text.strip() else "<stderr empty>"

    def command(self) -> list[str]:
        return [
            str(self.binary), "serve",
            "--listen", "127.0.0.1:0",
            "--data-dir", str(self.data_dir),
            "--operation-delay", self.delay,
            *self.extra_args,
        ]

    # -- lifecycle
    def start(self) -> None:
        if not self.binary.is_file():
            pytest.fail(
                f"imageplane binary not found at {self.binary}; build it or set IMAGEPLANE_BIN",
                pytrace=False,
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        stderr = open(self.stderr_path, "wb")
        try:
            self.proc = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
                cwd=self.workdir,
            )
        finally:
            stderr.close()
        try:
            line = self._read_first_line(STARTUP_TIMEOUT)
        except Exception as exc:  # noqa: BLE001
            self.stop()
            pytest.fail(
                f"{self.name} server did not announce readiness: {exc}\n"
                f"command: {' '.join(self.command())}\nstderr:\n{self.stderr_tail()}",
                pytrace=False,
            )
        self.ready_line = line
        m = READY_RE.match(line)
        if not m:
            self.stop()
            pytest.fail(
                f"{self.name} server's first stdout line is {line!r}, expected "
                f"'imageplane listening on 127.0.0.1:PORT'\nstderr:\n{self.stderr_tail()}",
                pytrace=False,
            )
        self.addr = m.group(1)
        self._drain = threading.Thread(target=self._drain_stdout, daemon=True)
        self._drain.start()
        _RUNNING.append(self)

    def _read_first_line(self, timeout: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + timeout
        while b"\n" not in buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no complete stdout line within {timeout}s (got {buf!r})")
            readable, _, _ = select.select([fd], [], [], min(remaining, 0.5))
            if not readable:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server exited with code {self.proc.returncode} (stdout {buf!r})")
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError(f"stdout closed (exit code {self.proc.poll()}, stdout {buf!r})")
            buf += chunk
        first, rest = buf.split(b"\n", 1)
        self.extra_stdout = rest
        return first.decode("utf-8", "replace").rstrip("\r")

    def _drain_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                return
            if not chunk:
                return
            self.extra_stdout += chunk

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)
                self.returncode = None  # did not exit on SIGTERM
                self._close()
                return None
        self.returncode = self.proc.returncode
        self._close()
        return self.returncode

    def _close(self) -> None:
        if self._drain is not None:
            self._drain.join(timeout=2)
        if self.proc is not None and self.proc.stdout is not None:
            try:
                self.proc.stdout.close()
            except OSError:
                pass
        if self in _RUNNING:
            _RUNNING.remove(self)


def _start_api(name: str, delay: str, tmp_path_factory, extra_args: tuple[str, ...] = ()):
    server = ServerProcess(name, delay, tmp_path_factory.mktemp(f"imageplane-{name}"),
                           extra_args=extra_args)
    server.start()
    channel = grpc.insecure_channel(server.addr)
    try:
        grpc.channel_ready_future(channel).result(timeout=10)
    except grpc.FutureTimeoutError:
        server.stop()
        pytest.fail(f"cannot connect to the {name} server at {server.addr}\n{server.stderr_tail()}", pytrace=False)
    api = Api(channel, server.addr, name)
    api.server = server
    return server, channel, api


class ImageSource:
    """A loopback HTTP server with images to import: ``disk.qcow2`` (made by qemu-img, 1 GiB
    virtual) and ``boot.iso`` (an ISO 9660 image written here). Other paths answer 404."""

    def __init__(self, directory: Path):
        import hashlib
        import http.server
        import struct

        self.qcow2 = directory / "disk.qcow2"
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", str(self.qcow2), "1G"], check=True
        )
        blocks = 300
        iso = bytearray(blocks * 2048)
        pvd = 16 * 2048
        iso[pvd] = 1
        iso[pvd + 1 : pvd + 6] = b"CD001"
        iso[pvd + 6] = 1
        iso[pvd + 80 : pvd + 88] = struct.pack("<I", blocks) + struct.pack(">I", blocks)
        iso[pvd + 128 : pvd + 132] = struct.pack("<H", 2048) + struct.pack(">H", 2048)
        iso[17 * 2048] = 255
        iso[17 * 2048 + 1 : 17 * 2048 + 6] = b"CD001"
        self.iso = directory / "boot.iso"
        self.iso.write_bytes(bytes(iso))
        self.iso_md5 = hashlib.md5(bytes(iso)).hexdigest()

        handler = lambda *args, **kwargs: http.server.SimpleHTTPRequestHandler(  # noqa: E731
            *args, directory=str(directory), **kwargs
        )
        http.server.SimpleHTTPRequestHandler.log_message = lambda *args: None
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"


@pytest.fixture(scope="session")
def image_source(tmp_path_factory):
    source = ImageSource(tmp_path_factory.mktemp("images"))
    yield source
    source.httpd.shutdown()


@pytest.fixture(scope="session")
def fast(tmp_path_factory):
    server, channel, api = _start_api("fast", "0s", tmp_path_factory)
    yield api
    channel.close()
    server.stop()


@pytest.fixture(scope="session")
def slow(tmp_path_factory):
    server, channel, api = _start_api("slow", "60s", tmp_path_factory)
    yield api
    channel.close()
    server.stop()


@pytest.fixture(scope="session")
def fuzzed(tmp_path_factory):
    """A server of its own for schemathesis, whose generated imports may only reach
    loopback (so they fail at once instead of holding import slots)."""
    server, channel, api = _start_api(
        "fuzzed", "0s", tmp_path_factory, extra_args=("--import-allow-hosts", "127.0.0.1")
    )
    yield api
    channel.close()
    server.stop()


MEDIUM_DELAY_SECONDS = 3.0


@pytest.fixture(scope="session")
def medium(tmp_path_factory):
    server, channel, api = _start_api("medium", f"{int(MEDIUM_DELAY_SECONDS)}s", tmp_path_factory)
    api.delay_seconds = MEDIUM_DELAY_SECONDS
    yield api
    channel.close()
    server.stop()


@pytest.fixture
def folder():
    """A folder id no other test uses."""
    return unique_folder()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    funcargs = getattr(item, "funcargs", {}) or {}
    used = [v.server for v in funcargs.values() if isinstance(getattr(v, "server", None), ServerProcess)]
    for server in used or list(_RUNNING):
        rep.sections.append((f"imageplane {server.name} server stderr (tail)", server.stderr_tail(3000)))
