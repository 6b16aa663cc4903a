"""Run plain callables off the GUI thread and hand their results back to it.

One small abstraction for every background job (sending, balance, connection tests):
a ``QRunnable`` on a ``QThreadPool`` calls the function on a worker thread, and a
``QObject`` of signals, living on the GUI thread, receives the result through a queued
connection. A newer job on the same *channel* makes older results stale, so a slow answer
for a profile the person has already left is dropped instead of shown.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from PySide6.QtCore import (
    QDeadlineTimer,
    QEventLoop,
    QObject,
    QRunnable,
    QThreadPool,
    QTimer,
    Signal,
)

log = logging.getLogger(__name__)

SuccessHandler = Callable[[Any], None]
ErrorHandler = Callable[[BaseException], None]


class _Relay(QObject):
    """Lives on the GUI thread; the worker emits into it, Qt queues the call."""

    finished = Signal(int, bool, object)


#: How much lower than the GUI thread a reader pool's threads are scheduled (Linux nice).
#: A little, not far: a reader preempted by other processes while it holds the interpreter
#: lock makes the GUI thread wait until it runs again. Under the responsiveness benchmark's
#: load (receiver and callback sender on the same two cores) the longest stall was 45-59 ms
#: at 10, 39-49 ms at 0 and 32-33 ms at 4.
READER_NICE = 4
_lowered = threading.local()


def _yield_cpu_to_gui() -> None:
    """Schedule this pool thread below the GUI thread, once per thread (Linux only).

    On a busy or single core a reader sharing the CPU with the GUI thread would otherwise
    get an equal share and delay its paints; niced, it runs whenever the GUI thread waits.
    """
    if sys.platform != "linux" or getattr(_lowered, "done", False):
        return
    _lowered.done = True
    with contextlib.suppress(OSError):  # a thread's own nice on Linux (its native id)
        # From the main thread's nice, not this one's: a thread started by a lowered
        # thread inherits its nice value.
        main = os.getpriority(os.PRIO_PROCESS, os.getpid())
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), min(19, main + READER_NICE))


class _Job(QRunnable):
    def __init__(
        self, token: int, fn: Callable[[], Any], relay: _Relay, *, low_priority: bool = False
    ) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._token = token
        self._fn = fn
        self._relay = relay
        self._low_priority = low_priority

    def run(self) -> None:  # worker thread
        if self._low_priority:
            _yield_cpu_to_gui()
        try:
            result: Any = self._fn()
            ok = True
        except BaseException as exc:  # delivered to the GUI thread's error handler
            result, ok = exc, False
        try:
            self._relay.finished.emit(self._token, ok, result)
        except RuntimeError:  # its window was closed and deleted meanwhile: nobody to tell
            log.debug("a background job finished after its receiver was deleted")


class Runner(QObject):
    """Runs jobs on a thread pool and calls their handlers on the GUI thread."""

    def __init__(
        self,
        parent: QObject | None = None,
        pool: QThreadPool | None = None,
        *,
        low_priority: bool = False,
    ) -> None:
        """``low_priority``: jobs run below the GUI thread (use with a pool of its own)."""
        super().__init__(parent)
        self._low_priority = low_priority
        self._pool = pool or QThreadPool.globalInstance()
        # No parent: each job holds the relay too, so one finishing after this runner (and
        # its window) was deleted emits into a live object that nobody listens to any more.
        self._relay = _Relay()
        self._relay.finished.connect(self._deliver)
        self._tokens = itertools.count(1)
        self._pending: dict[int, tuple[str | None, SuccessHandler, ErrorHandler | None]] = {}
        self._latest: dict[str, int] = {}
        self._held: list[_Job] | None = None

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Start the jobs asked for in the block only when it ends. GUI thread.

        For a window's constructor: its first reads would otherwise share the interpreter
        with the Python building its widgets, and slow that down.
        """
        self.hold()
        try:
            yield
        finally:
            self.release()

    def hold(self) -> None:
        """Keep the jobs asked for from now on until ``release``. GUI thread."""
        if self._held is None:
            self._held = []

    def holding(self) -> bool:
        """True between ``hold`` and ``release``."""
        return self._held is not None

    def release(self) -> None:
        """Start the jobs kept since ``hold``, in the order they were asked for. GUI thread."""
        jobs, self._held = self._held or [], None
        for job in jobs:
            self._pool.start(job)

    def run(
        self,
        fn: Callable[[], Any],
        on_success: SuccessHandler,
        on_error: ErrorHandler | None = None,
        *,
        channel: str | None = None,
    ) -> int:
        """Start ``fn`` on the pool; return its token. GUI thread."""
        token = next(self._tokens)
        self._pending[token] = (channel, on_success, on_error)
        if channel is not None:
            self._latest[channel] = token
        job = _Job(token, fn, self._relay, low_priority=self._low_priority)
        if self._held is not None:
            self._held.append(job)
        else:
            self._pool.start(job)
        return token

    def invalidate(self, channel: str) -> None:
        """Drop the results of jobs already running on ``channel``. GUI thread."""
        self._latest.pop(channel, None)

    def waiting(self, channel: str) -> bool:
        """True while the latest job on ``channel`` has not delivered (stale ones left
        running do not count: their results are dropped). GUI thread."""
        return channel in self._latest

    def busy(self, channel: str | None = None) -> bool:
        """True while a job (on ``channel``, if given) has not delivered yet."""
        return any(channel is None or ch == channel for ch, _, _ in self._pending.values())

    def wait_idle(self, msecs: int = 30_000) -> bool:
        """Block until the pool is idle (for shutdown and tests)."""
        return self._pool.waitForDone(msecs)

    def _deliver(self, token: int, ok: bool, result: object) -> None:  # GUI thread
        channel, on_success, on_error = self._pending.pop(token, (None, None, None))
        if on_success is None:
            return
        if channel is not None and self._latest.get(channel) != token:
            log.debug("dropping a stale result on channel %s", channel)
            return
        if channel is not None:
            self._latest.pop(channel, None)
        if ok:
            on_success(result)
        elif on_error is not None:
            on_error(result)  # type: ignore[arg-type]
        else:
            log.error("background job failed", exc_info=result)  # type: ignore[arg-type]


_POOLS: dict[str, QThreadPool] = {}


def shared_pool(name: str, threads: int) -> QThreadPool:
    """The thread pool ``name`` (made with ``threads`` threads on first use).

    Its jobs never queue behind other kinds of work, whatever the machine's core count, and
    it is never deleted with a window: closing one while a slow read runs does not wait.
    """
    pool = _POOLS.get(name)
    if pool is None:
        pool = _POOLS[name] = QThreadPool()
        pool.setMaxThreadCount(threads)
    return pool


def wait_for(done: Callable[[], bool], msecs: int = 30_000) -> bool:
    """Run a local event loop until ``done()`` holds (or ``msecs`` pass); True if it held.

    For a caller that needs a background answer before it returns (e.g. "select this
    payout"): the GUI thread keeps painting and handling input, and the answer still comes
    from a worker. GUI thread.
    """
    if done():
        return True
    deadline = QDeadlineTimer(msecs)
    loop = QEventLoop()
    poll = QTimer()
    poll.setInterval(5)
    reached = False

    def check() -> None:
        nonlocal reached
        reached = reached or done()
        if reached or deadline.hasExpired():
            loop.quit()

    poll.timeout.connect(check)
    poll.start()
    loop.exec()
    poll.stop()
    # The loop finishes the events already queued after quit(); one of them may start new
    # work, so what counts is that the condition held when it was looked at.
    return reached or done()
