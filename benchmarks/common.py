"""What every benchmark shares: results, medians, memory readings and the child protocol.

Each group of benchmarks runs in a child process of its own (``python -m benchmarks.<group>``)
so that its memory, imports and Qt state do not leak into the next group; the child prints
one line ``RESULTS <json list>`` that the parent collects.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

# BENCH_QUICK=1 (``python -m benchmarks --quick``): small histories and few runs, to check
# that every benchmark works end to end in a minute; its figures mean nothing.
QUICK = os.environ.get("BENCH_QUICK") == "1"
RUNS = 2 if QUICK else 5
MARKER = "RESULTS "
ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data"


@dataclass(frozen=True)
class Result:
    """One figure of the table; ``ratio`` is ``value / baseline`` where a baseline applies."""

    name: str
    value: float
    unit: str
    baseline: float | None
    goal: str
    ratio: float | None = None

    def __post_init__(self) -> None:
        if self.ratio is None and self.baseline:
            object.__setattr__(self, "ratio", round(self.value / self.baseline, 2))

    def as_json(self) -> dict[str, object]:
        """The fields ``results.json`` holds, in a fixed order."""
        data = asdict(self)
        return {key: data[key] for key in ("name", "value", "unit", "baseline", "ratio", "goal")}


def median(samples: Sequence[float], digits: int = 1) -> float:
    """The median of at least one sample, rounded for the table."""
    return round(statistics.median(samples), digits)


def time_ms(action: Callable[[], object], runs: int = RUNS, before: Callable[[], object] = bool):
    """Milliseconds per run of ``action`` (``before`` runs untimed ahead of each)."""
    samples = []
    for _ in range(runs):
        before()
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _status_kb(field: str, pid: int | str = "self") -> float | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1])
    return None


def rss_mb(pid: int | str = "self") -> float:
    """The resident memory of a process now, in MB (Linux /proc; else this process's peak)."""
    kb = _status_kb("VmRSS", pid)
    return round((kb if kb is not None else _max_rss_kb()) / 1024, 1)


def peak_rss_mb() -> float:
    """The highest resident memory of this process so far, in MB."""
    kb = _status_kb("VmHWM")
    return round((kb if kb is not None else _max_rss_kb()) / 1024, 1)


def _max_rss_kb() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return usage / 1024 if sys.platform == "darwin" else usage  # bytes on macOS


def emit(results: Sequence[Result]) -> None:
    """Hand the results to the parent process."""
    print(MARKER + json.dumps([result.as_json() for result in results]), flush=True)


def child_env() -> dict[str, str]:
    """The environment of a benchmark child: headless Qt and the source tree importable."""
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    # An installed app runs from bytecode; a machine that turns bytecode caching off would time
    # the compiling of every module instead. The cache lives beside the data, not in the tree.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(DATA / "pycache")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def flush_writes() -> None:
    """Write every dirty page to disk now, so no setup's writeback runs under a timing.

    Generating a history or copying one leaves gigabytes in the page cache that the kernel
    writes back over the next minute, on the cores and the disk the timed work needs.
    """
    if hasattr(os, "sync"):
        os.sync()


def run_group(module: str, *args: str, timeout: float = 600) -> list[dict[str, object]]:
    """Run ``benchmarks.<module>`` in a child process and return its results."""
    flush_writes()  # what an earlier group wrote is not this one's to pay for
    completed = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", *args],
        cwd=ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith(MARKER)]
    for line in completed.stdout.splitlines():
        if not line.startswith(MARKER):
            print(line, flush=True)
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"benchmarks.{module} failed with exit code {completed.returncode}")
    return json.loads(lines[-1][len(MARKER) :])


def runqueue_clock() -> Callable[[], float]:
    """A clock of the calling thread's seconds spent runnable but waiting for a CPU.

    Linux's per-thread schedstat; elsewhere (or without it) a clock that stays at 0.
    """
    try:
        fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
    except OSError:
        return lambda: 0.0
    return lambda: int(os.pread(fd, 64, 0).split()[1]) / 1e9
