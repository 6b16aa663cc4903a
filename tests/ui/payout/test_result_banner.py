"""The result banner: each kind in its colours, its style applied only when the kind changes."""

from __future__ import annotations

import pytest
from pytestqt.qtbot import QtBot

from cactus_desk.ui import style
from cactus_desk.ui.payout.result_banner import ResultBanner


def test_each_result_shows_in_its_own_colours(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    banner = ResultBanner()
    qtbot.addWidget(banner)
    applied: list[str] = []
    set_style = banner.setStyleSheet

    def counted(sheet: str) -> None:
        applied.append(sheet)
        set_style(sheet)

    monkeypatch.setattr(banner, "setStyleSheet", counted)

    banner.show_error("The amount is too large.")
    assert banner.title() == "Not sent:" and style.REJECTED_FG in banner.styleSheet()
    # Results come after every payout; the same colours are not applied again (it is slow).
    banner.show_error("The amount is too small.")
    assert banner.text() == "The amount is too small." and len(applied) == 1
    banner.show_warning("It may have left.")
    assert style.UNKNOWN_FG in banner.styleSheet() and len(applied) == 2
    banner.clear()
    banner.show_warning("Still in doubt.")
    assert style.UNKNOWN_FG in banner.styleSheet() and banner.kind() == "warning"
    banner.show_error("Refused again.")
    assert style.REJECTED_FG in banner.styleSheet() and style.UNKNOWN_FG not in banner.styleSheet()
    assert len(applied) == 3
