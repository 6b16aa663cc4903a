"""The sandbox gateway is an independent implementation: it shares no code or data with the
console it tests (its catalog, field checks, currency table, statuses, wording or signing).

A rule or a signing bug shared by both sides would make every contract test pass; this test
keeps the sandbox's rules its own, taken from the gateway's docs.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import cactus_desk

PACKAGE = Path(cactus_desk.__file__).resolve().parent
SANDBOX = PACKAGE / "sandbox"
OWN_PREFIX = "cactus_desk.sandbox"
# Data files of the console that the sandbox must not read, however it names them.
FORBIDDEN_TEXT = ("catalog.json", "currencies.json", "resources", "cactus_desk.")
DYNAMIC_IMPORTS = {"import_module", "__import__", "find_spec", "files", "read_text"}


def _is_own(module: str) -> bool:
    return module == OWN_PREFIX or module.startswith(OWN_PREFIX + ".")


def independence_problems(path: Path) -> list[str]:
    """Every way ``path`` (a module of the sandbox package) reaches into the console."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    problems: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "cactus_desk" and not _is_own(alias.name):
                    problems.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            if node.level > 1:
                problems.append(f"line {node.lineno}: relative import above the sandbox")
            module = node.module or ""
            if node.level == 0 and module.split(".")[0] == "cactus_desk":
                names = [f"{module}.{alias.name}" for alias in node.names]
                if not _is_own(module) and not all(_is_own(name) for name in names):
                    problems.append(f"line {node.lineno}: from {module} import ...")
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in DYNAMIC_IMPORTS:
                problems.append(f"line {node.lineno}: {name}() can load the console's code")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value.replace(OWN_PREFIX, "")
            for word in FORBIDDEN_TEXT:
                if word in text:
                    problems.append(f"line {node.lineno}: names {word!r}")
    return problems


def sandbox_modules() -> list[Path]:
    """Every Python module of the sandbox package."""
    return sorted(SANDBOX.rglob("*.py"))


def test_the_sandbox_imports_nothing_of_the_console() -> None:
    assert len(sandbox_modules()) >= 6
    found = {
        str(path.relative_to(PACKAGE.parent)): problems
        for path in sandbox_modules()
        if (problems := independence_problems(path))
    }
    assert found == {}


@pytest.mark.parametrize(
    "source",
    [
        "from cactus_desk.catalog import load_catalog\n",
        "from cactus_desk import money\n",
        "import cactus_desk.gateway.signature\n",
        "from cactus_desk.payouts.statuses import GatewayStatus\n",
        "from cactus_desk.gateway.outcomes import Rejected\n",
        "from ..checks import check_field\n",
        "import importlib\nimportlib.import_module('cactus_desk' + '.money')\n",
        "from pathlib import Path\nPath('resources') / 'catalog.json'\n",
        "from importlib.resources import files\nfiles('cactus_desk')\n",
    ],
)
def test_the_checker_sees_every_way_in(tmp_path: Path, source: str) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(source, encoding="utf-8")
    assert independence_problems(sample)


def test_the_checker_lets_the_sandbox_use_its_own_modules(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from cactus_desk.sandbox.rules import METHODS\n"
        "from cactus_desk.sandbox import signing\n"
        "from . import faults\n"
        "import cactus_desk.sandbox.ledger\n"
        "log_name = 'cactus_desk.sandbox.finalizer'\n",
        encoding="utf-8",
    )
    assert independence_problems(sample) == []


def test_loading_the_sandbox_loads_no_console_module() -> None:
    code = (
        "import sys\n"
        "import cactus_desk.sandbox, cactus_desk.sandbox.finalizer\n"
        "import cactus_desk.sandbox.standalone\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('cactus_desk'))\n"
        "outside = [m for m in loaded if m != 'cactus_desk' "
        "and not m.startswith('cactus_desk.sandbox')]\n"
        "assert outside == [], outside\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
