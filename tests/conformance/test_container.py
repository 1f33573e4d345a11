"""The container image of ``scripts/build-image.sh``, built around the suite's binary
(``IMAGEPLANE_BINARY``) and run with the machine's Docker: what the image holds and how it
is configured; then a container with a volume on /data and an ephemeral host port serves
REST, runs as uid 10001, keeps a disk across a restart, and loses it to the admin reset.

Without a usable Docker (no ``docker``, or ``docker info`` fails) the tests are skipped,
saying so, unless ``IMAGEPLANE_REQUIRE_DOCKER=1``: then they fail. ``scripts/test.sh`` sets
it when, as root, ``scripts/ensure-docker.sh`` made Docker usable. The image, the container
and the volume are removed at the end, also on failure.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

import pytest
import requests

from conftest import REPO_ROOT, imageplane_binary
from helpers import POLL_INTERVAL, RPC_TIMEOUT, ZONE, unique_folder

UID = "10001"
BUILD_TIMEOUT = 300.0  # seconds for scripts/build-image.sh (no cargo build: the suite's binary)
READY_TIMEOUT = 30.0  # seconds from `docker run`/`docker start` until /readyz answers 200
OP_TIMEOUT = 30.0
# Files that Docker itself puts into every container's filesystem.
DOCKER_MADE = {".dockerenv", "dev/console", "etc/hostname", "etc/hosts", "etc/mtab", "etc/resolv.conf"}


def docker(*args: str, timeout: float = 60.0, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return done


def docker_unusable() -> str | None:
    """Why Docker cannot be used here, or None when it can."""
    if shutil.which("docker") is None:
        return "there is no docker command"
    try:
        info = docker("info", "--format", "{{.ServerVersion}}", timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 30 s"
    if info.returncode != 0:
        return f"`docker info` fails: {info.stderr.strip()[-300:]}"
    return None


@pytest.fixture(scope="module")
def image():
    """The image built by scripts/build-image.sh around the suite's binary, under a tag of its
    own; removed afterwards."""
    reason = docker_unusable()
    if reason is not None:
        if os.environ.get("IMAGEPLANE_REQUIRE_DOCKER") == "1":
            pytest.fail(f"Docker is required (IMAGEPLANE_REQUIRE_DOCKER=1) but {reason}", pytrace=False)
        pytest.skip(f"the container image tests did NOT run: {reason} (scripts/ensure-docker.sh "
                    "makes Docker usable; IMAGEPLANE_REQUIRE_DOCKER=1 makes this a failure)")
    binary = imageplane_binary()
    if not binary.is_file():
        pytest.fail(f"imageplane binary not found at {binary}; build it or set IMAGEPLANE_BIN", pytrace=False)
    tag = f"imageplane-conformance:{uuid.uuid4().hex[:12]}"
    env = {**os.environ, "IMAGEPLANE_BINARY": str(binary)}
    env.pop("IMAGEPLANE_IMAGE", None)
    try:
        built = subprocess.run([str(REPO_ROOT / "scripts" / "build-image.sh"), tag], env=env,
                               capture_output=True, text=True, timeout=BUILD_TIMEOUT)
        assert built.returncode == 0, (f"scripts/build-image.sh exited {built.returncode}:\n"
                                       f"{built.stdout}{built.stderr}")
        assert f"built {tag}: " in built.stdout, built.stdout
        yield tag
    finally:
        docker("image", "rm", "--force", tag, check=False)


class Container:
    """A container of the image, named and with a volume of its own on /data."""

    def __init__(self, image: str):
        suffix = uuid.uuid4().hex[:12]
        self.image = image
        self.name = f"imageplane-conformance-{suffix}"
        self.volume = f"imageplane-conformance-{suffix}"
        self.base: str | None = None

    def run(self, *args: str) -> None:
        docker("run", "--detach", "--name", self.name, "--volume", f"{self.volume}:/data",
               "--publish", "127.0.0.1::9090", self.image, *args)
        self.wait_ready()

    def start(self) -> None:
        docker("start", self.name)
        self.wait_ready()

    def inspect(self, template: str) -> str:
        return docker("inspect", "--format", template, self.name).stdout.strip()

    def logs(self) -> tuple[str, str]:
        done = docker("logs", self.name, check=False)
        return done.stdout, done.stderr

    def wait_ready(self) -> None:
        """Waits for /readyz to answer 200 on the host port Docker picked (it may change at
        each start), and sets ``base``."""
        deadline = time.monotonic() + READY_TIMEOUT
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.inspect("{{.State.Running}}") != "true":
                break
            # "127.0.0.1:PORT", once Docker has bound it.
            port = docker("port", self.name, "9090/tcp", check=False).stdout.strip().splitlines()
            if port:
                self.base = f"http://{port[0]}"
                try:
                    ready = requests.get(f"{self.base}/readyz", timeout=2)
                    if ready.status_code == 200:
                        return
                    last = f"{ready.status_code} {ready.text}"
                except requests.RequestException as exc:  # docker-proxy accepts before the server
                    last = repr(exc)
            time.sleep(0.2)
        pytest.fail(f"container {self.name} did not answer /readyz 200 (waited up to {READY_TIMEOUT}s; "
                    f"running: {self.inspect('{{.State.Running}}')}; last: {last}); its logs follow "
                    "the test's report", pytrace=False)

    def remove(self) -> None:
        docker("rm", "--force", "--volumes", self.name, check=False)
        docker("volume", "rm", "--force", self.volume, check=False)


@pytest.fixture
def container(image):
    container = Container(image)
    try:
        yield container
    finally:
        stdout, stderr = container.logs()
        # Captured output: shown only when the test failed.
        print(f"== docker logs {container.name}\n-- stdout\n{stdout}\n-- stderr (tail)\n{stderr[-4000:]}")
        container.remove()


def test_the_image_holds_the_binary_its_libraries_and_ca_certificates_only(image):
    config = json.loads(docker("image", "inspect", "--format", "{{json .Config}}", image).stdout)
    assert config["User"] == f"{UID}:{UID}"
    assert config["Entrypoint"] == ["/usr/local/bin/imageplane"]
    assert config["Cmd"] == ["serve"]
    assert set(config["ExposedPorts"]) == {"9090/tcp"}
    assert set(config["Volumes"]) == {"/data"}
    assert {"IMAGEPLANE_LISTEN=0.0.0.0:9090", "IMAGEPLANE_DATA_DIR=/data"} <= set(config["Env"])

    # The shared libraries the binary links, the dynamic loader included.
    ldd = subprocess.run(["ldd", str(imageplane_binary())], capture_output=True, text=True, check=True)
    libraries = {word.lstrip("/") for word in ldd.stdout.split() if word.startswith("/")}
    assert any("ld-linux" in lib for lib in libraries), ldd.stdout

    created = docker("create", image).stdout.strip()
    try:
        exported = subprocess.run(["docker", "export", created], capture_output=True, timeout=60, check=True)
    finally:
        docker("rm", "--volumes", created, check=False)
    with tarfile.open(fileobj=io.BytesIO(exported.stdout)) as tar:
        members = {m.name.rstrip("/"): m for m in tar.getmembers()}
    files = {name for name, m in members.items() if not m.isdir()} - DOCKER_MADE
    assert files == {"usr/local/bin/imageplane", "etc/passwd", "etc/group",
                     "etc/ssl/certs/ca-certificates.crt", *libraries}
    certificates = members["etc/ssl/certs/ca-certificates.crt"]
    assert certificates.size == Path("/etc/ssl/certs/ca-certificates.crt").stat().st_size > 0
    assert (members["data"].uid, members["data"].gid) == (int(UID), int(UID))
    assert members["tmp"].mode & 0o7777 == 0o1777
    assert members["usr/local/bin/imageplane"].uid == 0


def test_a_container_serves_runs_as_non_root_and_keeps_its_state_in_the_volume(container):
    container.run("serve", "--enable-admin")
    stdout, _ = container.logs()
    assert stdout.splitlines()[:1] == ["imageplane listening on 0.0.0.0:9090"], stdout

    # A disk over REST, its operation polled until done.
    created = requests.post(f"{container.base}/compute/v1/disks", timeout=RPC_TIMEOUT, json={
        "folderId": unique_folder(), "name": "d1", "zoneId": ZONE, "size": "4194304"})
    assert created.status_code == 200, created.text
    operation = created.json()
    deadline = time.monotonic() + OP_TIMEOUT
    while not operation["done"]:
        assert time.monotonic() < deadline, f"operation {operation['id']} not done within {OP_TIMEOUT}s"
        time.sleep(POLL_INTERVAL)
        operation = requests.get(f"{container.base}/operations/{operation['id']}", timeout=RPC_TIMEOUT).json()
    assert "error" not in operation, operation
    disk_id = operation["response"]["id"]
    got = requests.get(f"{container.base}/compute/v1/disks/{disk_id}", timeout=RPC_TIMEOUT)
    assert got.status_code == 200, got.text
    assert (got.json()["name"], got.json()["status"]) == ("d1", "READY")

    # It runs as the image's user, and the state in the volume is that user's.
    assert container.inspect("{{.Config.User}}") == f"{UID}:{UID}"
    pid = container.inspect("{{.State.Pid}}")
    status = Path(f"/proc/{pid}/status")
    if status.exists():  # the daemon runs on this machine
        ids = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        assert ids["Uid"].split() == [UID] * 4, ids["Uid"]
        assert ids["Gid"].split() == [UID] * 4, ids["Gid"]
        mountpoint = Path(docker("volume", "inspect", "--format", "{{.Mountpoint}}", container.volume).stdout.strip())
        database = mountpoint / "imageplane.sqlite3"
        assert database.is_file(), sorted(p.name for p in mountpoint.iterdir())
        assert (database.stat().st_uid, database.stat().st_gid) == (int(UID), int(UID))

    # A stop is SIGTERM to the server, which is PID 1 in the container: it exits cleanly, at
    # once. After a start (maybe on another host port) the disk is still there.
    started = time.monotonic()
    docker("stop", "--time", "10", container.name)
    assert time.monotonic() - started < 8, "the server did not stop on SIGTERM"
    assert container.inspect("{{.State.ExitCode}}") == "0"
    container.start()
    got = requests.get(f"{container.base}/compute/v1/disks/{disk_id}", timeout=RPC_TIMEOUT)
    assert got.status_code == 200, got.text
    assert got.json()["id"] == disk_id

    # A state snapshot taken, the admin reset empties the state, the snapshot puts it back.
    snapshot = requests.get(f"{container.base}/imageplane/v1/state", timeout=RPC_TIMEOUT)
    assert snapshot.status_code == 200, snapshot.text
    assert snapshot.headers["content-type"] == "application/x-ndjson"
    reset = requests.post(f"{container.base}/imageplane/v1/reset", timeout=RPC_TIMEOUT)
    assert reset.status_code == 200, reset.text
    gone = requests.get(f"{container.base}/compute/v1/disks/{disk_id}", timeout=RPC_TIMEOUT)
    assert gone.status_code == 404, gone.text
    restored = requests.put(f"{container.base}/imageplane/v1/state", data=snapshot.content,
                            timeout=RPC_TIMEOUT)
    assert restored.status_code == 200, restored.text
    got = requests.get(f"{container.base}/compute/v1/disks/{disk_id}", timeout=RPC_TIMEOUT)
    assert got.status_code == 200, got.text
