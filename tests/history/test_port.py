"""The SQLite adapter offers every port operation with the port's parameters."""

from __future__ import annotations

import inspect

import pytest

from cactus_desk.history import port
from cactus_desk.history.sqlite.store import SqliteHistoryStore

PROTOCOLS = (
    port.PayoutLedger,
    port.StatusLedger,
    port.HistoryReader,
    port.HistoryMaintenance,
    port.HistoryStore,
)


def _operations(protocol: type) -> list[str]:
    return sorted(
        name
        for name in vars(protocol)
        if not name.startswith("_") or name in ("__enter__", "__exit__")
        if callable(vars(protocol)[name]) or isinstance(vars(protocol)[name], property)
    )


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda protocol: protocol.__name__)
def test_the_adapter_has_each_operation_with_the_ports_parameters(protocol: type) -> None:
    operations = _operations(protocol)
    assert operations, protocol
    for name in operations:
        wanted = vars(protocol)[name]
        have = inspect.getattr_static(SqliteHistoryStore, name)
        if isinstance(wanted, property):
            assert isinstance(have, property), name
            continue
        expected = [
            (parameter.name, parameter.kind)
            for parameter in inspect.signature(wanted).parameters.values()
        ]
        actual = [
            (parameter.name, parameter.kind)
            for parameter in inspect.signature(have).parameters.values()
        ]
        assert actual == expected, name


def test_the_port_names_no_backend() -> None:
    source = inspect.getsource(port)
    assert "sqlite" not in source.replace("history.sqlite.store.SqliteHistoryStore", "")
