"""Fixtures that run the real imageplane binary.

Servers (session scoped, started lazily on first use):

* ``fast``   -- ``--operation-delay 0s``: background work finishes at once.
* ``slow``   -- ``--operation-delay 60s``: operations stay running, resources CREATING.
* ``medium`` -- ``--operation-delay 3s``: used only where a READY source is needed
  first and a still-running operation right after (CREATING images/snapshots).

The binary is ``$IMAGEPLANE_BIN`` (relative paths are taken from the repository
root) or ``target/debug/imageplane``.

``ServerProcess(..., tls=True)`` runs a server that speaks TLS (``--tls-self-signed``
unless ``extra_args`` give ``--tls-cert``/``--tls-key``); ``server.channel()`` then
connects to ``localhost:PORT`` trusting only the server's certificate.
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
                 extra_args: tuple[str, ...] = (), tls: bool = False):
        self.name = name
        self.extra_args = extra_args
        self.tls = tls
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
        self_signed = ("--tls-self-signed",) if self.tls and "--tls-cert" not in self.extra_args else ()
        return [
            str(self.binary), "serve",
            "--listen", "127.0.0.1:0",
            "--data-dir", str(self.data_dir),
            "--operation-delay", self.delay,
            *self_signed,
            *self.extra_args,
        ]

    # -- TLS
    @property
    def port(self) -> int:
        assert self.addr is not None, f"{self.name} server is not running"
        return int(self.addr.rsplit(":", 1)[1])

    @property
    def authority(self) -> str:
        """The address a client should dial: ``localhost:PORT`` over TLS (a name the
        certificate is for, as an SDK would use), else the announced ``127.0.0.1:PORT``."""
        return f"localhost:{self.port}" if self.tls else self.addr

    @property
    def cert_path(self) -> Path:
        """The server's certificate: the ``--tls-cert`` file, else the self-signed one that
        ``--tls-self-signed`` writes to ``DATA_DIR/tls/cert.pem``."""
        args = list(self.extra_args)
        if "--tls-cert" in args:
            return Path(args[args.index("--tls-cert") + 1])
        return self.data_dir / "tls" / "cert.pem"

    def root_certificates(self) -> bytes:
        return self.cert_path.read_bytes()

    def channel(self, authority: str | None = None, bearer: str | None = None) -> grpc.Channel:
        """A channel to the server: TLS trusting only the server's certificate when the
        server speaks TLS, plaintext otherwise; with ``bearer``, every call carries
        ``authorization: Bearer <bearer>`` (TLS only: gRPC sends call credentials over
        secure channels alone)."""
        target = authority or self.authority
        if not self.tls:
            assert bearer is None, "call credentials need a TLS server"
            return grpc.insecure_channel(target)
        creds = grpc.ssl_channel_credentials(root_certificates=self.root_certificates())
        if bearer is not None:
            creds = grpc.composite_channel_credentials(creds, grpc.access_token_call_credentials(bearer))
        return grpc.secure_channel(target, creds)

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
        if self.tls and not self.cert_path.is_file():
            self.stop()
            pytest.fail(
                f"{self.name} server runs with TLS but its certificate {self.cert_path} does not "
                f"exist after the ready line\ncommand: {' '.join(self.command())}\n"
                f"stderr:\n{self.stderr_tail()}",
                pytrace=False,
            )

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


def _start_api(name: str, delay: str, tmp_path_factory, extra_args: tuple[str, ...] = (),
               tls: bool = False):
    server = ServerProcess(name, delay, tmp_path_factory.mktemp(f"imageplane-{name}"),
                           extra_args=extra_args, tls=tls)
    server.start()
    channel = server.channel()
    try:
        grpc.channel_ready_future(channel).result(timeout=10)
    except grpc.FutureTimeoutError:
        server.stop()
        how = f"over TLS (trusting {server.cert_path})" if tls else "in plaintext"
        pytest.fail(f"cannot connect to the {name} server at {server.authority} {how}\n"
                    f"{server.stderr_tail()}", pytrace=False)
    api = Api(channel, server.authority, name)
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


@pytest.fixture(scope="session")
def tls(tmp_path_factory):
    """A server of its own speaking TLS only (``--tls-self-signed``), authentication off."""
    server, channel, api = _start_api("tls", "0s", tmp_path_factory, tls=True)
    yield api
    channel.close()
    server.stop()


class Identity:
    """One line of an ``--auth-tokens`` file: ``TOKEN SUBJECT_ID [FOLDER_ID,...]``."""

    def __init__(self, token: str, subject: str, folders: tuple[str, ...] = ()):
        self.token = token
        self.subject = subject
        self.folders = folders

    def line(self) -> str:
        return " ".join([self.token, self.subject, *([",".join(self.folders)] if self.folders else [])])


@pytest.fixture(scope="session")
def authed(tmp_path_factory):
    """A TLS server with ``--auth-tokens``: ``alice`` may use two folders of her own (and
    read the public catalogue), ``bob`` every folder. ``authed.identities`` holds them;
    ``authed`` itself calls without credentials."""
    identities = {
        "alice": Identity("y0_conformance-alice-oauth", "ajeconformancealice0",
                          (unique_folder(), unique_folder())),
        "bob": Identity("y0_conformance-bob-oauth", "ajeconformancebob000"),
        # A service account's authorized key: its key id is the token, so a JWT with this
        # `kid` and `iss` is exchanged for an IAM token (the signature is not checked).
        "robot": Identity("ajekeyconformance001", "ajesaconformance0001", (unique_folder(),)),
    }
    tokens = tmp_path_factory.mktemp("auth-tokens") / "tokens"
    tokens.write_text("".join(identity.line() + "\n" for identity in identities.values()))
    server, channel, api = _start_api("authed", "0s", tmp_path_factory,
                                      extra_args=("--auth-tokens", str(tokens)), tls=True)
    api.identities = identities
    yield api
    channel.close()
    server.stop()


def plain_identities() -> dict[str, Identity]:
    """Fresh identities for a plaintext server with ``--auth-tokens``: ``alice`` limited to
    two folders of her own, ``bob`` with every folder; tokens are new random strings (so a
    test can look for them in a log)."""
    import uuid

    return {
        "alice": Identity(f"y0_alice-{uuid.uuid4().hex}", "ajealicesubject00001",
                          (unique_folder(), unique_folder())),
        "bob": Identity(f"y0_bob-{uuid.uuid4().hex}", "ajebobsubject0000001"),
    }


def write_tokens(path: Path, identities: dict[str, Identity]) -> Path:
    path.write_text("# --auth-tokens of a conformance server\n"
                    + "".join(identity.line() + "\n" for identity in identities.values()))
    return path


def start_plain_authed(name: str, tmp_path_factory, delay: str = "0s", extra_args: tuple[str, ...] = ()):
    """A plaintext server with ``--auth-tokens`` of :func:`plain_identities`; the Api has
    ``identities`` and ``tokens_path``. Plaintext: credentials go as plain metadata."""
    identities = plain_identities()
    tokens = write_tokens(tmp_path_factory.mktemp(f"{name}-tokens") / "tokens", identities)
    server, channel, api = _start_api(name, delay, tmp_path_factory,
                                      extra_args=("--auth-tokens", str(tokens), *extra_args))
    api.identities = identities
    api.tokens_path = tokens
    return server, channel, api


@pytest.fixture(scope="session")
def plain_authed(tmp_path_factory):
    """A plaintext server with ``--auth-tokens`` (see :func:`start_plain_authed`), logging at
    debug level as JSON lines (so tests can look for secrets and request ids in
    ``server.stderr_path``)."""
    server, channel, api = start_plain_authed(
        "plain-authed", tmp_path_factory, extra_args=("--log-level", "debug", "--log-format", "json"))
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
