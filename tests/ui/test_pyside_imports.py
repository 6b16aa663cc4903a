"""The quicker answer to PySide6's per-import question gives every module PySide6's answer."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import pytest

from cactus_desk.ui import pyside_imports


def _feature_module() -> ModuleType:
    import PySide6.QtCore  # noqa: F401  (loads the feature module)

    for name in pyside_imports.FEATURE_MODULES:
        if name in sys.modules:
            return sys.modules[name]
    pytest.fail("PySide6 has no feature module under the names the app looks for")


def test_same_answer_as_pyside_for_every_loaded_module(monkeypatch: pytest.MonkeyPatch) -> None:
    feature = _feature_module()
    # PySide6's own check, even where an earlier test's window installed the quick one.
    original = getattr(feature._mod_uses_pyside, "__wrapped__", feature._mod_uses_pyside)
    monkeypatch.setattr(feature, "_mod_uses_pyside", original)
    assert pyside_imports.quicken_feature_check()
    quick = feature._mod_uses_pyside
    assert quick is not original
    modules = [module for module in list(sys.modules.values()) if isinstance(module, ModuleType)]
    answers = {module.__name__: quick(module) for module in modules}
    assert answers == {module.__name__: original(module) for module in modules}
    # Both kinds are among them: this test module names PySide6, ``sys`` has no source.
    assert answers[__name__] is True
    assert answers["sys"] is False
    assert answers["json"] is False


def test_installed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    feature = _feature_module()
    monkeypatch.setattr(feature, "_mod_uses_pyside", feature._mod_uses_pyside)
    assert pyside_imports.quicken_feature_check()
    first = feature._mod_uses_pyside
    assert pyside_imports.quicken_feature_check()
    assert feature._mod_uses_pyside is first


def test_unreadable_source_gets_pysides_answer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    feature = _feature_module()
    asked: list[str] = []

    def pyside_check(module: ModuleType) -> bool:
        asked.append(module.__name__)
        return True

    monkeypatch.setattr(feature, "_mod_uses_pyside", pyside_check)
    assert pyside_imports.quicken_feature_check()
    gone = ModuleType("gone")
    gone.__file__ = str(tmp_path / "gone.py")
    assert feature._mod_uses_pyside(gone) is True
    assert asked == ["gone"]


def test_without_the_hook_nothing_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in pyside_imports.FEATURE_MODULES:
        monkeypatch.delitem(sys.modules, name, raising=False)
    assert pyside_imports.quicken_feature_check() is False
