"""Render the main screens to PNG files: ``python -m cactus_desk.ui.screenshots OUTDIR``.

Everything runs against the embedded sandbox in a throw-away data folder, so the pictures
never show (or touch) real profiles, payouts or secrets. Use ``QT_QPA_PLATFORM=offscreen``
on a machine without a display.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QApplication, QCheckBox, QWidget

from cactus_desk.app import build_main_window
from cactus_desk.catalog import load_catalog
from cactus_desk.profiles import Profile
from cactus_desk.ui.main_window import HISTORY_TAB, PAYOUT_TAB, MainWindow

WINDOW_SIZE = (820, 860)
HISTORY_SIZE = (1240, 860)


def _settle(until: Callable[[], bool] = lambda: True, timeout: float = 10.0) -> None:
    """Run the event loop until ``until()`` holds (and at least a few passes, for layouts)."""
    deadline = time.monotonic() + timeout
    for _ in range(5):
        QApplication.processEvents()
    while not until():
        if time.monotonic() > deadline:
            raise TimeoutError("the window did not settle in time")
        QApplication.processEvents()
        time.sleep(0.01)


def _fill(window: MainWindow, method: str, currency: str, amount: str, login: str) -> None:
    form = window.form
    form.set_currency(currency)
    if not form.set_method(method):
        raise RuntimeError(f"{method} cannot be chosen for {currency}")
    form.site_login_edit.setText(login)
    form.amount_edit.setText(amount)
    for spec in form.panel().visible_fields():
        widget = form.field(spec.wire)
        if isinstance(widget, QCheckBox):
            widget.setChecked(spec.wire == "asap")
        else:
            widget.setText(spec.example)
    _settle()


def _send(window: MainWindow, method: str, currency: str, amount: str, login: str) -> None:
    _fill(window, method, currency, amount, login)
    dialog = window.form.request_send()
    if dialog is None:
        raise RuntimeError(f"the {method} payout is not valid: {window.form.errors()}")
    dialog.accept()
    _settle(lambda: not window.send_controller.is_sending())


def _finalized(window: MainWindow) -> bool:
    """True once the sandbox has settled every accepted payout (Success or Declined)."""
    from cactus_desk.history.types import HistoryFilter

    rows = window.history.page(HistoryFilter(states=frozenset({"ACCEPTED"})), limit=50)
    return bool(rows) and all(row.gateway_status in (4, 5) for row in rows)


def _save(widget: QWidget, path: Path) -> Path:
    _settle()
    if not widget.grab().save(str(path)):
        raise OSError(f"could not write {path}")
    return path


def render(outdir: Path) -> list[Path]:
    """Render the screens into ``outdir``; return the files written."""
    outdir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="cactus-desk-shots-") as data:
        window = build_main_window(
            ["--sandbox", "--data-dir", data, "--finalize-after", "0.3", "--read-timeout", "1"]
        )
        assert isinstance(window, MainWindow)
        try:
            window.resize(*WINDOW_SIZE)
            window.show()
            _settle(lambda: bool(window.balance_widget.balances()))
            window.tabs.setCurrentIndex(PAYOUT_TAB)

            _fill(window, "card", "RUB", "1500.50", "alice")
            written.append(_save(window, outdir / "main-card.png"))

            _fill(window, "sbp", "RUB", "820.00", "bob")
            written.append(_save(window, outdir / "main-sbp.png"))

            _fill(window, "card", "RUB", "1500.50", "alice")
            dialog = window.form.request_send()
            assert dialog is not None
            written.append(_save(dialog, outdir / "confirm-sandbox.png"))
            dialog.reject()

            sandbox = window.sandbox
            assert sandbox is not None
            live = Profile(
                name="Acme live",
                base_url=sandbox.base_url,
                merchant_id=sandbox.merchant_id,
                site_id=sandbox.site_id,
                environment="live",
            )
            window.profiles.add(live)
            window.reload_profiles(live.id)
            _fill(window, "card", "RUB", "1500.50", "alice")
            _settle(lambda: not window.balance_widget.is_busy())
            written.append(_save(window, outdir / "main-live.png"))
            dialog = window.form.request_send()
            assert dialog is not None
            written.append(_save(dialog, outdir / "confirm-live.png"))
            dialog.reject()
            window.form.select_profile(window.sandbox_profile.id if window.sandbox_profile else "")

            for method, currency, amount, login in (
                ("card", "USD", "250.00", "alice"),
                ("sbp", "RUB", "1200.00", "bob"),
                ("localbanks", "EUR", "99.90", "carol"),
                ("card", "RUB", "500.13", "dave"),  # the sandbox declines amounts ending in 13
                ("card", "RUB", "1500.50", "alice"),
            ):
                _send(window, method, currency, amount, login)
            # The banner follows the last payout to its final status; the balance reloads.
            _settle(lambda: window.form.banner.kind() == "paid", timeout=20)
            _settle(lambda: not window.balance_widget.is_busy())
            written.append(_save(window, outdir / "main-accepted.png"))

            from cactus_desk.sandbox import Fault

            sandbox.set_fault(Fault.REJECT, times=1, message="Recipient bank is not available")
            _send(window, "sbp", "RUB", "730.00", "erin")
            sandbox.set_fault(Fault.NO_ANSWER, times=1)
            _send(window, "localbanks", "UAH", "4200.00", "frank")
            window.resize(*HISTORY_SIZE)
            window.tabs.setCurrentIndex(HISTORY_TAB)
            panel = window.history_panel
            _settle(lambda: _finalized(window), timeout=20)
            panel.refresh()
            _settle()
            rows = panel.model.rowCount()
            if rows:
                panel.view.selectRow(rows - 1)  # the first payout, with its whole timeline
                _settle(lambda: panel.shown_details is not None)  # read on a worker
            written.append(_save(window, outdir / "history.png"))

            from cactus_desk.ui.batch.screenshots import render_batch

            written += render_batch(window, outdir)
        finally:
            window.shutdown()
            window.deleteLater()
    return written


def main(argv: list[str] | None = None) -> int:
    """Entry point: render into the folder named by the only argument."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m cactus_desk.ui.screenshots OUTDIR", file=sys.stderr)
        return 2
    load_catalog()
    app = QApplication.instance() or QApplication(["cactus-desk-screenshots"])
    for path in render(Path(args[0])):
        print(path)
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
