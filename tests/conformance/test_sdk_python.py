"""The high-level Python SDK, ``yandexcloud.SDK``, against the real binary over TLS, used
the way its users use it: ``SDK(endpoint=..., root_certificates=..., iam_token=... |
token=...)``, clients from ``sdk.client(Stub)`` and ``sdk.wait_operation_and_get_result``.

What yandexcloud 0.413.0 does (read in its source: _channels.py, _auth_plugin.py,
_operation_waiter.py, _sdk.py), hence what the server must answer:

* On the first ``sdk.client()`` it calls ``yandex.cloud.endpoint.ApiEndpointService/List``
  (empty request, no ``authorization``, no deadline) on a TLS channel to ``endpoint``
  (``grpc.ssl_channel_credentials(root_certificates)``; the name in ``endpoint`` is checked
  against the certificate and is the call's ``:authority``), and keeps ``id -> address``.
* ``sdk.client(Stub)`` picks the id by the stub's module: ``yandex.cloud.compute`` ->
  ``compute``, ``yandex.cloud.operation`` -> ``operation``, ``yandex.cloud.iam`` -> ``iam``,
  ``yandex.cloud.endpoint`` -> ``endpoint``; it maps no ``yandex.cloud.baremetal`` module
  (``RuntimeError: Unknown service``), see :func:`baremetal_images`. Every channel is TLS
  to the discovered address, and reads the ``iam`` address (a KeyError without one).
* Every call but IamTokenService's and ApiEndpointService's carries
  ``authorization: Bearer <IAM token>``: ``iam_token=`` as given; for ``token=`` (OAuth)
  the SDK first calls ``yandex.cloud.iam.v1.IamTokenService/Create`` with
  ``{yandex_passport_oauth_token: token}`` (no ``authorization``) at the ``iam`` address,
  and reuses the IAM token for 20 seconds.
* ``wait_operation_and_get_result`` calls ``yandex.cloud.operation.OperationService/Get``
  (with an ``idempotency-key: <uuid4>`` header) at once and then every second until
  ``done``; an operation with an error raises ``OperationError``; the response and the
  metadata are unpacked into the given types (silently left empty on a type mismatch,
  hence the checks of ids below).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import shutil
import socket
import ssl
import subprocess
import threading

import grpc
import pytest
import yandexcloud
from yandexcloud.operations import OperationError

from conftest import ServerProcess
from helpers import (
    CODE_NOT_FOUND,
    GiB,
    LINUX,
    api_endpoint_service_pb2,
    api_endpoint_service_pb2_grpc,
    assert_id,
    bm_image_pb2,
    bm_image_service_pb2,
    bm_image_service_pb2_grpc,
    expect_error,
    expect_ok,
    iam_token_service_pb2,
    image_pb2,
    image_service_pb2,
    image_service_pb2_grpc,
    operation_service_pb2,
    operation_service_pb2_grpc,
    ts_to_datetime,
    unique_folder,
    unique_name,
)

pytestmark = [
    # The SDK's own: token= (OAuth) is deprecated at Yandex Cloud, and its operation waiter
    # builds a RetryInterceptor that it deprecated itself.
    pytest.mark.filterwarnings("ignore:The 'token' argument:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Call to deprecated class RetryInterceptor:DeprecationWarning"),
]

# The endpoint ids the SDK reads for what these tests do (see the module docstring);
# "baremetal" for :func:`baremetal_images`.
SDK_ENDPOINT_IDS = {"compute", "operation", "iam", "endpoint", "baremetal"}
PUBLIC_FOLDER = "standard-images"
PUBLIC_FAMILY = "ubuntu-2204-lts"
SDK_TIMEOUT = 60.0  # seconds for one whole SDK scenario (the SDK's discovery has no deadline)
OP_WAIT = 30.0  # seconds wait_operation_and_get_result may poll (it polls once a second)
IAM_TOKEN_LIFETIME = dt.timedelta(hours=12)


# ---------------------------------------------------------------------------- helpers

def make_sdk(server: ServerProcess, **credentials) -> yandexcloud.SDK:
    """``yandexcloud.SDK`` pointed at the server as a user would: its ``localhost:PORT``,
    its certificate as the only root, and ``iam_token=`` or ``token=``."""
    return yandexcloud.SDK(
        endpoint=server.authority,
        root_certificates=server.root_certificates(),
        **credentials,
    )


def bounded(fn, timeout: float = SDK_TIMEOUT):
    """Runs ``fn()`` in a thread and returns its result, failing the test if it takes longer
    than ``timeout`` (the SDK's endpoint discovery and waiter set no deadline of their own)."""
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # noqa: BLE001
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"the SDK did not finish within {timeout}s", pytrace=False)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def baremetal_images(sdk: yandexcloud.SDK):
    """A bare-metal ImageService client from the SDK. yandexcloud 0.413.0 maps no
    ``yandex.cloud.baremetal`` module to an endpoint id, so ``sdk.client`` refuses the stub;
    then the SDK's own channel for the discovered id ``baremetal`` (its TLS and its
    credentials, what ``sdk.client`` would have built) serves instead."""
    try:
        return sdk.client(bm_image_service_pb2_grpc.ImageServiceStub)
    except RuntimeError as err:
        if "Unknown service" not in str(err):
            raise
        return bm_image_service_pb2_grpc.ImageServiceStub(sdk._channels.channel("baremetal"))


