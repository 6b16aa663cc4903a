"""The window's next start after a batch stopped part-way: it names the file and the rows
never sent, and opening the same file again (SHA-256 checked) sends only those rows."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from cactus_desk.app import build_main_window
from cactus_desk.batch.columns import auto_mapping
from cactus_desk.batch.reading import read_table
from cactus_desk.batch.sending import Control, send_batch
from cactus_desk.batch.store import batch_records
from cactus_desk.batch.validate import validate_batch
from cactus_desk.history import open_history
from cactus_desk.payouts.send import SendService
from cactus_desk.payouts.states import State
from cactus_desk.profiles import Profile
from cactus_desk.sandbox import Fault, SandboxGateway
from cactus_desk.ui.batch.dialog import BatchDialog
from cactus_desk.ui.batch.interrupted import MISMATCH, NOTICE, resume_from
from cactus_desk.ui.main_window import SANDBOX_PROFILE_ID, SANDBOX_PROFILE_NAME, MainWindow
from tests.batch.files import CARD_HEADERS, card_rows, write_csv
from tests.ui.batch.test_batch_window import send
from tests.ui.conftest import READ_TIMEOUT

ROWS = 5
SENT_BEFORE_STOP = 2


def interrupted_batch(data_home: Path, path: Path) -> tuple[str, set[str]]:
    """A batch of ``path`` through the window's sandbox profile that stopped after two rows,
    the first one's answer lost (UNKNOWN); returns its id and the request ids recorded."""
    with SandboxGateway() as gateway, open_history(data_home) as store:
        profile = Profile(
            id=SANDBOX_PROFILE_ID,
            name=SANDBOX_PROFILE_NAME,
            base_url=gateway.base_url,
            merchant_id=gateway.merchant_id,
            site_id=gateway.site_id,
            environment="sandbox",
        )
        table = read_table(path)
        batch = validate_batch(
            table, auto_mapping(table.headers), profile, history=store, file_name=path.name
        )
        gateway.set_fault(Fault.RESET, times=1)
        control = Control()

        def stop_after_two(_result: object, progress: object) -> None:
            if progress.done >= SENT_BEFORE_STOP:  # type: ignore[attr-defined]
                control.cancel()

        service = SendService(store, lambda _profile: gateway.salt)
        try:
            send_batch(batch, service, concurrency=1, control=control, on_row=stop_after_two)
        finally:
            service.close()
        recorded = {record.request_id for record in batch_records(store, batch.batch_id)}
    assert len(recorded) == SENT_BEFORE_STOP
    return batch.batch_id, recorded


def test_next_start_names_the_interrupted_batch_and_the_same_file_resumes_it(
    qtbot: QtBot, data_home: Path, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "salaries.csv", CARD_HEADERS, card_rows(ROWS))
    batch_id, recorded = interrupted_batch(data_home, path)

    window = build_main_window(
        ["--sandbox", "--data-dir", str(data_home), "--read-timeout", READ_TIMEOUT]
    )
    assert isinstance(window, MainWindow)
    qtbot.addWidget(window)
    window.show()
    try:
        qtbot.waitUntil(lambda: window.findChild(QMessageBox, NOTICE) is not None, timeout=20_000)
        notice = window.findChild(QMessageBox, NOTICE)
        assert notice is not None and notice.isVisible()
        text = notice.text()
        assert "salaries.csv" in text and batch_id in text
        assert f"{ROWS - SENT_BEFORE_STOP} of its {ROWS} rows were never sent" in text
        assert "1 row is in doubt" in text
        assert "Open the file again…" in [button.text() for button in notice.buttons()]
        assert "same file" in notice.informativeText()

        # Another file is refused: nothing opened, nothing sent.
        other = write_csv(tmp_path / "other.csv", CARD_HEADERS, card_rows(ROWS, start=50))
        from cactus_desk.batch.summary import interrupted_batches

        (summary,) = interrupted_batches(window.history)
        opened: list[BatchDialog] = []
        resume_from(window, summary, other, opened.append)
        qtbot.waitUntil(lambda: window.findChild(QMessageBox, MISMATCH) is not None)
        assert "not the file of batch" in window.findChild(QMessageBox, MISMATCH).text()  # type: ignore[union-attr]
        assert opened == []

        # The same file resumes the batch with its profile: only the rows never sent go.
        resume_from(window, summary, path, opened.append)
        qtbot.waitUntil(lambda: bool(opened), timeout=10_000)
        dialog = opened[0]
        qtbot.waitUntil(lambda: dialog.batch is not None and not dialog.checking(), timeout=20_000)
        assert dialog.batch is not None and dialog.batch.batch_id == batch_id
        assert dialog.profile is not None and dialog.profile.id == SANDBOX_PROFILE_ID
        send(dialog, qtbot)
        sandbox = window.sandbox
        assert sandbox is not None
        received = sandbox.request_ids_received
        assert len(received) == ROWS - SENT_BEFORE_STOP and set(received.values()) == {1}
        assert not set(received) & recorded  # the UNKNOWN row and the sent one not resent
        records = batch_records(window.history, batch_id)
        assert len(records) == ROWS
        assert [r.state for r in records].count(State.UNKNOWN) == 1
        assert interrupted_batches(window.history) == []
    finally:
        window.shutdown()
