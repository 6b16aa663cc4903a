"""Cactus Desk: a desktop payout console for the Cactus payment gateway."""

from __future__ import annotations

APP_NAME = "Cactus Desk"
ORG_NAME = "Cactus Desk"


def __getattr__(name: str) -> str:
    # The version is looked up on first use: importlib.metadata costs tens of milliseconds
    # that the window's first paint does not need.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("cactus-desk")
        except PackageNotFoundError:  # a source tree that was never installed
            value = "0.0.0"
        globals()["__version__"] = value
        return value
    raise AttributeError(f"module 'cactus_desk' has no attribute {name!r}")
