"""What support needs: a log file that names each payout's request_id, and where it is."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cactus_desk import cli
from cactus_desk.crash import format_for_log
from cactus_desk.gateway.client import CactusClient
from cactus_desk.history import open_history
from cactus_desk.logs import register_secret, setup_logging, stop_logging
from cactus_desk.payouts.recovery import recover_interrupted
from cactus_desk.payouts.submit import submit_payout
from cactus_desk.sandbox import Fault, SandboxGateway
from tests.safety.helpers import CARD, MERCHANT, SALT, SITE, attempt, card_request, payout

LINE = re.compile(r"^\S+ \S+ (?P<level>[A-Z]+) (?P<logger>[\w.]+): (?P<message>.*)$")


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    path = setup_logging(tmp_path / "logs")
    yield path
    stop_logging()


def _lines(path: Path, prefix: str) -> list[str]:
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = LINE.match(line)
        if match and match["logger"].startswith(prefix):
            found.append(match["message"])
    return found


def test_every_line_of_a_send_names_its_request_id(log_file: Path, data_home: Path) -> None:
    with (
        SandboxGateway(merchant_id=MERCHANT, site_id=SITE, salt=SALT) as gateway,
        open_history(data_home) as store,
        CactusClient(gateway.base_url) as client,
    ):
        for request_id, fault in (("po-log-ok", None), ("po-log-500", Fault.HTTP_500_HTML)):
            if fault is not None:
                gateway.set_fault(fault, times=1)
            request = card_request(request_id)
            submit_payout(store, client, lambda: SALT, payout(gateway.base_url, request))
        stuck = card_request("po-log-stuck")
        store.create_attempt(attempt(gateway.base_url, stuck))
        recover_interrupted(store)

    for prefix in ("cactus_desk.payouts", "cactus_desk.gateway"):
        messages = _lines(log_file, prefix)
        assert messages, prefix
        for message in messages:
            assert re.search(r"\bpo-log-(ok|500|stuck)\b", message), message
    text = log_file.read_text(encoding="utf-8")
    for request_id in ("po-log-ok", "po-log-500"):
        assert f"payout {request_id}: sending" in text
    assert "accepted it as invoice" in text and "HTTP 500" in text
    assert "po-log-stuck: interrupted attempt" in text
    assert SALT not in text and CARD not in text


def test_log_dir_prints_where_the_log_is(
    data_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli.main(["--log-dir"]) == 0
    assert capsys.readouterr().out.strip() == str(data_home / "logs")
    monkeypatch.delenv("CACTUS_DESK_HOME")
    assert cli.main(["--log-dir"]) == 0
    shown = Path(capsys.readouterr().out.strip())
    assert shown.name == "log" and "cactus-desk" in shown.parts  # the platform's log folder


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text")


def test_a_crash_report_keeps_the_trace_and_masks_secrets() -> None:
    register_secret(SALT)
    try:
        try:
            raise KeyError(f"salt={SALT}")
        except KeyError as inner:
            raise ValueError(f"card {CARD} failed") from inner
    except ValueError:
        report = format_for_log(sys.exc_info())
    assert "Traceback" in report and "ValueError: card 411111******1111 failed" in report
    assert "KeyError" in report and "direct cause" in report
    assert "test_a_crash_report_keeps_the_trace_and_masks_secrets" in report
    assert SALT not in report and CARD not in report

    assert "_Unprintable" in format_for_log(_Unprintable())
    assert format_for_log((None, None, None)) == "No exception information was available."
