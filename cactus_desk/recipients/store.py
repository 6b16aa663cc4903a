"""The saved recipients of one desk: a private JSON file beside the profiles.

``RecipientRepository`` is what the window needs; ``RecipientStore`` keeps them in
``recipients.json`` (mode 0600, replaced atomically). Reads and writes are disk work: the
window calls them on a worker.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from cactus_desk.paths import write_private_file
from cactus_desk.recipients.model import RecipientError, SavedRecipient

FILE_NAME = "recipients.json"
FILE_VERSION = 1


class RecipientStoreError(RuntimeError):
    """The recipients cannot be read or saved (a plain message naming the file)."""


class RecipientRepository(Protocol):
    """Where saved recipients live (this desk's file; the team's store in team mode)."""

    def all(self) -> list[SavedRecipient]:
        """Every saved recipient, by label."""
        ...

    def save(self, recipient: SavedRecipient) -> SavedRecipient:
        """Add ``recipient``, replacing one with the same label (case does not count)."""
        ...

    def remove(self, label: str) -> bool:
        """Remove the recipient labelled ``label``; False when there was none."""
        ...


class RecipientStore:
    """This desk's saved recipients in one JSON file."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / FILE_NAME

    def all(self) -> list[SavedRecipient]:
        """Every saved recipient, by label."""
        return sorted(self._load(), key=lambda r: r.key)

    def save(self, recipient: SavedRecipient) -> SavedRecipient:
        """Add ``recipient``, replacing one with the same label."""
        kept = [r for r in self._load() if r.key != recipient.key]
        self._write([*kept, recipient])
        return recipient

    def remove(self, label: str) -> bool:
        """Remove the recipient labelled ``label``; False when there was none."""
        recipients = self._load()
        kept = [r for r in recipients if r.key != label.strip().casefold()]
        if len(kept) == len(recipients):
            return False
        self._write(kept)
        return True

    def _damaged(self, detail: str) -> RecipientStoreError:
        return RecipientStoreError(
            f"The saved recipients file {self.path} is damaged ({detail}). It was left "
            "untouched: repair it or move it aside, then try again."
        )

    def _load(self) -> list[SavedRecipient]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as exc:
            raise RecipientStoreError(f"Cannot read {self.path}: {exc}") from None
        try:
            document: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            raise self._damaged(f"not valid JSON: {exc.msg} at line {exc.lineno}") from None
        if not isinstance(document, dict) or not isinstance(document.get("recipients"), list):
            raise self._damaged("no list of recipients")
        found: list[SavedRecipient] = []
        for position, entry in enumerate(document["recipients"], start=1):
            if not isinstance(entry, dict):
                raise self._damaged(f"recipient #{position} is not an object")
            try:
                found.append(SavedRecipient.from_json(entry))
            except RecipientError as exc:
                raise self._damaged(f"recipient #{position}: {exc}") from None
        return found

    def _write(self, recipients: list[SavedRecipient]) -> None:
        document = {
            "version": FILE_VERSION,
            "recipients": [r.to_json() for r in sorted(recipients, key=lambda r: r.key)],
        }
        payload = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        try:
            write_private_file(self.data_dir, self.path, payload)
        except OSError as exc:
            raise RecipientStoreError(f"Cannot save the recipients to {self.path}: {exc}") from None