def create_compute_image(sdk: yandexcloud.SDK, folder: str):
    """The latest public Ubuntu copied into ``folder`` through the SDK; returns
    (public source, image name, OperationResult)."""
    images = sdk.client(image_service_pb2_grpc.ImageServiceStub)
    public = expect_ok(images.GetLatestByFamily, image_service_pb2.GetImageLatestByFamilyRequest(
        folder_id=PUBLIC_FOLDER, family=PUBLIC_FAMILY))
    name = unique_name("sdk")
    operation = expect_ok(images.Create, image_service_pb2.CreateImageRequest(
        folder_id=folder, name=name, description="through yandexcloud.SDK",
        labels={"via": "python-sdk"}, image_id=public.id))
    result = sdk.wait_operation_and_get_result(
        operation,
        response_type=image_pb2.Image,
        meta_type=image_service_pb2.CreateImageMetadata,
        timeout=OP_WAIT,
    )
    return public, name, result


def check_compute_image(sdk, folder, created, subject: str) -> image_pb2.Image:
    public, name, result = created
    operation, image, meta = result.operation, result.response, result.meta
    assert_id(operation.id, "operation id")
    assert operation.created_by == subject, f"created_by {operation.created_by!r} != {subject!r}"
    assert operation.description == "Create image"
    assert_id(meta.image_id, "image id")
    assert image.id == meta.image_id, f"the operation's response is not the image {meta.image_id}: {image}"
    assert image.folder_id == folder
    assert image.name == name
    assert image.status == image_pb2.Image.Status.READY
    assert image.description == "through yandexcloud.SDK"
    assert dict(image.labels) == {"via": "python-sdk"}
    assert image.min_disk_size == public.min_disk_size
    assert list(image.product_ids) == list(public.product_ids)
    assert image.os.type == LINUX
    # the same image through the SDK's client, and the finished operation
    images = sdk.client(image_service_pb2_grpc.ImageServiceStub)
    assert expect_ok(images.Get, image_service_pb2.GetImageRequest(image_id=image.id)) == image
    operations = sdk.client(operation_service_pb2_grpc.OperationServiceStub)
    done = expect_ok(operations.Get, operation_service_pb2.GetOperationRequest(operation_id=operation.id))
    assert done.done and done.WhichOneof("result") == "response"
    assert done.created_by == subject
    return image


def create_baremetal_image(sdk: yandexcloud.SDK, folder: str, uri: str):
    images = baremetal_images(sdk)
    name = unique_name("bm")
    operation = expect_ok(images.Create, bm_image_service_pb2.CreateImageRequest(
        folder_id=folder, name=name, description="bare metal through yandexcloud.SDK",
        labels={"via": "python-sdk"}, uri=uri))
    result = sdk.wait_operation_and_get_result(
        operation,
        response_type=bm_image_pb2.Image,
        meta_type=bm_image_service_pb2.CreateImageMetadata,
        timeout=OP_WAIT,
    )
    return name, result


