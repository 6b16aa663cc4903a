"""Start-up: process start to the main window's first paint and to the window usable.

``startup`` stops at the first paint of the main window (an empty shell, the form still to
come); ``startup_ready`` stops when the window is usable: start-up finished, the form built
with a profile chosen, every visible widget painted (``startup_probe`` defines it exactly).
Both are against the first paint of a bare PySide6 ``QMainWindow``, measured the same way.

Both programs run as subprocesses through the same probe (``benchmarks.startup_probe``): the
parent reads the monotonic clock just before ``Popen``; the child prints the clock when the
main window's first paint has finished, and its resident memory a second later (so work
deferred past the first paint is counted), then quits.

The app is started the normal way, ``cactus-desk --data-dir DIR`` without ``--sandbox``, on a
data folder holding one profile (what a day at the desk opens); the sandbox start is not part
of it. The keyring is the in-memory one, so no desktop secret service is woken.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import QUICK, ROOT, RUNS, Result, child_env, emit, median

# A start takes a fraction of a second and varies with the machine's mood: more runs, a
# steadier median.
START_RUNS = RUNS if QUICK else max(RUNS, 11)


def _profile_dir(parent: Path) -> Path:
    from cactus_desk.profiles import Profile, ProfileStore

    data = parent / "desk"
    data.mkdir(mode=0o700)
    ProfileStore(data).add(
        Profile(
            name="Main shop",
            base_url="https://gateway.example.com",
            merchant_id="m_cactus_main",
            site_id=101,
        )
    )
    return data


def _start(args: list[str]) -> tuple[float, float, float]:
    """(ms to first paint, MB resident a second later, ms to usable) for one start."""
    env = child_env()
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
    command = [sys.executable, "-m", "benchmarks.startup_probe", *args]
    started = time.monotonic_ns()
    completed = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    pairs = (line.split(" ", 1) for line in completed.stdout.splitlines())
    values = {pair[0]: pair[1] for pair in pairs if pair[0] in ("PAINT", "RSS", "READY")}
    if "PAINT" not in values or "READY" not in values:
        raise RuntimeError(
            f"the probe did not get ready: {completed.stdout.strip()[-400:]} "
            f"{completed.stderr.strip()[-400:]}"
        )
    return (
        (int(values["PAINT"]) - started) / 1e6,
        float(values["RSS"]),
        (int(values["READY"]) - started) / 1e6,
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = _profile_dir(Path(tmp))
        _start(["bare"])  # untimed: warms the disk cache and writes the bytecode cache
        _start(["app", "--data-dir", str(data)])
        bare, app, rss, ready = [], [], [], []
        for _ in range(START_RUNS):  # interleaved, so a slow moment hits both alike
            bare.append(_start(["bare"])[0])
            paint_ms, rss_mb, ready_ms = _start(["app", "--data-dir", str(data)])
            app.append(paint_ms)
            rss.append(rss_mb)
            ready.append(ready_ms)
    emit(
        [
            Result("startup", median(app), "ms", median(bare), "ratio ≤ 1.3"),
            Result("rss_after_start", median(rss), "MB", None, "≤ 150 MB"),
            Result("startup_ready", median(ready), "ms", median(bare), "ratio ≤ 2.0"),
        ]
    )


if __name__ == "__main__":
    main()
