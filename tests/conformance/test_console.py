"""The web console at /console, in a real browser: Debian's chromium driven by Playwright.

Every test fails on an error in the browser's console (other than the 400 answers a test
provokes on purpose), on an uncaught exception in the page, and on any request to another
origin. Screenshots go to ``target/console-screenshots/`` (kept by CI as artifacts).
"""

from __future__ import annotations

import http.server
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect, sync_playwright

from conftest import REPO_ROOT, ServerProcess, plain_identities, write_tokens
from helpers import unique_folder

SHOTS = REPO_ROOT / "target" / "console-screenshots"
CHROMIUM = os.environ.get("IMAGEPLANE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
WAIT_MS = 20_000


class SlowSource:
    """A loopback HTTP server that sends ``slow.qcow2`` (a qcow2 header and zeros, 8 MiB,
    with its Content-Length) 32 KiB every 50 ms up to half, and then nothing more until
    the client goes away: an import of it runs until it is cancelled, however slow the
    machine."""

    SIZE = 8 << 20
    CHUNK = 32 << 10

    def __init__(self, head: bytes):
        body = head + bytes(self.SIZE - len(head))
        chunk = self.CHUNK

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # noqa: D401
                pass

            def do_GET(self):  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    for start in range(0, len(body) // 2, chunk):
                        self.wfile.write(body[start:start + chunk])
                        self.wfile.flush()
                        time.sleep(0.05)
                    # Hold the rest back; a gone client shows as a failed read.
                    self.connection.settimeout(0.5)
                    while True:
                        try:
                            if not self.connection.recv(1):
                                return
                        except TimeoutError:
                            continue
                except (BrokenPipeError, ConnectionResetError, OSError):
                    pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/slow.qcow2"


@pytest.fixture(scope="module")
def console_server(tmp_path_factory):
    server = ServerProcess("console", "0s", tmp_path_factory.mktemp("imageplane-console"),
                           extra_args=("--enable-admin",))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def slow_source(image_source):
    # The qcow2 header of the suite's image source, followed by zeros.
    source = SlowSource(image_source.qcow2.read_bytes())
    yield source
    source.httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).is_file(), (
        f"chromium not found at {CHROMIUM}: scripts/test.sh installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


class Watched:
    """A page whose console errors, page errors and requests to other origins are kept."""

    def __init__(self, page: Page, origin: str):
        self.page = page
        self.origin = origin
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.requests: list[str] = []
        # Answers a test provokes on purpose, by HTTP status: how many may show as errors.
        self.allowed = {400: 0, 404: 0}
        page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        page.on("request", self._request)

    def _request(self, request) -> None:
        self.requests.append(request.url)
        if not (request.url.startswith(self.origin + "/") or request.url.startswith(("data:", "blob:"))):
            self.foreign.append(request.url)

    def provoked(self, status: int) -> list[str]:
        return [error for error in self.errors if f"status of {status} " in error]

    def check(self) -> None:
        others = [error for error in self.errors
                  if not any(f"status of {status} " in error for status in self.allowed)]
        assert not others, f"errors in the browser's console: {others}"
        for status, allowed in self.allowed.items():
            assert len(self.provoked(status)) <= allowed, (
                f"more {status} answers than the test provoked: {self.provoked(status)}")
        assert not self.foreign, f"requests to another origin: {self.foreign}"


@pytest.fixture
def console(browser, console_server, request):
    origin = f"http://{console_server.addr}"
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    watched = Watched(page, origin)
    page.set_default_timeout(WAIT_MS)
    yield watched
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    watched.check()


def rest(server: ServerProcess, method: str, path: str, **kwargs) -> dict:
    response = requests.request(method, f"http://{server.addr}{path}", timeout=10, **kwargs)
    assert response.ok, f"{method} {path}: {response.status_code} {response.text}"
    return response.json()


def public_image_id(server: ServerProcess) -> str:
    images = rest(server, "GET", "/compute/v1/images", params={"folderId": "standard-images"})["images"]
    return images[0]["id"]


def test_an_image_created_through_the_api_appears_in_the_open_console(console, console_server):
    page = console.page
    page.goto(f"{console.origin}/console")
    expect(page.get_by_role("heading", name="Folders")).to_be_visible()
    folder = unique_folder()
    # The console is open before the image exists: it must appear without a reload.
    expect(page.get_by_role("link", name="standard-images")).to_be_visible()
    rest(console_server, "POST", "/compute/v1/images",
         json={"folderId": folder, "name": "from-the-api", "imageId": public_image_id(console_server)})
    page.get_by_role("link", name=folder).click()
    row = page.get_by_role("row").filter(has_text="from-the-api")
    expect(row).to_be_visible()
    expect(row.get_by_text("READY")).to_be_visible()
    # A filter the API refuses shows its message on the field, and is not asked again
    # until it changes.
    console.allowed[400] = 1
    page.get_by_label("Filter", exact=True).fill('size = "1"')
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_label("Filter", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#list-filter-error")).to_contain_text('unknown field "size"')
    page.wait_for_timeout(4000)
    assert len(console.provoked(400)) == 1, console.errors
    page.get_by_label("Filter", exact=True).fill('name = "from-the-api"')
    page.get_by_role("button", name="Show").click()
    row.get_by_role("link", name="from-the-api").click()
    expect(page.get_by_role("heading", name="Image from-the-api")).to_be_visible()
    expect(page.get_by_text("Create image").first).to_be_visible()
    # Copy it from its page: the new image's page opens, with the operation's notice.
    page.get_by_label("Name of the new image", exact=True).fill("the-copy")
    page.get_by_role("button", name="Copy image").click()
    expect(page.get_by_role("heading", name="Image the-copy")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Started operation")
    images = rest(console_server, "GET", "/compute/v1/images", params={"folderId": folder})["images"]
    assert sorted(image["name"] for image in images) == ["from-the-api", "the-copy"]
    # Delete the copy, after saying yes. The page finds it gone once (a 404), then asks
    # only for its operations.
    console.allowed[404] = 1
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.get_by_text("does not exist (any more)")).to_be_visible()
    images = rest(console_server, "GET", "/compute/v1/images", params={"folderId": folder})["images"]
    assert [image["name"] for image in images] == ["from-the-api"]


def test_a_slow_import_started_from_the_console_shows_progress_and_is_cancelled_there(
        console, console_server, slow_source):
    page = console.page
    folder = unique_folder()
    page.goto(f"{console.origin}/console#/import")
    page.get_by_label("Folder", exact=True).fill(folder)
    page.get_by_label("Name", exact=True).fill("Not-Valid")
    page.get_by_label("URI", exact=True).fill(slow_source.url)
    # The API's validation message shows on the field it names.
    console.allowed[400] = 1
    page.get_by_role("button", name="Import").click()
    name = page.get_by_label("Name", exact=True)
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#import-name-error")).to_contain_text("does not match the pattern")
    name.fill("slow-one")
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_role("heading", name="Image slow-one")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Import started")

    progress = page.locator(".progress-text").first
    expect(progress).to_contain_text("of 8.0 MiB")
    first = progress.inner_text()
    expect(progress).not_to_have_text(first, timeout=WAIT_MS)
    assert "/s" in progress.inner_text(), progress.inner_text()

    page.goto(f"{console.origin}/console#/operations?folder={folder}")
    expect(page.locator("progress").first).to_be_visible()
    expect(page.locator(".progress-text").first).to_contain_text("left")
    SHOTS.mkdir(parents=True, exist_ok=True)
    # The picture in the README (docs/console.png) is this one.
    page.screenshot(path=str(SHOTS / "import-progress.png"),
                    clip={"x": 0, "y": 0, "width": 1280, "height": 500})
    page.get_by_role("button", name="Cancel").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel operation").click()
    expect(page.get_by_text("Running (0)")).to_be_visible()
    ended = page.get_by_role("region", name="Recently ended").get_by_role("row").filter(has_text="CANCELLED")
    expect(ended).to_be_visible()

    answer = rest(console_server, "GET", "/imageplane/v1/operations", params={"folderId": folder})
    assert not answer["running"]
    assert [summary["operation"].get("error", {}).get("code") for summary in answer["ended"]] == [1]


def test_reset_from_the_console_removes_what_the_api_made(console, console_server):
    page = console.page
    folder = unique_folder()
    rest(console_server, "POST", "/compute/v1/disks",
         json={"folderId": folder, "zoneId": "ru-central1-a", "size": str(4 << 20), "name": "gone-soon"})
    page.goto(f"{console.origin}/console#/server")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download a state snapshot").click()
    snapshot = Path(download.value.path()).read_text()
    assert "gone-soon" in snapshot, snapshot[:500]
    page.get_by_role("button", name="Reset the server").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Reset the server?")
    # Keeping it changes nothing.
    dialog.get_by_role("button", name="Keep it").click()
    assert rest(console_server, "GET", "/compute/v1/disks", params={"folderId": folder})["disks"]
    page.get_by_role("button", name="Reset the server").click()
    dialog.get_by_role("button", name="Reset").click()
    expect(page.get_by_role("status")).to_contain_text("Reset:")
    assert rest(console_server, "GET", "/compute/v1/disks", params={"folderId": folder})["disks"] == []
    page.goto(f"{console.origin}/console")
    expect(page.get_by_role("link", name="standard-images")).to_be_visible()
    expect(page.get_by_role("link", name=folder)).to_have_count(0)


def test_delays_and_faults_are_set_and_removed_from_the_console(console, console_server):
    page = console.page
    page.goto(f"{console.origin}/console#/server")
    page.get_by_label("Per kind", exact=True).fill("create-disk=manual")
    page.get_by_role("button", name="Set delays").click()
    expect(page.get_by_role("status")).to_contain_text("Delays set")
    assert rest(console_server, "GET", "/imageplane/v1/operationTiming")["kinds"] == {"create-disk": "manual"}
    page.get_by_label("Per kind", exact=True).fill("")
    page.get_by_role("button", name="Set delays").click()
    expect(page.locator("#timing-now")).not_to_contain_text("create-disk")

    page.get_by_label("Target", exact=True).select_option("operation")
    page.get_by_label("Which", exact=True).fill("import-image")
    page.get_by_role("button", name="Add fault").click()
    expect(page.get_by_role("status")).to_contain_text("added")
    faults = rest(console_server, "GET", "/imageplane/v1/faults")["faults"]
    assert [fault["operation"] for fault in faults] == ["import-image"]
    page.get_by_role("button", name=f"Remove fault {faults[0]['id']}").click()
    page.get_by_role("dialog").get_by_role("button", name="Remove").click()
    expect(page.get_by_text("No fault rules.")).to_be_visible()
    assert rest(console_server, "GET", "/imageplane/v1/faults").get("faults", []) == []


def test_the_console_is_usable_by_keyboard_and_at_a_narrow_width(console, console_server):
    page = console.page
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(f"{console.origin}/console")
    expect(page.get_by_role("heading", name="Folders")).to_be_visible()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    # The skip link moves the focus to the content and leaves the view as it is.
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    expect(page.get_by_role("heading", name="Folders")).to_be_visible()
    page.goto(f"{console.origin}/console")
    expect(page.get_by_role("link", name="standard-images")).to_be_visible()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "imageplane"
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Operations"
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Operations")).to_be_visible()
    for view in ["#/", "#/folder/standard-images/compute.image", "#/operations", "#/import", "#/server"]:
        page.goto(f"{console.origin}/console{view}")
        expect(page.locator("main h1")).to_be_visible()
        expect(page.get_by_text("Loading…")).to_have_count(0)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{view} is {overflow}px wider than a 360px window"
    # Every form control has a label.
    unlabeled = page.evaluate("""[...document.querySelectorAll('input, select, textarea')]
        .filter((control) => !control.labels || control.labels.length === 0).map((c) => c.outerHTML)""")
    assert unlabeled == []


def test_an_open_console_adds_few_requests_a_second(console, console_server, record_property):
    page = console.page
    rates = {}
    for view in ["#/", "#/operations", "#/server"]:
        page.goto(f"{console.origin}/console{view}")
        page.wait_for_timeout(1000)
        before = len(console.requests)
        page.wait_for_timeout(10_000)
        rates[view] = (len(console.requests) - before) / 10
    print(f"requests a second an open console adds: {rates}")
    record_property("console_requests_per_second", rates)
    # The refresh periods (2-5 s) allow at most about 1 a second per view; more means a
    # view polls too much.
    assert all(rate <= 1.2 for rate in rates.values()), rates


def test_the_console_asks_for_a_token_when_authentication_is_on(browser, tmp_path):
    identities = plain_identities()
    alice = identities["alice"]
    tokens = write_tokens(tmp_path / "tokens", identities)
    server = ServerProcess("console-auth", "0s", tmp_path, extra_args=("--auth-tokens", str(tokens)))
    server.start()
    try:
        context = browser.new_context()
        page = context.new_page()
        watched = Watched(page, f"http://{server.addr}")
        page.set_default_timeout(WAIT_MS)
        page.goto(f"http://{server.addr}/console")
        dialog = page.get_by_role("dialog", name="A token is needed")
        expect(dialog).to_be_visible()
        # Escape closes it; the console then offers it again instead of hanging.
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        page.get_by_role("button", name="Give a token").click()
        expect(dialog).to_be_visible()
        # A blank token is not sent.
        dialog.get_by_label("Bearer token", exact=True).fill("   ")
        dialog.get_by_role("button", name="Use token").click()
        expect(dialog).to_contain_text("Give a token.")
        dialog.get_by_label("Bearer token", exact=True).fill(alice.token)
        dialog.get_by_role("button", name="Use token").click()
        expect(page.get_by_text(f"Signed in as {alice.subject}")).to_be_visible()
        expect(page.get_by_role("link", name="standard-images")).to_be_visible()
        # The token lives in the tab only.
        assert page.evaluate("sessionStorage.getItem('imageplane.token')") == alice.token
        assert page.evaluate("localStorage.length") == 0
        context.close()
        # The 401 answers before the token was given are the console's question, not errors.
        watched.errors = [error for error in watched.errors if "status of 401" not in error]
        watched.check()
    finally:
        server.stop()


def test_the_console_can_be_turned_off(tmp_path):
    server = ServerProcess("no-console", "0s", tmp_path, extra_args=("--no-console",))
    server.start()
    try:
        response = requests.get(f"http://{server.addr}/console", timeout=10)
        assert response.status_code == 404
        # The API it would read stays on.
        server_info = requests.get(f"http://{server.addr}/imageplane/v1/server", timeout=10)
        assert server_info.status_code == 200, server_info.text
    finally:
        server.stop()


def test_names_and_descriptions_are_shown_as_text_never_as_markup(console, console_server):
    page = console.page
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    folder = unique_folder()
    hostile = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    operation = rest(console_server, "POST", "/compute/v1/images", json={
        "folderId": folder, "name": "hostile", "imageId": public_image_id(console_server),
        "description": hostile,
    })
    image_id = operation["metadata"]["imageId"]
    page.goto(f"{console.origin}/console#/resource/compute.image/{image_id}")
    expect(page.get_by_text(hostile, exact=True)).to_be_visible()
    assert page.locator("main img").count() == 0
    assert page.locator("main script").count() == 0
    assert dialogs == []


def test_an_image_of_the_public_catalogue_is_copied_into_a_folder_of_ones_own(console, console_server):
    page = console.page
    image_id = public_image_id(console_server)
    page.goto(f"{console.origin}/console#/resource/compute.image/{image_id}")
    expect(page.get_by_role("button", name="Copy image")).to_be_visible()
    # Read-only: no Delete.
    expect(page.get_by_role("button", name="Delete")).to_have_count(0)
    folder = unique_folder()
    page.get_by_label("Into folder", exact=True).fill(folder)
    page.get_by_label("Name of the new image", exact=True).fill("my-copy")
    page.get_by_role("button", name="Copy image").click()
    expect(page.get_by_role("heading", name="Image my-copy")).to_be_visible()
    images = rest(console_server, "GET", "/compute/v1/images", params={"folderId": folder})["images"]
    assert [image["name"] for image in images] == ["my-copy"]
