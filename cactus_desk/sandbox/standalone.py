"""Run the sandbox gateway on its own until SIGINT or SIGTERM (``cactus-desk sandbox``)."""

from __future__ import annotations

import shlex
import signal
import sys
import threading
from types import FrameType
from typing import TextIO

from cactus_desk.sandbox.server import SandboxGateway

WAIT_SLICE_SECONDS = 0.2
DEFAULT_FINALIZE_AFTER = 5.0


def serve(
    port: int = 0,
    merchant_id: str = "sandbox",
    site_id: int = 101,
    salt: str | None = None,
    out: TextIO = sys.stdout,
    callback_url: str | None = None,
    finalize_after: float = DEFAULT_FINALIZE_AFTER,
) -> int:
    """Serve until SIGINT/SIGTERM; print the address and credentials first. Returns 0, or 1
    when the sandbox cannot start (e.g. the port is taken).

    With ``callback_url`` every accepted payout is finalized after ``finalize_after`` seconds
    and its signed callback POSTed there (e.g. to a ``cactus-desk receiver``)."""
    try:
        gateway = SandboxGateway(merchant_id=merchant_id, site_id=site_id, salt=salt, port=port)
        gateway.start()
    except (OSError, ValueError) as exc:
        print(f"The sandbox gateway could not start: {exc}", file=out, flush=True)
        return 1
    if callback_url:
        try:
            gateway.enable_finalizer(callback_url, delay=finalize_after)
        except ValueError as exc:
            gateway.stop()
            print(f"The sandbox gateway could not start: {exc}", file=out, flush=True)
            return 1
        finalizing = (
            f"  callbacks:   {finalize_after:g} s after a payout is accepted, POSTed to "
            f"{callback_url}\n"
        )
    else:
        finalizing = "  callbacks:   none (add --callback-url URL to send them)\n"

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {}
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, request_stop)
    try:
        # A sandbox salt, not a live secret: printing it is the point, so a profile can use it.
        print(
            "Cactus sandbox gateway is running.\n"
            f"  base URL:    {gateway.base_url}\n"
            f"  merchant_id: {gateway.merchant_id}\n"
            f"  site_id:     {gateway.site_id}\n"
            f"  salt:        {gateway.salt}\n"
            f"{finalizing}"
            "  rule:        a payout becomes Success (4); one whose amount in minor units ends "
            "in 13 (e.g. 500.13) becomes Declined (5)\n"
            "Add it as a profile with:\n"
            f"  printf %s {shlex.quote(gateway.salt)} | cactus-desk profile add Sandbox "
            f"--base-url {gateway.base_url} --merchant-id {shlex.quote(gateway.merchant_id)} "
            f"--site-id {gateway.site_id} --environment sandbox --salt-stdin\n"
            "Press Ctrl+C to stop.",
            file=out,
            flush=True,
        )
        while not stop.wait(WAIT_SLICE_SECONDS):
            pass
    finally:
        gateway.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print("Sandbox gateway stopped.", file=out, flush=True)
    return 0
