"""Cactus Desk: a desktop payout console for the Cactus payment gateway."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cactus-desk")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

APP_NAME = "Cactus Desk"
ORG_NAME = "Cactus Desk"
