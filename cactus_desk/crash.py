"""The text an unexpected error leaves in the log: the full traceback, secrets masked.

The window's exception hook (UI) logs this and shows a dialog; the core part lives here so
it can be tested without Qt. Exception messages and chained causes may quote a salt or a
card number, so the whole text goes through the same redaction as every log line.
"""

from __future__ import annotations

import traceback
from types import TracebackType

from cactus_desk import __version__
from cactus_desk.logs import redact
from cactus_desk.masking import scrub_card_numbers

ExcInfo = tuple[type[BaseException] | None, BaseException | None, TracebackType | None]


def format_for_log(exc_info: ExcInfo | BaseException) -> str:
    """The traceback of ``exc_info`` (a ``sys.exc_info()`` triple or an exception) for the log.

    Registered secrets (the salt) and card numbers are masked; chained causes are included.
    """
    exc_type: type[BaseException] | None
    value: BaseException | None
    tb: TracebackType | None
    if isinstance(exc_info, BaseException):
        exc_type, value, tb = type(exc_info), exc_info, exc_info.__traceback__
    else:
        exc_type, value, tb = exc_info
    if exc_type is None or value is None:
        return "No exception information was available."
    try:
        lines = traceback.format_exception(exc_type, value, tb)
        text = "".join(lines).rstrip()
    except Exception as exc:  # a broken __str__ must not hide the original error
        text = f"{exc_type.__name__} (its traceback could not be formatted: {type(exc).__name__})"
    header = f"Unexpected error in Cactus Desk {__version__}:"
    return redact(scrub_card_numbers(f"{header}\n{text}"))
