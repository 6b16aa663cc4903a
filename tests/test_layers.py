"""The core stays Qt-free: only ``ui/`` and ``app.py`` may import PySide6."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import cactus_desk

PACKAGE = Path(cactus_desk.__file__).resolve().parent
QT_ALLOWED = {PACKAGE / "app.py"}


def _imports_pyside(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        if any(name == "PySide6" or name.startswith("PySide6.") for name in names):
            return True
    return False


def test_no_module_outside_ui_and_app_imports_pyside6() -> None:
    offenders = [
        str(path.relative_to(PACKAGE.parent))
        for path in PACKAGE.rglob("*.py")
        if path not in QT_ALLOWED and (PACKAGE / "ui") not in path.parents and _imports_pyside(path)
    ]
    assert offenders == []


def test_the_checker_sees_a_pyside6_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from PySide6.QtCore import QObject\n", encoding="utf-8")
    assert _imports_pyside(sample)


def test_core_modules_import_without_loading_qt() -> None:
    code = (
        "import sys\n"
        "import cactus_desk.cli, cactus_desk.commands\n"
        "import cactus_desk.gateway.client, cactus_desk.sandbox\n"
        "import cactus_desk.history.sqlite.store, cactus_desk.catalog, cactus_desk.money\n"
        "import cactus_desk.history.postgres.store\n"
        "import cactus_desk.secrets, cactus_desk.profiles\n"
        "assert not any(m.startswith('PySide6') for m in sys.modules), 'Qt was loaded'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
