"""``python -m benchmarks`` (``make bench``): every benchmark, a table, ``results.json``.

Each group runs in a child process of its own; the 1,000,000-record history is generated on
the first run and cached under ``benchmarks/data/`` (see ``generate.py``).
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

from benchmarks.common import run_group
from benchmarks.generate import history_file

RESULTS = Path(__file__).resolve().parent / "results.json"
GROUPS = (("startup",), ("history",), ("history", "load-all"), ("responsiveness",))


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


def main() -> None:
    started = time.monotonic()
    history_file()  # generated once, before any timing starts
    results: list[dict[str, object]] = []
    for group in GROUPS:
        print(f"Running {' '.join(group)} ...", flush=True)
        results.extend(run_group(*group))
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print()
    print(table(results))
    print()
    print(f"Measured on {machine()} in {time.monotonic() - started:.0f} s; wrote {RESULTS.name}")


if __name__ == "__main__":
    main()
