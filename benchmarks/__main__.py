"""``python -m benchmarks`` (``make bench``): every benchmark, a table, ``results.json``.

Each group runs in a child process of its own; the 1,000,000- and 5,000,000-record histories
are generated on the first run and cached under ``benchmarks/data/`` (see ``generate.py``), as
is the PostgreSQL cluster holding the 10,000,000-payout team history (``pg_data.py``); that
group is skipped, saying so, only when the PostgreSQL server binaries are not installed.

``--quick`` runs every group end to end on histories of a few thousand records with two runs
each (a check that the benchmarks work, in a minute or two); it writes its meaningless
figures to ``benchmarks/data/results-quick.json``, never to ``results.json``.

``--skip GROUP`` (repeatable) leaves a group out, saying so: e.g. ``--skip pg_history`` on a
machine where the 10M team history is not built yet (its first build takes about an hour).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

from benchmarks.common import DATA, run_group
from benchmarks.generate import DEFAULT_ROWS, LARGE_ROWS, history_file

RESULTS = Path(__file__).resolve().parent / "results.json"
QUICK_RESULTS = DATA / "results-quick.json"
GROUPS = (
    ("startup",),
    ("history", "1m"),
    ("history", "load-all"),
    ("responsiveness",),
    ("history", "5m"),
    ("sweep",),
    ("writes",),
    ("pg_live",),
    ("pg_history",),
    ("batch",),
)
# --quick: the sizes stand in for 1M and 5M.
QUICK_ROWS = {DEFAULT_ROWS: 2000, LARGE_ROWS: 3000}
PG_QUICK_ROWS = 3000


def _postgres_installed() -> bool:
    """Whether the PostgreSQL group can run; prints why it is skipped when it cannot."""
    from benchmarks.pg_data import PostgresMissingError, find_bindir

    try:
        find_bindir()
    except PostgresMissingError as exc:
        print(f"Skipping pg_history (the 10M team history on PostgreSQL): {exc}", flush=True)
        return False
    return True


def _cell(value: object) -> str:
    return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def table(results: list[dict[str, object]]) -> str:
    """The results as a Markdown table."""
    header = ("Benchmark", "Value", "Unit", "Baseline", "Ratio", "Goal")
    rows = [
        tuple(_cell(item[key]) for key in ("name", "value", "unit", "baseline", "ratio", "goal"))
        for item in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |"
        for row in [header, *rows]
    ]
    lines.insert(1, "|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return "\n".join(lines)


def machine() -> str:
    """The CPU model and core count, as ``lscpu`` reports them (Linux), else the platform."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.platform()
    models = [
        line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")
    ]
    return f"{models[0] if models else platform.processor()}, {len(models)} cores"


def skipped_groups(argv: list[str]) -> set[str]:
    """The group names given with ``--skip NAME`` (or ``--skip=NAME``)."""
    names: set[str] = set()
    for index, arg in enumerate(argv):
        if arg == "--skip" and index + 1 < len(argv):
            names.add(argv[index + 1])
        elif arg.startswith("--skip="):
            names.add(arg.split("=", 1)[1])
    unknown = names - {group[0] for group in GROUPS}
    if unknown:
        raise SystemExit(f"--skip: no benchmark group named {', '.join(sorted(unknown))}")
    return names


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    skip = skipped_groups(argv)
    started = time.monotonic()
    if quick:
        os.environ["BENCH_QUICK"] = "1"  # the children read it (benchmarks.common.QUICK)
    for rows in (DEFAULT_ROWS, LARGE_ROWS):  # generated once, before any timing starts
        history_file(QUICK_ROWS[rows] if quick else rows)
    results: list[dict[str, object]] = []
    for group in GROUPS:
        if group[0] in skip:
            print(f"Skipping {' '.join(group)} (--skip)", flush=True)
            continue
        if group == ("pg_history",) and not _postgres_installed():
            continue
        print(f"Running {' '.join(group)} ...", flush=True)
        args = list(group)
        if quick and group != ("startup",):
            rows = LARGE_ROWS if group in (("history", "5m"), ("sweep",)) else DEFAULT_ROWS
            rows = PG_QUICK_ROWS if group == ("pg_history",) else QUICK_ROWS[rows]
            args += ["--rows", str(rows)]
        results.extend(run_group(*args, timeout=7200))
    target = QUICK_RESULTS if quick else RESULTS
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print()
    print(table(results))
    print()
    print(f"Measured on {machine()} in {time.monotonic() - started:.0f} s; wrote {target.name}")


if __name__ == "__main__":
    main(sys.argv[1:])
