"""Which column holds what: wire names matched automatically, a person's mapping for other
headers, remembered per set of headers in the data folder."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from cactus_desk.catalog import load_catalog

BASE_COLUMNS = ("site_login", "amount", "currency", "method")
OPTIONAL_COLUMNS = ("request_id",)
MAPPINGS_FILE = "batch-mappings.json"
_SPACES = re.compile(r"[\s_\-]+")


def known_columns() -> tuple[str, ...]:
    """Every column name a batch file may have: the base columns and every field's wire name."""
    names: list[str] = [*BASE_COLUMNS, *OPTIONAL_COLUMNS]
    for method in load_catalog().methods:
        for spec in method.fields:
            if spec.wire not in names:
                names.append(spec.wire)
    return tuple(names)


def _key(text: str) -> str:
    return _SPACES.sub("_", text.strip().lower())


def auto_mapping(headers: Iterable[str]) -> dict[int, str]:
    """Column index -> wire name for headers that are wire names (case, spaces and
    underscores aside)."""
    by_key = {_key(name): name for name in known_columns()}
    mapping: dict[int, str] = {}
    taken: set[str] = set()
    for index, header in enumerate(headers):
        wire = by_key.get(_key(header))
        if wire is not None and wire not in taken:
            mapping[index] = wire
            taken.add(wire)
    return mapping


def missing_columns(mapping: Mapping[int, str]) -> list[str]:
    """The base columns no header maps to."""
    present = set(mapping.values())
    return [name for name in BASE_COLUMNS if name not in present]


def headers_key(headers: Iterable[str]) -> str:
    """A stable key for a set of headers (order and case aside)."""
    joined = "\n".join(sorted(_key(header) for header in headers))
    return hashlib.sha256(joined.encode()).hexdigest()[:24]


class MappingMemory:
    """Mappings a person chose, by header set, in ``batch-mappings.json`` (mode 0600)."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / MAPPINGS_FILE

    def _all(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def recall(self, headers: tuple[str, ...]) -> dict[int, str] | None:
        """The remembered mapping for these headers (by header text), or None."""
        saved = self._all().get(headers_key(headers))
        if not isinstance(saved, dict):
            return None
        known = set(known_columns())
        mapping = {
            index: wire
            for index, header in enumerate(headers)
            if isinstance(wire := saved.get(header), str) and wire in known
        }
        return mapping or None

    def remember(self, headers: tuple[str, ...], mapping: Mapping[int, str]) -> None:
        """Keep ``mapping`` for files with these headers."""
        data = self._all()
        data[headers_key(headers)] = {headers[index]: wire for index, wire in mapping.items()}
        self._path.parent.mkdir(parents=True, exist_ok=True)
        temp = self._path.with_suffix(".tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, ensure_ascii=False, indent=1)
        os.replace(temp, self._path)


def mapping_for(headers: tuple[str, ...], memory: MappingMemory | None = None) -> dict[int, str]:
    """The remembered mapping for these headers, else the automatic one."""
    if memory is not None:
        recalled = memory.recall(headers)
        if recalled is not None:
            return recalled
    return auto_mapping(headers)
