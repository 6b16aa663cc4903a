"""A cheaper answer to the question PySide6 asks of every module imported after it.

For its optional ``from __feature__ import …`` switches, PySide6 hooks the import of every
module and asks whether its source mentions "PySide6". It finds out with
``inspect.getsource``: the file read through ``linecache``, split into lines and joined
again. Over the start of the window and its background (about 900 modules) that took 60-110
ms of the interpreter, 10 ms of it before the first paint. ``quicken_feature_check`` asks the
same question of the file's bytes; anything else (no source file, an unreadable one) goes to
PySide6's own check, so every module gets the answer it got before.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType

#: Where PySide6 keeps its feature module (the name varies between releases).
FEATURE_MODULES = ("shibokensupport.feature", "PySide6.support.feature")
_MARK = "_cactus_desk_quick"


def quicken_feature_check() -> bool:
    """Install the quicker check once PySide6 is imported; False if PySide6 has no such hook."""
    for name in FEATURE_MODULES:
        feature = sys.modules.get(name)
        original = getattr(feature, "_mod_uses_pyside", None)
        if feature is None or not callable(original):
            continue
        if not getattr(original, _MARK, False):
            feature._mod_uses_pyside = _quick_check(original)  # type: ignore[attr-defined]
        return True
    return False


def _quick_check(original: Callable[[ModuleType], bool]) -> Callable[[ModuleType], bool]:
    def uses_pyside(module: ModuleType) -> bool:
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and path.endswith(".py"):
            try:
                with open(path, "rb") as source:
                    return b"PySide6" in source.read()
            except OSError:
                pass
        return original(module)

    setattr(uses_pyside, _MARK, True)
    uses_pyside.__wrapped__ = original  # type: ignore[attr-defined]
    return uses_pyside