def check_baremetal_image(sdk, folder, name, result, subject: str, md5: str) -> None:
    operation, image, meta = result.operation, result.response, result.meta
    assert_id(operation.id, "operation id")
    assert operation.created_by == subject, f"created_by {operation.created_by!r} != {subject!r}"
    assert_id(meta.image_id, "bare-metal image id")
    assert image.id == meta.image_id, f"the operation's response is not the image {meta.image_id}: {image}"
    assert image.folder_id == folder
    assert image.name == name
    assert image.description == "bare metal through yandexcloud.SDK"
    assert dict(image.labels) == {"via": "python-sdk"}
    assert image.status == bm_image_pb2.Image.Status.READY
    assert image.checksum == md5
    got = expect_ok(baremetal_images(sdk).Get, bm_image_service_pb2.GetImageRequest(image_id=image.id))
    assert got == image


# ------------------------------------------------------------------------- transport

def test_self_signed_certificate_is_for_localhost_and_loopback(tls):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    server = tls.server
    cert_path = server.data_dir / "tls" / "cert.pem"
    key_path = server.data_dir / "tls" / "key.pem"
    assert cert_path.is_file(), f"--tls-self-signed wrote no {cert_path}"
    assert key_path.is_file(), f"--tls-self-signed wrote no {key_path}"
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName), san
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress), san
    now = dt.datetime.now(dt.timezone.utc)
    assert cert.not_valid_before_utc <= now < cert.not_valid_after_utc
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert key.public_key().public_bytes(*spki) == cert.public_key().public_bytes(*spki), (
        "key.pem is not the key of cert.pem")
    # the certificate the server presents is the one in the file
    served = ssl.get_server_certificate(("127.0.0.1", server.port))
    assert ssl.PEM_cert_to_DER_cert(served) == cert.public_bytes(serialization.Encoding.DER)
    # and the start logged where it is, for the developer to trust it in one step
    logged = server.stderr_path.read_text(errors="replace")
    assert "serving over TLS" in logged and str(cert_path) in logged, server.stderr_tail()


