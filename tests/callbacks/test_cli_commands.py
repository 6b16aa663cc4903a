"""``cactus-desk callbacks import`` and ``cactus-desk history reconcile``, run in-process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cactus_desk import cli
from cactus_desk.callbacks.events import EventSource
from cactus_desk.history import open_history
from cactus_desk.logs import stop_logging
from cactus_desk.payouts.states import State
from cactus_desk.profiles import Profile, ProfileStore
from cactus_desk.secrets import SecretStore
from tests.callbacks.helpers import MERCHANT, SALT, SITE, accepted_record, callback, unknown_record


@pytest.fixture(autouse=True)
def _close_the_log_file() -> Iterator[None]:
    yield
    stop_logging()


@pytest.fixture
def profile(data_home: Path) -> Profile:
    added = ProfileStore(data_home).add(
        Profile(name="Shop", base_url="https://gw.example", merchant_id=MERCHANT, site_id=SITE)
    )
    SecretStore().set_salt(added.id, SALT)
    return added


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_import_prints_the_report_and_fails_when_a_line_is_rejected(
    data_home: Path, profile: Profile, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_history(data_home) as store:
        record_id = accepted_record(store)
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps(callback(4)) + "\n", encoding="utf-8")
    code, out, _ = run(capsys, "callbacks", "import", str(good), "--profile", "Shop")
    assert code == 0 and "1 applied" in out

    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(json.dumps(callback(5, salt="x")) + "\n", encoding="utf-8")
    code, out, _ = run(capsys, "callbacks", "import", str(mixed), "--profile", "Shop")
    assert code == 1
    assert "line 1 (request_id po-0001): the signature does not match" in out
    with open_history(data_home) as store:
        assert store.get(record_id).gateway_status == 4
    assert SALT not in out


def test_import_errors_are_one_line(
    data_home: Path, profile: Profile, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys, "callbacks", "import", str(tmp_path / "no.jsonl"), "--profile", "Shop"
    )
    assert code == 1 and "cannot be read" in err
    code, _, err = run(capsys, "callbacks", "import", "x.jsonl", "--profile", "Other")
    assert code == 2 and err.startswith("cactus-desk: error: --profile:")


def test_reconcile_sets_the_final_state_by_hand(
    data_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_home.mkdir(parents=True)
    with open_history(data_home) as store:
        record_id = unknown_record(store)
    code, out, _ = run(
        capsys,
        "history",
        "reconcile",
        str(record_id),
        "--status",
        "success",
        "--note",
        "Cabinet shows it paid",
        "--invoice-id",
        "9001",
    )
    assert code == 0 and "Success (4)" in out
    with open_history(data_home) as store:
        record = store.get(record_id)
        assert (record.state, record.status_source, record.invoice_id) == (
            State.SETTLED,
            "manual",
            "9001",
        )
        (event,) = store.events_for(record_id)
        assert event.source is EventSource.MANUAL and event.who

    code, _, err = run(
        capsys, "history", "reconcile", str(record_id), "--status", "5", "--note", "x"
    )
    assert code == 2 and "already final" in err
    code, _, err = run(
        capsys, "history", "reconcile", str(record_id), "--status", "4", "--note", " "
    )
    assert code == 2 and "--note:" in err
