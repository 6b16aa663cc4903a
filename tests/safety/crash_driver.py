"""A real Cactus Desk sending process for the crash tests: ``python -m tests.safety.crash_driver``.

Arguments: PATH DATA_DIR BASE_URL SALT MODE REQUEST_ID. PATH ``core`` sends one card payout
through the product's core path (HistoryStore + CactusClient + submit_payout); PATH
``window`` builds the real main window (``cactus_desk.app.build_main_window``) on a profile
for BASE_URL and sends by filling the form and pressing Send and "Send payout". MODE ``send``
gives the salt; ``hold-salt`` never returns from reading it, like a keyring prompt nobody
answers, so the process can be killed before the request leaves. Prints ``salt-requested``
when the salt is asked for; the test kills the process with SIGKILL.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import keyring

from cactus_desk.gateway.client import CactusClient
from cactus_desk.history import open_history
from cactus_desk.payouts.submit import submit_payout
from cactus_desk.profiles import ProfileStore
from cactus_desk.secrets import SecretStore
from tests.memory_keyring import MemoryKeyring
from tests.safety.helpers import CARD, card_request, payout, profile


class _AnnouncingKeyring(MemoryKeyring):
    """Says when a send reads the salt; with ``hold`` that read never returns.

    Only the send's read counts: the window also reads the salt to show the balance.
    """

    def __init__(self, hold: bool) -> None:
        super().__init__()
        self.hold = hold

    def get_password(self, service: str, username: str) -> str | None:
        if _called_from("send_recorded"):
            print("salt-requested", flush=True)
            if self.hold:
                threading.Event().wait()
        return super().get_password(service, username)


def _called_from(function: str) -> bool:
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == function:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def _core(data_dir: Path, base_url: str, request_id: str) -> int:
    request = card_request(request_id)
    secrets, profile_id = SecretStore(), profile(base_url).id

    def salt_provider() -> str:
        return secrets.get_salt(profile_id) or ""

    # The team store when CACTUS_DESK_STORE names one (the password from PGPASSWORD).
    store_url = os.environ.get("CACTUS_DESK_STORE")
    with open_history(data_dir, store_url) as store, CactusClient(base_url) as client:
        result = submit_payout(store, client, salt_provider, payout(base_url, request))
    print(f"finished {result.state}", flush=True)
    return 0


def _window(data_dir: Path, base_url: str, request_id: str) -> int:
    from PySide6.QtWidgets import QApplication

    from cactus_desk.app import build_main_window

    app = QApplication([])
    window = build_main_window(["--data-dir", str(data_dir)])
    target = profile(base_url)
    window.reload_profiles(select_id=target.id)
    window.show()
    form = window.form
    form.set_currency("RUB")
    assert form.set_method("card")
    form.site_login_edit.setText("alice")
    form.amount_edit.setText("1500.00")
    form.field("card_number").setText(CARD)
    form.field("card_holder").setText("Ivan Petrov")
    form.request_id_edit.setText(request_id)
    assert form.errors() == {}, form.errors()
    window.send_controller.finished.connect(lambda _job, result: _done(app, result))
    form.send_button.click()
    dialog = form.confirm_dialog()
    assert dialog is not None
    dialog.send_button().click()
    return app.exec()


def _done(app: object, result: object) -> None:
    print(f"finished {result.state}", flush=True)  # type: ignore[attr-defined]
    app.quit()  # type: ignore[attr-defined]


def main(argv: list[str]) -> int:
    path, data_dir, base_url, salt, mode, request_id = argv
    backend = _AnnouncingKeyring(hold=mode == "hold-salt")
    keyring.set_keyring(backend)
    target = profile(base_url)
    ProfileStore(Path(data_dir)).add(target)
    backend.passwords[("cactus-desk", f"{target.id}:salt")] = salt
    if path == "window":
        return _window(Path(data_dir), base_url, request_id)
    return _core(Path(data_dir), base_url, request_id)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
