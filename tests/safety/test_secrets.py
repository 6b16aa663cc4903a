"""A whole session leaves neither the salt nor a full card number in any file; TLS is verified."""

from __future__ import annotations

import datetime
import http.server
import io
import ipaddress
import json
import logging
import shutil
import ssl
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from pytestqt.qtbot import QtBot

from cactus_desk import cli, paths
from cactus_desk.callbacks.apply import apply_callback
from cactus_desk.crash import format_for_log
from cactus_desk.gateway.client import CactusClient
from cactus_desk.gateway.models import PayoutRequest
from cactus_desk.gateway.outcomes import (
    NotSent,
    PayoutOutcome,
    RefusedUnverified,
)
from cactus_desk.gateway.signature import sign
from cactus_desk.gateway.urls import InsecureURLError
from cactus_desk.history import open_history
from cactus_desk.history.types import HistoryFilter
from cactus_desk.logs import stop_logging
from cactus_desk.payouts.recovery import resend_unknown
from cactus_desk.payouts.states import State
from cactus_desk.payouts.submit import SubmitResult, submit_payout
from cactus_desk.profiles import Profile, ProfileStore
from cactus_desk.sandbox import Fault, SandboxGateway
from cactus_desk.secrets import SecretStore
from tests.safety.helpers import CARD, MERCHANT, SALT, SITE, as_payout, card_request, profile

CARD_FORMS = (CARD, "4111 1111 1111 1111", "4111-1111-1111-1111")
log = logging.getLogger("cactus_desk.tests.session")


def _cli(monkeypatch: pytest.MonkeyPatch, *args: str, stdin: str = "") -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return cli.main(list(args))


@pytest.fixture(autouse=True)
def _no_log_handler_left() -> Iterator[None]:
    yield
    stop_logging()


class Exploding:
    """A client that fails with the salt and the card number in its error, as a bug might."""

    def payout(self, request: PayoutRequest, salt: str) -> PayoutOutcome:
        raise RuntimeError(f"cannot sign {request.additional_fields} with {salt}")


