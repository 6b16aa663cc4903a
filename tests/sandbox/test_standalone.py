"""``serve``: the sandbox on its own, until SIGINT or SIGTERM."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from cactus_desk.gateway.signature import sign, verify
from cactus_desk.sandbox import SandboxGateway
from cactus_desk.sandbox.standalone import serve

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = (
    "import sys\n"
    "from cactus_desk.sandbox.standalone import serve\n"
    "sys.exit(serve(0, 'shop-7', 55, 'printed-salt'))\n"
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_credentials_answers_and_exits_zero_on_signal(signum: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl+C"):
                break
        banner = "".join(lines)
        assert "merchant_id: shop-7" in banner
        assert "site_id:     55" in banner
        assert "salt:        printed-salt" in banner
        match = re.search(r"base URL:\s+(http://127\.0\.0\.1:\d+)", banner)
        assert match, banner
        body = {"merchant_id": "shop-7", "site_id": 55}
        answer = httpx.post(
            match.group(1) + "/api/balance/",
            json={**body, "signature": sign(body, "printed-salt")},
            timeout=5,
        ).json()
        assert verify(answer, "printed-salt")
        process.send_signal(signum)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "Sandbox gateway stopped." in out
    assert err == ""


def test_serve_reports_a_taken_port_and_returns_1() -> None:
    with SandboxGateway() as taken:
        out = io.StringIO()
        assert serve(taken.port, "sandbox", 101, None, out=out) == 1
    assert "could not start" in out.getvalue()
