"""``cactus-desk payout send`` end to end: a profile added through the command line, its salt
in the test keyring, and a sandbox gateway answering over loopback HTTP."""

from __future__ import annotations

import io
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cactus_desk import cli
from cactus_desk.history import open_history
from cactus_desk.instance_lock import InstanceLock
from cactus_desk.logs import stop_logging
from cactus_desk.payout_command import (
    EXIT_CODES,
    EXIT_ERROR,
    EXIT_IN_DOUBT,
    EXIT_NOT_SENT,
    EXIT_REJECTED,
    EXIT_USAGE,
)
from cactus_desk.payouts.send import SendCode
from cactus_desk.payouts.states import State
from cactus_desk.profiles import ProfileStore
from cactus_desk.sandbox import SandboxGateway
from tests.memory_keyring import MemoryKeyring
from tests.safety.helpers import black_hole

CARD = "4242424242424242"
MASKED = "424242******4242"


class Terminal(io.StringIO):
    """Standard input that says it is a terminal, with the person's answers in it."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _close_the_log_file() -> Iterator[None]:
    yield
    stop_logging()


@pytest.fixture
def gateway() -> Iterator[SandboxGateway]:
    with SandboxGateway(balances={"RUB": 100_000_000, "IDR": 10_000_000}) as sandbox:
        yield sandbox


def cactus(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *argv: str,
    stdin: io.StringIO | None = None,
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", stdin if stdin is not None else io.StringIO(""))
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def add_profile(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    gateway: SandboxGateway,
    url: str | None = None,
    *,
    name: str = "Shop",
    environment: str = "sandbox",
    salt: str | None = None,
) -> None:
    code, _, err = cactus(
        monkeypatch,
        capsys,
        *("profile", "add", name, "--base-url", url or gateway.base_url),
        *("--merchant-id", gateway.merchant_id, "--site-id", str(gateway.site_id)),
        *("--environment", environment, "--salt-stdin"),
        stdin=io.StringIO((salt or gateway.salt) + "\n"),
    )
    assert code == 0, err


def send_args(*extra: str, profile: str = "Shop", amount: str = "1500.00") -> list[str]:
    return [
        *("payout", "send", "--profile", profile, "--currency", "RUB", "--method", "card"),
        *("--site-login", "alice", "--amount", amount),
        *("--field", f"card_number={CARD}", "--field", "card_holder=Ivan Petrov"),
        *extra,
    ]


def records(data_home: Path) -> list[tuple[str, State]]:
    with open_history(data_home) as store:
        ordered = sorted(store.iter_records(), key=lambda record: record.id)
    return [(record.request_id, record.state) for record in ordered]


def test_every_send_code_has_an_exit_status_and_only_accepted_is_zero() -> None:
    assert set(EXIT_CODES) == set(SendCode)
    assert [code for code, status in EXIT_CODES.items() if status == 0] == ["accepted"]


def test_a_sandbox_payout_is_sent_end_to_end_and_exits_zero(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    gateway: SandboxGateway,
    data_home: Path,
    memory_keyring: MemoryKeyring,
) -> None:
    add_profile(monkeypatch, capsys, gateway)
    code, out, err = cactus(monkeypatch, capsys, *send_args("--request-id", "po-cli-1", "--yes"))
    assert (code, err) == (0, "")
    assert "SANDBOX" in out
    assert "1 500.00 RUB = 150000 minor units (2 decimals)" in out
    assert "Bank card (card)" in out and "alice" in out and MASKED in out and "po-cli-1" in out
    assert CARD not in out and gateway.salt not in out  # the full card and salt never shown
    [invoice] = gateway.invoices
    assert f"Invoice ID:  {invoice['invoice_id']}" in out
    assert "Outcome:     accepted (history: Accepted)" in out
    assert records(data_home) == [("po-cli-1", State.ACCEPTED)]


def test_a_new_request_id_is_made_when_none_is_given(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    gateway: SandboxGateway,
    data_home: Path,
) -> None:
    add_profile(monkeypatch, capsys, gateway)
    code, out, _ = cactus(monkeypatch, capsys, *send_args("--yes"))
    assert code == 0
    [(request_id, state)] = records(data_home)
    assert request_id.startswith("cd-") and request_id in out and state is State.ACCEPTED


def test_an_invalid_field_is_named_and_nothing_is_recorded(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    gateway: SandboxGateway,
    data_home: Path,
) -> None:
    add_profile(monkeypatch, capsys, gateway)
    args = [
        *("payout", "send", "--profile", "Shop", "--currency", "RUB", "--method", "card"),
        *("--site-login", "ali;ce", "--amount", "-5", "--field", "card_number=1234", "--yes"),
    ]
    code, out, err = cactus(monkeypatch, capsys, *args)
    assert code == EXIT_USAGE and out == ""
    assert "--site-login: Remove the ';'" in err
    assert "--amount: " in err and "--field card_number: " in err
    unknown_field = [*send_args("--yes"), "--field", "iban=DE00"]
    code, _, err = cactus(monkeypatch, capsys, *unknown_field)
    assert code == EXIT_USAGE and "--field iban: card has no such field" in err
    code, _, err = cactus(monkeypatch, capsys, *send_args("--field", "nonsense", "--yes"))
    assert code == EXIT_USAGE and "NAME=VALUE" in err
    assert gateway.requests_received == 0 and records(data_home) == []


def test_an_unknown_profile_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    gateway: SandboxGateway,
    data_home: Path,
) -> None:
    add_profile(monkeypatch, capsys, gateway)
    code, _, err = cactus(monkeypatch, capsys, *send_args("--yes", profile="Nope"))
    assert code == EXIT_USAGE and "--profile: " in err and "Nope" in err
    assert gateway.requests_received == 0


def test_without_a_salt_nothing_leaves_and_the_exit_says_not_sent(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    gateway: SandboxGateway,
    data_home: Path,
    memory_keyring: MemoryKeyring,
) -> None:
    add_profile(monkeypatch, capsys, gateway)
    memory_keyring.passwords.clear()  # the salt is gone from this machine's keyring
    code, out, _ = cactus(monkeypatch, capsys, *send_args("--request-id", "po-nosalt", "--yes"))
    assert code == EXIT_NOT_SENT
    assert "not_sent" in out and "No site salt" in out
    assert records(data_home) == [("po-nosalt", State.NOT_SENT)]  # recorded before anything
    assert gateway.requests_received == 0


def test_a_gateway_refusal_exits_rejected(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    data_home: Path,
) -> None:
    with SandboxGateway(balances={"RUB": 100}) as poor:
        add_profile(monkeypatch, capsys, poor)
        code, out, _ = cactus(monkeypatch, capsys, *send_args("--request-id", "po-poor", "--yes"))
    assert code == EXIT_REJECTED
    assert "rejected" in out and "Nothing was paid" in out
    assert records(data_home) == [("po-poor", State.REJECTED)]


def test_an_unreachable_gateway_exits_not_sent(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    gateway: SandboxGateway,
    data_home: Path,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    add_profile(monkeypatch, capsys, gateway, f"http://127.0.0.1:{port}")
    code, out, _ = cactus(monkeypatch, capsys, *send_args("--request-id", "po-down", "--yes"))
    assert code == EXIT_NOT_SENT and "not_sent" in out
    assert records(data_home) == [("po-down", State.NOT_SENT)]


def test_a_lost_answer_exits_in_doubt(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    gateway: SandboxGateway,
    data_home: Path,
) -> None:
    with black_hole() as url:
        add_profile(monkeypatch, capsys, gateway, url)
        code, out, _ = cactus(monkeypatch, capsys, *send_args("--request-id", "po-lost", "--yes"))
    assert code == EXIT_IN_DOUBT and "Do not send it again" in out
    assert records(data_home) == [("po-lost", State.UNKNOWN)]


def test_a_request_id_already_used_is_not_sent_again(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    gateway: SandboxGateway,
    data_home: Path,
) -> None:
    add_profile(monkeypatch, capsys, gateway)
    assert cactus(monkeypatch, capsys, *send_args("--request-id", "po-twice", "--yes"))[0] == 0
    other = send_args("--request-id", "po-twice", "--yes", amount="10.00")
    code, out, _ = cactus(monkeypatch, capsys, *other)
    assert code == EXIT_NOT_SENT and "request_id_taken" in out
    assert gateway.requests_received == 1


def test_without_a_terminal_it_asks_for_yes_and_a_repeat_needs_it_too(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    gateway: SandboxGateway,
    data_home: Path,
) -> None:
    add_profile(monkeypatch, capsys, gateway)
    code, out, err = cactus(monkeypatch, capsys, *send_args("--request-id", "po-ask"))
    assert code == EXIT_USAGE and "--yes" in err and "nothing was sent" in err
    assert "po-ask" in out  # the summary was shown
    assert cactus(monkeypatch, capsys, *send_args("--request-id", "po-first", "--yes"))[0] == 0
    code, out, err = cactus(monkeypatch, capsys, *send_args("--request-id", "po-again"))
    assert code == EXIT_USAGE and "a repeat of a recent payout" in err
    assert "REPEAT" in out and "po-first" in out
    assert cactus(monkeypatch, capsys, *send_args("--request-id", "po-again", "--yes"))[0] == 0
    assert records(data_home) == [("po-first", State.ACCEPTED), ("po-again", State.ACCEPTED)]


def test_on_a_terminal_it_sends_only_after_yes(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    gateway: SandboxGateway,
    data_home: Path,
) -> None:
    add_profile(monkeypatch, capsys, gateway)
    no = Terminal("n\n")
    code, out, err = cactus(monkeypatch, capsys, *send_args("--request-id", "po-no"), stdin=no)
    assert code == EXIT_USAGE and "Send this payout? [y/N]" in out and "not confirmed" in err
    yes = Terminal("y\n")
    code, out, _ = cactus(monkeypatch, capsys, *send_args("--request-id", "po-yes"), stdin=yes)
    assert code == 0 and "accepted" in out
    again = Terminal("y\n")
    args = send_args("--request-id", "po-yes-2")
    code, out, _ = cactus(monkeypatch, capsys, *args, stdin=again)
    assert code == 0 and "repeats a payout of the last 24 hours" in out
    assert records(data_home) == [("po-yes", State.ACCEPTED), ("po-yes-2", State.ACCEPTED)]


def test_the_first_live_payout_in_undocumented_decimals_needs_the_minor_units_typed(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    gateway: SandboxGateway,
    data_home: Path,
) -> None:
    add_profile(monkeypatch, capsys, gateway, name="Live", environment="live")
    args = [
        *("payout", "send", "--profile", "Live", "--currency", "IDR", "--method", "card"),
        *("--site-login", "alice", "--amount", "15000.00", "--field", f"card_number={CARD}"),
    ]
    code, out, err = cactus(monkeypatch, capsys, *args, "--request-id", "po-l1", "--yes")
    assert code == EXIT_USAGE and "minor units confirmed" in err  # --yes is not enough
    assert "LIVE" in out and "1500000 minor units (2 decimals)" in out
    wrong = Terminal("15000\n")
    code, _, err = cactus(monkeypatch, capsys, *args, "--request-id", "po-l2", "--yes", stdin=wrong)
    assert code == EXIT_USAGE and "not confirmed" in err
    typed = Terminal("1500000\n")
    code, out, _ = cactus(monkeypatch, capsys, *args, "--request-id", "po-l3", "--yes", stdin=typed)
    assert code == 0, out
    assert ProfileStore(data_home).get("Live").units_confirmed == {"IDR": 2}
    # Confirmed once: the next one goes with --yes alone.
    code, _, _ = cactus(monkeypatch, capsys, *args, "--request-id", "po-l4", "--yes")
    assert code == 0
    assert [request_id for request_id, _ in records(data_home)] == ["po-l3", "po-l4"]


def test_it_does_not_send_while_the_window_holds_the_data_folder(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    gateway: SandboxGateway,
    data_home: Path,
) -> None:
    add_profile(monkeypatch, capsys, gateway)
    lock = InstanceLock(data_home)
    assert lock.acquire()
    try:
        code, _, err = cactus(monkeypatch, capsys, *send_args("--yes"))
    finally:
        lock.release()
    assert code == EXIT_ERROR and "from the window" in err
    assert gateway.requests_received == 0


def test_help_documents_the_exit_statuses(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cactus(monkeypatch, capsys, "payout", "send", "--help")
    assert code == 0
    for line in ("0  accepted", "2  invalid input", "3  rejected", "4  not sent", "5  in doubt"):
        assert line in out
