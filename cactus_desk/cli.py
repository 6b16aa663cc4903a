"""The ``cactus-desk`` entry point: the window straight away, or a subcommand.

A start with only the window's own options (``--sandbox``, ``--data-dir`` and the sandbox's
timings) goes to ``app.run`` without building the parser of every subcommand: that start is
the one people wait for. Anything else, including ``--help`` and every error, goes through
the full command line in ``commands``.
"""

from __future__ import annotations

import sys


def _window_only(argv: list[str]) -> bool:
    from cactus_desk.app import UsageError, parse_args

    try:
        parse_args(argv)
    except UsageError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    """Run ``cactus-desk`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if _window_only(arguments):
        from cactus_desk.app import run

        try:
            return run(arguments)
        except KeyboardInterrupt:
            print("cactus-desk: interrupted", file=sys.stderr)
            return 130
    from cactus_desk.commands import main as command_line

    return command_line(arguments)
