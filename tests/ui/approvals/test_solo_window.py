"""A desk on this computer's own history: no Approvals tab, and sends are never held."""

from __future__ import annotations

from cactus_desk.ui.main_window import MainWindow
from tests.ui.conftest import PayoutDriver


def test_the_solo_window_has_no_approvals_tab_and_sends_as_before(
    window: MainWindow, driver: PayoutDriver
) -> None:
    titles = [window.tabs.tabText(index) for index in range(window.tabs.count())]
    assert not any(title.startswith("Approvals") for title in titles), titles
    assert window.approvals_tab is None
    request_id = driver.send(amount="150000.00")  # far above any team threshold
    assert window.form.banner.kind() == "accepted", window.form.banner.text()
    assert driver.record(request_id).request_id == request_id
    assert window.approvals_tab is None
