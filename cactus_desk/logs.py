"""Logging to a private rotating file, with card numbers and secrets masked on the way out."""

from __future__ import annotations

import logging
import os
import re
import threading
from io import TextIOWrapper
from logging.handlers import RotatingFileHandler
from pathlib import Path

from cactus_desk.paths import ensure_private_dir

LOG_FILE_NAME = "cactus-desk.log"
MAX_BYTES = 1_000_000
BACKUP_COUNT = 5
SECRET_MASK = "[secret]"
_HANDLER_NAME = "cactus-desk-file"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# 12-19 digits, not glued to other digits, whatever separates them: spaces (no-break and thin
# ones too), dashes of every kind, dots, underscores or slashes, up to three in a row.
_SEPARATOR = "[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000._/\\-\u2010-\u2015\u2212]"
_CARD_RE = re.compile(rf"(?<![\d])\d(?:{_SEPARATOR}{{0,3}}\d){{11,18}}(?![\d])")

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
# Secrets shorter than this would mask ordinary words and numbers all over the log.
_MIN_SECRET_LENGTH = 4


def register_secret(value: str | None) -> None:
    """Mask ``value`` wherever it appears in a log record from now on (this process only)."""
    if value and len(value) >= _MIN_SECRET_LENGTH:
        with _secrets_lock:
            _secrets.add(value)


def _mask_card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return f"{digits[:6]}{'*' * (len(digits) - 10)}{digits[-4:]}"


def redact(text: str) -> str:
    """Return ``text`` with registered secrets and card-like numbers masked."""
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, SECRET_MASK)
    return _CARD_RE.sub(_mask_card, text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's final message so nothing sensitive reaches the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        # The formatter would re-render the traceback from exc_info; keep only the masked text.
        record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        record.msg = redact(message)
        record.args = None
        return True


class _PrivateRotatingFileHandler(RotatingFileHandler):
    """A rotating handler whose files are created readable by the owner only."""

    def _open(self) -> TextIOWrapper:
        path = Path(self.baseFilename)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.close(fd)
        # An existing file from an older run may be wider than 0600.
        os.chmod(path, 0o600)
        return super()._open()


def setup_logging(log_dir: Path, level: int = logging.INFO) -> Path:
    """Send the root logger to ``log_dir/cactus-desk.log`` (1 MB x 5, mode 0600); return its path.

    Calling it again replaces the handler installed by the previous call.
    """
    ensure_private_dir(Path(log_dir))
    path = Path(log_dir) / LOG_FILE_NAME
    handler = _PrivateRotatingFileHandler(
        path, maxBytes=MAX_BYTES, backupCount=BACKUP_COUNT, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.addFilter(RedactingFilter())
    handler.set_name(_HANDLER_NAME)
    stop_logging()
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    return path


def stop_logging() -> None:
    """Remove and close the file handler that ``setup_logging`` installed, if any."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
