"""``cactus-desk --self-test``: check an installation end to end, then exit.

It builds the main window (offscreen unless a Qt platform is chosen), opens the history
store, reports the keyring backend and sends one payout to a sandbox gateway started in this
process. Each check prints one line, ``ok  ...``, ``WARN ...`` (works, but something needs
fixing, such as a missing OS keyring) or ``FAIL ...``; the exit code is 0 only when no check
failed. Unless ``--data-dir`` is given, everything goes to a temporary
folder that is removed afterwards, so a self-test never touches real profiles or history.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TextIO

from cactus_desk import paths

if TYPE_CHECKING:
    from cactus_desk.history.port import HistoryStore

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

SELF_TEST_METHOD = "card"
SELF_TEST_CURRENCY = "EUR"
SELF_TEST_AMOUNT = "10.00"


class SelfTestError(Exception):
    """One check failed; the message says what was wrong."""


class SelfTestWarning(Exception):
    """One check found something to fix that does not stop Cactus Desk from working."""


class _UsageError(ValueError):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = _Parser(prog="cactus-desk --self-test", add_help=False)
    parser.add_argument("--self-test", action="store_true")
    parser.add_argument("--data-dir", metavar="DIR")
    # The window's own options are accepted (the CLI passes its whole command line through)
    # but a self-test always runs on its own sandbox.
    parser.add_argument("--sandbox", action="store_true")
    parser.add_argument("--read-timeout", metavar="SECONDS")
    return parser.parse_args(argv)


@contextlib.contextmanager
def _data_dir(explicit: str | None) -> Iterator[Path]:
    if explicit:
        yield paths.ensure_private_dir(paths.data_dir(explicit))
        return
    with tempfile.TemporaryDirectory(
        prefix="cactus-desk-self-test-", ignore_cleanup_errors=True
    ) as temporary:
        yield Path(temporary)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, SelfTestError | SelfTestWarning):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Report:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.failures = 0
        self.warnings = 0

    def check(self, name: str, action: Callable[[], str | None]) -> bool:
        """Run one check; print ``ok  name[: detail]``, ``WARN detail`` or ``FAIL name: why``."""
        try:
            detail = action()
        except SelfTestWarning as exc:
            self.warnings += 1
            print(f"WARN {_one_line(exc)}", file=self.out, flush=True)
            return True
        except Exception as exc:  # every failure is reported as one line, never a traceback
            self.failures += 1
            print(f"FAIL {name}: {_one_line(exc)}", file=self.out, flush=True)
            return False
        print(f"ok  {detail or name}", file=self.out, flush=True)
        return True


def check_main_window(data_dir: Path) -> str:
    """Build the main window on the embedded sandbox, show it, close it."""
    from cactus_desk import app
    from cactus_desk.ui.qt_runtime import ensure_application, qt_version

    qt_app = ensure_application()
    window = app.build_main_window(["--sandbox", "--data-dir", str(data_dir)])
    try:
        window.show()
        qt_app.processEvents()
        if not window.isVisible():
            raise SelfTestError("the main window did not show")
        if getattr(window, "sandbox_profile", None) is None:
            raise SelfTestError("the main window did not select the sandbox profile")
    finally:
        window.close()
        window.deleteLater()
        qt_app.processEvents()
    return f"main window (Qt {qt_version()}, platform {qt_app.platformName()})"


def check_keyring() -> str:
    """Name the keyring backend; without a usable one, a warning (sandbox profiles still work,
    live salts cannot be saved)."""
    from cactus_desk.secrets import backend_name, keyring_usable

    name = backend_name()
    if keyring_usable():
        return f"keyring: {name}"
    raise SelfTestWarning(
        f"keyring: no usable OS keyring ({name}), so live salts cannot be saved on this "
        "machine; install and unlock one (e.g. GNOME Keyring or KWallet)"
    )


def check_sandbox_payout(store: HistoryStore) -> str:
    """Send one payout through the real send path (``SendService``) to an in-process sandbox."""
    from cactus_desk.catalog import load_catalog
    from cactus_desk.payouts.draft import PayoutDraft, new_request_id
    from cactus_desk.payouts.send import SendCode, SendResult, SendService
    from cactus_desk.payouts.states import State
    from cactus_desk.profiles import Profile
    from cactus_desk.sandbox import SandboxGateway

    fields: dict[str, str | bool] = {
        spec.wire: spec.example
        for spec in load_catalog().fields_for(SELF_TEST_METHOD, SELF_TEST_CURRENCY)
        if spec.required
    }
    with SandboxGateway() as sandbox:
        profile = Profile(
            id="self-test",
            name="Self-test sandbox",
            base_url=sandbox.base_url,
            merchant_id=sandbox.merchant_id,
            site_id=sandbox.site_id,
            environment="sandbox",
            read_timeout=30,
        )
        draft = PayoutDraft(
            profile_id=profile.id,
            site_login="self-test",
            currency=SELF_TEST_CURRENCY,
            method=SELF_TEST_METHOD,
            amount_text=SELF_TEST_AMOUNT,
            fields=fields,
            request_id=new_request_id(),
        )
        service = SendService(store, lambda _profile: sandbox.salt)
        try:
            prepared = service.prepare(draft, profile)
            if isinstance(prepared, SendResult):
                raise SelfTestError(f"the sandbox payout was refused: {prepared.message}")
            result = service.send(prepared.payout, profile)
        finally:
            service.close()
        if result.code is not SendCode.ACCEPTED or result.record_id is None:
            ended = result.state if result.state is not None else result.code
            raise SelfTestError(f"the sandbox payout ended {ended}: {result.message}")
        record = store.get(result.record_id)
        if record.state != State.ACCEPTED or record.invoice_id != result.invoice_id:
            raise SelfTestError("the history did not record the accepted payout")
        if sandbox.requests_received != 1:
            raise SelfTestError(f"the sandbox received {sandbox.requests_received} requests")
    return f"sandbox payout accepted (invoice {result.invoice_id})"


def run(argv: list[str], out: TextIO | None = None) -> int:
    """Run every check, print one line each, and return 0 if all passed, else 1."""
    stream = out if out is not None else sys.stdout
    try:
        args = _parse(list(argv))
    except _UsageError as exc:
        print(f"cactus-desk: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from cactus_desk.history import open_history

    report = _Report(stream)
    with _data_dir(args.data_dir) as data:
        report.check("main window", lambda: check_main_window(data))
        store: HistoryStore | None = None

        def open_store() -> str:
            nonlocal store
            store = open_history(data)
            store.count()
            return "history store"

        report.check("history store", open_store)
        report.check("keyring", check_keyring)
        try:
            if store is None:
                print("FAIL sandbox payout: skipped, the history store did not open", file=stream)
                report.failures += 1
            else:
                opened = store
                report.check("sandbox payout", lambda: check_sandbox_payout(opened))
        finally:
            if store is not None:
                store.close()
    if report.failures:
        print(f"self-test failed ({report.failures} check(s))", file=stream, flush=True)
        return EXIT_FAILURE
    warned = f" ({report.warnings} warning(s))" if report.warnings else ""
    print(f"self-test passed{warned}", file=stream, flush=True)
    return EXIT_OK