def _files(*roots: Path) -> list[Path]:
    found = []
    for root in roots:
        found += [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
    return found


def _send_from_the_window(qtbot: QtBot, data_home: Path, acme: Profile, request_id: str) -> None:
    """Send a card payout the way a person does: the real window, its form and confirm step."""
    from cactus_desk.app import build_main_window

    window = build_main_window(["--data-dir", str(data_home)])
    qtbot.addWidget(window)
    window.reload_profiles(select_id=acme.id)
    form = window.form
    form.set_currency("RUB")
    assert form.set_method("card")
    form.site_login_edit.setText("alice")
    form.amount_edit.setText("1500.00")
    form.field("card_number").setText("4111 1111 1111 1111")
    form.request_id_edit.setText(request_id)
    form.send_button.click()
    dialog = form.confirm_dialog()
    assert dialog is not None
    dialog.send_button().click()
    qtbot.waitUntil(
        lambda: not window.send_controller.is_sending() and form.banner.kind() != "",
        timeout=10_000,
    )
    window.shutdown()


def test_a_full_session_leaves_no_salt_or_card_number_on_disk(
    monkeypatch: pytest.MonkeyPatch, data_home: Path, tmp_path: Path, qtbot: QtBot
) -> None:
    gateway = SandboxGateway(merchant_id=MERCHANT, site_id=SITE, salt=SALT).start()
    try:
        add = ["profile", "add", "Acme", "--base-url", gateway.base_url]
        add += ["--merchant-id", MERCHANT, "--site-id", str(SITE), "--environment", "sandbox"]
        assert _cli(monkeypatch, *add, "--salt-stdin", stdin=SALT + "\n") == 0
        acme = ProfileStore(data_home).get("Acme")
        secrets = SecretStore()
        reads: list[str] = []

        def salt_provider() -> str:
            reads.append(threading.current_thread().name)
            salt = secrets.get_salt(acme.id)
            assert salt is not None
            return salt

        def send(client: object, request_id: str) -> SubmitResult:
            request = card_request(request_id)
            return submit_payout(
                store,
                client,  # type: ignore[arg-type]
                salt_provider,
                as_payout(acme, request),
            )

        with (
            open_history(data_home) as store,
            CactusClient(acme.base_url, read_timeout=0.5, ca_bundle=acme.ca_bundle) as client,
        ):
            accepted = send(client, "po-ok")
            assert accepted.state is State.ACCEPTED
            for fault in (Fault.BAD_SIGNATURE, Fault.REJECT, Fault.HTTP_500_HTML, Fault.RESET):
                gateway.set_fault(fault, times=1)
                assert send(client, f"po-{fault}").state is not State.ACCEPTED
            broken = send(Exploding(), "po-bug")
            assert broken.state is State.UNKNOWN
            resend_unknown(
                store,
                client,
                salt_provider,
                broken.record_id,
                reentered_fields={"card_number": CARD},
            )
            # A worker that really runs the send, as the window does.
            worker = threading.Thread(target=send, args=(client, "po-worker"), name="send-worker")
            worker.start()
            worker.join()
            assert reads[-1] == "send-worker"
            assert len(reads) == 8  # once per send, nowhere else

            _send_from_the_window(qtbot, data_home, acme, "po-window")
            assert (
                store.get(store.page(HistoryFilter(text="po-window"))[0].id).state is State.ACCEPTED
            )

            invoice = accepted.outcome.invoice_id  # type: ignore[union-attr]
            callback = {"request_id": "po-ok", "site_id": SITE, "status": 4}
            callback |= {"invoice_id": invoice, "card_number": CARD, "amount": 150_000}
            applied = apply_callback(
                store, {**callback, "signature": sign(callback, SALT)}, SALT, site_id=SITE
            )
            assert not applied.rejected
            forged = apply_callback(store, {**callback, "signature": "0" * 40}, SALT, site_id=SITE)
            assert forged.rejected

            try:
                raise ValueError(f"salt {SALT} card {CARD}")
            except ValueError:
                log.error("%s", format_for_log(sys.exc_info()))
                log.exception("while holding salt %s for card %s", SALT, CARD)

        export = tmp_path / "export.csv"
        assert _cli(monkeypatch, "history", "export", "--output", str(export)) == 0
        assert "po-ok" in export.read_text()
    finally:
        gateway.stop()
        stop_logging()

    log_dir = paths.log_dir(data_home, explicit_data_dir=True)
    log_text = (log_dir / "cactus-desk.log").read_text()
    assert "po-ok" in log_text and "[secret]" in log_text  # the log is real and was redacted
    scanned = _files(data_home, log_dir, export)
    assert any(p.name == "history.sqlite3" for p in scanned)
    for path in scanned:
        data = path.read_bytes()
        assert SALT.encode() not in data, path
        for form in CARD_FORMS:
            assert form.encode() not in data, path


def test_plain_http_to_another_host_is_refused() -> None:
    with pytest.raises(InsecureURLError, match="https://"):
        CactusClient("http://gateway.example.com")
    with pytest.raises(ValidationError, match="only allowed to this computer"):
        Profile(name="x", base_url="http://10.0.0.5:8000", merchant_id="m", site_id=1)
    assert CactusClient("http://127.0.0.1:1").base_url == "http://127.0.0.1:1"


# -- TLS with a profile's own CA bundle ---------------------------------------------------------


def _self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cactus-test-gateway")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "gateway.pem", folder / "gateway.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _openssl_self_signed(folder: Path) -> tuple[Path, Path]:
    import subprocess

    cert_path, key_path = folder / "gateway.pem", folder / "gateway.key"
    command = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    command += ["-nodes", "-days", "1", "-subj", "/CN=cactus-test-gateway"]
    command += ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key_path)]
    subprocess.run([*command, "-out", str(cert_path)], check=True, capture_output=True)
    return cert_path, key_path


class _Answer(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = json.dumps({"success": False, "message": "declined over TLS"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(params=["cryptography", "openssl"])
def tls_gateway(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTPS server with a self-signed certificate, made by either tool."""
    if request.param == "cryptography":
        pytest.importorskip("cryptography")
        cert, key = _self_signed(tmp_path)
    else:
        if shutil.which("openssl") is None:
            pytest.skip("the openssl command is not installed")
        cert, key = _openssl_self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", cert
    finally:
        server.shutdown()
        server.server_close()


def test_a_profile_ca_bundle_makes_a_private_gateway_trusted(
    monkeypatch: pytest.MonkeyPatch, data_home: Path, tls_gateway: tuple[str, Path]
) -> None:
    url, cert = tls_gateway
    add = ["profile", "add", "Private", "--base-url", url, "--merchant-id", MERCHANT]
    add += ["--site-id", str(SITE), "--ca-bundle", str(cert), "--salt-stdin"]
    assert _cli(monkeypatch, *add, stdin=SALT) == 0
    private = ProfileStore(data_home).get("Private")
    assert private.ca_bundle == str(cert.resolve())

    with CactusClient(private.base_url, ca_bundle=private.ca_bundle) as trusting:
        outcome = trusting.payout(card_request(), SALT)
    assert isinstance(outcome, RefusedUnverified) and outcome.message == "declined over TLS"

    with CactusClient(private.base_url) as default:
        outcome = default.payout(card_request(), SALT)
    assert isinstance(outcome, NotSent)
    assert "TLS certificate could not be verified" in outcome.reason


def test_the_profile_helper_matches_the_sandbox_site() -> None:
    # Guards the helpers the other tests rely on: a profile for the test site.
    assert profile("https://gw.test").site_id == SITE
