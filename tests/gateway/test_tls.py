"""Verifying TLS contexts are built once per bundle and shared by every client."""

from __future__ import annotations

import os
from pathlib import Path

import certifi
import pytest

from cactus_desk.gateway import tls
from cactus_desk.gateway.client import CactusClient

BASE = "https://gateway.example.com"


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """An empty cache, and a list that grows by one for each context actually built."""
    monkeypatch.setattr(tls, "_contexts", {})
    built: list[str] = []
    real = tls._build

    def build(bundle: Path | None) -> object:
        built.append(str(bundle) if bundle else "certifi")
        return real(bundle)

    monkeypatch.setattr(tls, "_build", build)
    return built


def test_clients_share_one_context_built_once(builds: list[str]) -> None:
    clients = [CactusClient(BASE) for _ in range(5)]
    try:
        assert builds == ["certifi"]
        assert tls.tls_context() is tls.tls_context()
    finally:
        for client in clients:
            client.close()


def test_a_bundle_is_read_once_until_it_changes(builds: list[str], tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    pem = Path(certifi.where()).read_text()
    bundle.write_text(pem)
    first = tls.tls_context(bundle)
    CactusClient(BASE, ca_bundle=bundle).close()
    assert tls.tls_context(str(bundle)) is first
    assert len(builds) == 1

    # An edited bundle (another size, another time) is read again.
    bundle.write_text(pem.split("-----END CERTIFICATE-----", 1)[0] + "-----END CERTIFICATE-----\n")
    os.utime(bundle, ns=(1, 1))
    again = tls.tls_context(bundle)
    assert again is not first
    assert len(builds) == 2
    assert again.get_ca_certs() != first.get_ca_certs()


def test_a_missing_bundle_and_a_directory_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        tls.tls_context(tmp_path / "missing.pem")
    with pytest.raises(ValueError, match="does not exist"):
        tls.tls_context(tmp_path)
