"""File → Import batch… and File → Download template…: what the window's menu opens."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

from cactus_desk.batch.template import write_template
from cactus_desk.catalog import load_catalog
from cactus_desk.profiles import Profile
from cactus_desk.ui.batch.dialog import BatchDialog
from cactus_desk.ui.workers import Runner

if TYPE_CHECKING:
    from cactus_desk.ui.main_window import MainWindow


def open_batch(
    window: MainWindow, path: Path | None = None, profile_id: str | None = None
) -> BatchDialog | None:
    """Open the batch dialog on ``path`` (asked for when None) with ``profile_id`` chosen
    (when given and known); None when no file was chosen."""
    if path is None:
        name, _ = QFileDialog.getOpenFileName(
            window,
            "Import batch",
            str(Path.home()),
            "Batch files (*.xlsx *.xls *.ods *.csv);;All files (*)",
        )
        if not name:
            return None
        path = Path(name)
    service = window.send_controller.service
    secrets = window.salt_provider

    def balances(profile: Profile) -> dict[str, Decimal]:
        salt = secrets(profile)()
        if not salt:
            raise LookupError("no site salt on this desk")
        from cactus_desk.gateway.client import CactusClient

        client = CactusClient(profile.base_url, read_timeout=30, ca_bundle=profile.ca_bundle)
        try:
            answer = client.balance(profile.merchant_id, profile.site_id, salt)
        finally:
            client.close()
        return {
            entry.currency.upper(): Decimal(str(entry.available))
            for entry in answer.balances
            if entry.currency
        }

    dialog = BatchDialog(
        window.history,
        window.all_profiles(),
        service,
        window.data_dir,
        window,
        balances=balances,
        store=window._store_url,  # a team's approval policy may hold the batch
    )
    dialog.finished_sending.connect(lambda _: _refresh_history(window))
    dialog.show_in_history.connect(lambda text: show_batch_in_history(window, text))
    dialog.setModal(False)
    if profile_id is not None and dialog.profile_box.findData(profile_id) >= 0:
        dialog.profile_box.setCurrentIndex(dialog.profile_box.findData(profile_id))
    dialog.show()
    dialog.load(path)
    return dialog


def show_batch_in_history(window: MainWindow, search: str) -> None:
    """The History tab filtered to one batch's rows."""
    window.focus_history_search()  # shows the History tab
    window.history_panel.search_for(search)


def _refresh_history(window: MainWindow) -> None:
    panel = window._history_panel  # only when the History tab was built
    if panel is not None:
        panel.refresh()
        from cactus_desk.ui.batch.history_pane import BatchesPane

        pane = window.findChild(BatchesPane)
        if pane is not None:
            pane.refresh()


def download_template(window: MainWindow) -> None:
    """Ask for a method and a file name, then write the template on a worker."""
    methods = [method.wire for method in load_catalog().methods]
    wire, ok = QInputDialog.getItem(window, "Download template", "Method:", methods, 0, False)
    if not ok:
        return
    name, _ = QFileDialog.getSaveFileName(
        window,
        "Save template",
        str(Path.home() / f"batch-{wire}.xlsx"),
        "Excel (*.xlsx);;CSV (*.csv)",
    )
    if name:
        save_template(window, wire, Path(name))


def save_template(window: MainWindow, wire: str, path: Path) -> Runner:
    """Write the template for ``wire`` to ``path`` on a worker; returns the runner (tests)."""
    runner = Runner(window)
    method = load_catalog().method(wire)

    def failed(error: BaseException) -> None:
        QMessageBox.warning(window, "Template", f"The template could not be written: {error}")

    runner.run(lambda: write_template(method, path), lambda _: None, failed)
    return runner
