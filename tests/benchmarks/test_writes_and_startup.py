"""The write, backup and start-up benchmarks measure what they say, on tiny inputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks.app_api import HistoryStore
from benchmarks.common import ROOT, child_env
from benchmarks.startup import _profile_dir
from benchmarks.writes import backup_results, write_results
from tests.benchmarks.conftest import ROWS


def test_the_write_figures_time_create_attempt_after_mixed_writes(tiny_history: Path) -> None:
    p99, worst = write_results(tiny_history, "1m", warm_writes=30, timed=20)
    assert (p99.name, worst.name) == ("history_write_p99_1m", "history_write_max_1m")
    assert 0 < p99.value <= worst.value
    with HistoryStore(tiny_history) as store:
        assert store.count() == ROWS  # the writes went to a copy


def test_the_backup_ratio_counts_every_backup_the_app_keeps(tiny_history: Path) -> None:
    (ratio,) = backup_results(tiny_history)
    assert ratio.name == "backup_disk_ratio"
    # Seven full copies are kept today: seven times the history, give or take the WAL.
    assert ratio.value > 1


def _probe(*args: str) -> dict[str, str]:
    env = child_env()
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.startup_probe", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    pairs = (line.split(" ", 1) for line in completed.stdout.splitlines())
    return {pair[0]: pair[1] for pair in pairs if len(pair) == 2}


def test_the_start_up_probe_reports_the_usable_window_after_its_first_paint(
    tmp_path: Path,
) -> None:
    app = _probe("app", "--data-dir", str(_profile_dir(tmp_path)))
    bare = _probe("bare")
    assert "NOT_READY" not in app
    assert int(app["READY"]) > int(app["PAINT"])  # the form comes after the empty shell
    assert int(bare["READY"]) >= int(bare["PAINT"])
    assert float(app["RSS"]) > 0
