"""Keeping the cycle collector's full passes short in a long-running window.

Start-up and its deferred imports (the send path, the gateway's models, the history) leave
tens of thousands of objects that live as long as the process: modules, classes, functions,
their descriptors. Python's full collection walks every one of them each time, and in the
window that walk ran on the GUI thread for 80 to 130 ms, its longest stall under load.
``settle_heap`` moves everything alive once the start is over to the collector's permanent
generation (``gc.freeze``), so later full passes walk only what was made since.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)


def settle_heap() -> int:
    """Freeze every object alive now out of future collections; return how many are frozen.

    Once per process, when the start is over: objects made later are collected as before,
    but cycles among the frozen ones never are, so it is not for after each action."""
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("start-up settled: %d objects left out of the collector's passes", frozen)
    return frozen
