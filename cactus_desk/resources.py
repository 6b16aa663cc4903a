"""Locate the data files in ``resources/`` from a source tree, a wheel or a bundle."""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

_PACKAGE_DIR = Path(__file__).resolve().parent


@cache
def resources_dir() -> Path:
    """Return the folder that holds the catalog, currencies and icons."""
    candidates = [
        _PACKAGE_DIR / "resources",  # wheel (force-included)
        _PACKAGE_DIR.parent / "resources",  # source tree or editable install
    ]
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        candidates.insert(0, Path(bundle) / "cactus_desk" / "resources")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("Cactus Desk's resources folder is missing from this installation")


def resource_path(name: str) -> Path:
    """Return the path of one file in ``resources/``."""
    return resources_dir() / name


def load_json(name: str) -> Any:
    """Parse one JSON file from ``resources/``."""
    with resource_path(name).open(encoding="utf-8") as handle:
        return json.load(handle)
