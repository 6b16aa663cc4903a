"""Running ``cactus-desk`` in-process for the batch tests."""

from __future__ import annotations

import io
import sys

import pytest

from cactus_desk import cli
from cactus_desk.sandbox import SandboxGateway


def cactus(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *argv: str,
    stdin: str = "",
) -> tuple[int, str, str]:
    """Run the command line; return its exit status, stdout and stderr."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def add_profile(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    gateway: SandboxGateway,
    *,
    name: str = "Shop",
) -> None:
    """Add a sandbox profile for ``gateway`` with its salt in the (test) keyring."""
    code, _, err = cactus(
        monkeypatch,
        capsys,
        *("profile", "add", name, "--base-url", gateway.base_url),
        *("--merchant-id", gateway.merchant_id, "--site-id", str(gateway.site_id)),
        *("--environment", "sandbox", "--salt-stdin"),
        stdin=gateway.salt + "\n",
    )
    assert code == 0, err