@pytest.mark.parametrize("offered, chosen", [
    (["h2", "http/1.1"], "h2"),
    (["http/1.1"], "http/1.1"),
    (["h2"], "h2"),
])
def test_alpn_offers_h2_and_http11(tls, offered, chosen):
    context = ssl.create_default_context(cadata=tls.server.root_certificates().decode())
    # Python 3.13 turns strict X.509 checks on; the certificate is the server's business,
    # the protocol is what this test is about.
    context.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)
    context.set_alpn_protocols(offered)
    with socket.create_connection(("127.0.0.1", tls.server.port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as conn:
            assert conn.selected_alpn_protocol() == chosen


@pytest.mark.parametrize("flags", [("--http1.1",), ("--http2",)], ids=["http1", "h2"])
def test_rest_gateway_over_https(tls, flags):
    curl = shutil.which("curl")
    assert curl, "curl is not installed"
    url = (f"https://{tls.server.authority}/compute/v1/images:latestByFamily"
           f"?folderId={PUBLIC_FOLDER}&family={PUBLIC_FAMILY}")
    proc = subprocess.run(
        [curl, "-sS", "--cacert", str(tls.server.cert_path), "-w", "\n%{http_code} %{http_version}",
         *flags, url],
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    body, _, status_line = proc.stdout.rpartition("\n")
    status, version = status_line.split()
    assert status == "200", body
    assert version == ("1.1" if flags == ("--http1.1",) else "2")
    image = json.loads(body)
    assert image["folderId"] == PUBLIC_FOLDER and image["family"] == PUBLIC_FAMILY


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_endpoints_name_the_authority_the_client_dialed(tls, host):
    authority = f"{host}:{tls.server.port}"
    channel = tls.server.channel(authority)
    try:
        stub = api_endpoint_service_pb2_grpc.ApiEndpointServiceStub(channel)
        listed = expect_ok(stub.List, api_endpoint_service_pb2.ListApiEndpointsRequest())
        ids = {e.id for e in listed.endpoints}
        assert SDK_ENDPOINT_IDS <= ids, f"missing endpoint ids: {SDK_ENDPOINT_IDS - ids}"
        for endpoint in listed.endpoints:
            assert endpoint.address == authority, f"{endpoint.id} points at {endpoint.address!r}"
        got = expect_ok(stub.Get, api_endpoint_service_pb2.GetApiEndpointRequest(api_endpoint_id="iam"))
        assert (got.id, got.address) == ("iam", authority)
    finally:
        channel.close()


def test_tls_cert_and_key_files(tmp_path):
    """``--tls-cert``/``--tls-key`` with a certificate made here; the SDK trusts it alone."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imageplane conformance")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "own.crt").write_bytes(cert_pem)
    (tmp_path / "own.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))

    server = ServerProcess("tls-own-cert", "0s", tmp_path, tls=True, extra_args=(
        "--tls-cert", str(tmp_path / "own.crt"), "--tls-key", str(tmp_path / "own.key")))
    server.start()
    try:
        assert "--tls-self-signed" not in server.command()
        served = ssl.get_server_certificate(("127.0.0.1", server.port))
        assert ssl.PEM_cert_to_DER_cert(served) == cert.public_bytes(serialization.Encoding.DER)
        sdk = make_sdk(server, iam_token="t1.conformance")
        folder = unique_folder()
        created = bounded(lambda: create_compute_image(sdk, folder))
        check_compute_image(sdk, folder, created, "anonymous")
    finally:
        code = server.stop()
    assert code == 0, f"server did not exit cleanly on SIGTERM (exit code {code})\n{server.stderr_tail()}"


# ------------------------------------------------------------------- SDK, auth off

def test_sdk_discovers_the_endpoints_it_uses(tls):
    sdk = make_sdk(tls.server, iam_token="t1.conformance")
    endpoints = sdk.client(api_endpoint_service_pb2_grpc.ApiEndpointServiceStub)
    listed = bounded(lambda: expect_ok(endpoints.List, api_endpoint_service_pb2.ListApiEndpointsRequest()))
    by_id = {e.id: e.address for e in listed.endpoints}
    assert SDK_ENDPOINT_IDS <= set(by_id), f"missing endpoint ids: {SDK_ENDPOINT_IDS - set(by_id)}"
    assert set(by_id.values()) == {tls.server.authority}, by_id


@pytest.mark.parametrize("credentials", [
    {"iam_token": "t1.conformance-anything"},
    {"token": "y0_conformance-any-oauth-token"},
], ids=["iam_token", "oauth_token"])
def test_sdk_creates_a_compute_image_and_waits_for_it(tls, credentials):
    sdk = make_sdk(tls.server, **credentials)
    folder = unique_folder()
    created = bounded(lambda: create_compute_image(sdk, folder))
    image = check_compute_image(sdk, folder, created, "anonymous")
    assert image.min_disk_size == 8 * GiB


def test_sdk_creates_a_baremetal_image_and_waits_for_it(tls, image_source):
    sdk = make_sdk(tls.server, iam_token="t1.conformance")
    folder = unique_folder()
    name, result = bounded(lambda: create_baremetal_image(sdk, folder, image_source.url("boot.iso")))
    check_baremetal_image(sdk, folder, name, result, "anonymous", image_source.iso_md5)


def test_sdk_raises_operation_error_for_a_failed_operation(tls, image_source):
    sdk = make_sdk(tls.server, iam_token="t1.conformance")
    folder = unique_folder()
    with pytest.raises(OperationError) as caught:
        bounded(lambda: create_baremetal_image(sdk, folder, image_source.url("missing.iso")))
    message = caught.value.message
    assert f"Error code: {CODE_NOT_FOUND}." in message, message
    assert caught.value.operation_result.meta.image_id, "the error carries no metadata"


# -------------------------------------------------------------------- SDK, auth on

def test_sdk_exchanges_an_oauth_token_and_operations_name_its_subject(authed):
    alice = authed.identities["alice"]
    sdk = make_sdk(authed.server, token=alice.token)
    folder = alice.folders[0]
    created = bounded(lambda: create_compute_image(sdk, folder))
    check_compute_image(sdk, folder, created, alice.subject)


def test_sdk_exchanges_a_service_account_key_jwt(authed):
    # The SDK signs a PS256 JWT with the key, `kid` = the key id, `iss` = the account.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    robot = authed.identities["robot"]
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    sdk = make_sdk(authed.server, service_account_key={
        "id": robot.token, "service_account_id": robot.subject, "private_key": private_key})
    folder = robot.folders[0]
    created = bounded(lambda: create_compute_image(sdk, folder))
    check_compute_image(sdk, folder, created, robot.subject)
    # A key id of the file with another account as issuer gets nothing.
    impostor = make_sdk(authed.server, service_account_key={
        "id": robot.token, "service_account_id": "ajeimpostor000000001", "private_key": private_key})
    images = impostor.client(image_service_pb2_grpc.ImageServiceStub)
    request = image_service_pb2.GetImageRequest(image_id=created[2].response.id)
    with pytest.raises(grpc.RpcError) as caught:
        bounded(lambda: images.Get(request, timeout=10))
    # The SDK fetches its token in a call-credentials plugin: grpc reports the exchange's
    # UNAUTHENTICATED inside an UNAVAILABLE "Getting metadata from plugin failed".
    details = caught.value.details()
    assert "UNAUTHENTICATED" in details and "are not a token and its subject" in details, details


def test_iam_token_for_a_listed_oauth_token(authed, image_source):
    alice = authed.identities["alice"]
    # IamTokenService.Create needs no authorization (the SDK sends none)
    resp = expect_ok(authed.iam.Create, iam_token_service_pb2.CreateIamTokenRequest(
        yandex_passport_oauth_token=alice.token))
    assert resp.iam_token.startswith("t1."), f"IAM token {resp.iam_token!r} does not start with t1."
    assert resp.iam_token != alice.token
    expires = ts_to_datetime(resp.expires_at) - dt.datetime.now(dt.timezone.utc)
    assert abs(expires - IAM_TOKEN_LIFETIME) < dt.timedelta(minutes=5), f"expires in {expires}"
    # the IAM token is alice, with her folders
    sdk = make_sdk(authed.server, iam_token=resp.iam_token)
    folder = alice.folders[1]
    name, result = bounded(lambda: create_baremetal_image(sdk, folder, image_source.url("boot.iso")))
    check_baremetal_image(sdk, folder, name, result, alice.subject, image_source.iso_md5)


def test_a_listed_token_is_itself_a_bearer_token(authed):
    bob = authed.identities["bob"]
    sdk = make_sdk(authed.server, iam_token=bob.token)
    folder = unique_folder()  # bob may use every folder
    created = bounded(lambda: create_compute_image(sdk, folder))
    check_compute_image(sdk, folder, created, bob.subject)


def test_calls_without_a_valid_bearer_are_unauthenticated(authed):
    request = image_service_pb2.CreateImageRequest(
        folder_id=unique_folder(), name=unique_name("x"), image_id="fd8ubuntu2204v202611")
    # no authorization at all
    expect_error(grpc.StatusCode.UNAUTHENTICATED, authed.images.Create, request)
    expect_error(grpc.StatusCode.UNAUTHENTICATED, authed.images.Get,
                 image_service_pb2.GetImageRequest(image_id="fd8ubuntu2204v202611"))
    # a bearer the server never issued, through the SDK
    sdk = make_sdk(authed.server, iam_token="t1.forged-conformance-token")
    images = sdk.client(image_service_pb2_grpc.ImageServiceStub)
    bounded(lambda: expect_error(grpc.StatusCode.UNAUTHENTICATED, images.Create, request))
    # discovery needs no authorization (the SDK sends none)
    listed = expect_ok(authed.endpoints.List, api_endpoint_service_pb2.ListApiEndpointsRequest())
    assert SDK_ENDPOINT_IDS <= {e.id for e in listed.endpoints}


def test_an_unlisted_oauth_token_gets_no_iam_token(authed):
    expect_error(grpc.StatusCode.UNAUTHENTICATED, authed.iam.Create,
                 iam_token_service_pb2.CreateIamTokenRequest(yandex_passport_oauth_token="y0_not-in-the-file"))


def test_a_token_uses_only_its_folders_and_reads_the_public_catalogue(authed):
    alice = authed.identities["alice"]
    sdk = make_sdk(authed.server, token=alice.token)
    images = sdk.client(image_service_pb2_grpc.ImageServiceStub)

    def scenario():
        public = expect_ok(images.GetLatestByFamily, image_service_pb2.GetImageLatestByFamilyRequest(
            folder_id=PUBLIC_FOLDER, family=PUBLIC_FAMILY))
        assert public.folder_id == PUBLIC_FOLDER
        other = unique_folder()
        expect_error(grpc.StatusCode.PERMISSION_DENIED, images.Create, image_service_pb2.CreateImageRequest(
            folder_id=other, name=unique_name("x"), image_id=public.id), other)
        # the public catalogue is read-only to everyone
        expect_error(grpc.StatusCode.PERMISSION_DENIED, images.Create, image_service_pb2.CreateImageRequest(
            folder_id=PUBLIC_FOLDER, name=unique_name("x"), image_id=public.id))

    bounded(scenario)
