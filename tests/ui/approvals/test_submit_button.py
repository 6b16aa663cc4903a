"""The real window's payout form: above a team policy's threshold "Send…" reads "Submit for
approval…"; with no policies (solo mode) it stays "Send…"."""

from __future__ import annotations

from tests.ui.conftest import PayoutDriver


def test_the_send_button_reads_submit_for_approval_at_the_threshold(driver: PayoutDriver) -> None:
    form = driver.form
    driver.fill("sbp", "RUB", amount="999.99")
    assert form.send_button.text() == "Send…"
    profile = form.current_profile()
    assert profile is not None
    form.set_approval_thresholds({(profile.id, "RUB"): 100_000})
    assert form.send_button.text() == "Send…" and not form.needs_approval()
    form.amount_edit.setText("1000.00")
    assert form.send_button.text() == "Submit for approval…" and form.needs_approval()
    assert "submitted for approval" in form.hint_label.text()
    form.set_approval_thresholds({(profile.id, "USD"): 1})
    assert form.send_button.text() == "Send…"
