"""The history tests open stores the way the payouts tests do (one clock, one data dir)."""

from tests.payouts.conftest import store, store_factory

__all__ = ["store", "store_factory"]
