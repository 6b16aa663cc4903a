"""The installers workflow builds what `make deb` builds, and --self-test tells a missing keyring.

The workflow is read as text (no YAML library is a dependency): each step is the block that
starts at its ``- name:`` line.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import keyring
from keyring.backends import fail

from cactus_desk import selftest

REPO = Path(__file__).resolve().parent.parent
WORKFLOW = REPO / ".github" / "workflows" / "installers.yml"
MAKEFILE = REPO / "Makefile"


def steps() -> dict[str, str]:
    """The workflow's steps by name: each one's text up to the next step."""
    text = WORKFLOW.read_text(encoding="utf-8")
    text = text[text.index("\n    steps:\n") :]  # the matrix above names its entries too
    found: dict[str, str] = {}
    for block in re.split(r"\n(?=\s*- (?:name|uses):)", text):
        match = re.match(r"\s*- name:\s*(.+)", block)
        if match:
            found[match.group(1).strip()] = block
    return found


def run_commands(step: str) -> str:
    """The shell text of a step's ``run:`` (one line or a block), comments left out."""
    match = re.search(r"^\s*run:\s*(\|)?(.*)$", step, re.M)
    assert match, step
    if not match.group(1):
        return match.group(2).strip()
    body = step[match.end() :]
    return "\n".join(line.strip() for line in body.splitlines() if line.strip())


def make_deb_extras() -> set[str]:
    """The extras `make deb` installs (through the virtualenv stamp target)."""
    text = MAKEFILE.read_text(encoding="utf-8")
    assert re.search(r"^deb: dist$", text, re.M) and re.search(r"^dist: \$\(STAMP\)$", text, re.M)
    match = re.search(r"pip install .*?-e '\.\[([a-z0-9,_-]+)\]'", text)
    assert match, "the Makefile's install line moved"
    return set(match.group(1).split(","))


def installed_extras(command: str) -> set[str] | None:
    """The extras a ``pip install`` of this project names, None when it installs none."""
    match = re.search(
        r"pip install\s+(?:-e\s+)?['\"]?\.(?:\[([a-z0-9,_-]+)\])?['\"]?(?:\s|$)", command
    )
    assert match, f"no pip install of the project in: {command}"
    return set(match.group(1).split(",")) if match.group(1) else None


def test_the_workflow_installs_the_same_extras_as_make_deb() -> None:
    extras = make_deb_extras()
    assert "dev" in extras  # which carries uvicorn: live statuses and the receiver
    installs = [
        run_commands(step)
        for step in steps().values()
        if "run:" in step and "pip install" in run_commands(step)
    ]
    assert installs, "the workflow installs nothing"
    for command in installs:
        assert installed_extras(command) == extras, command
    assert "pyinstaller" in " ".join(installs)


def test_the_workflow_runs_the_test_suite_before_bundling_and_lintian_on_the_deb() -> None:
    named = steps()
    names = list(named)
    suite = [name for name in names if "run:" in named[name] and "pytest" in named[name]]
    assert suite, "the workflow does not run the test suite"
    bundle = next(name for name in names if re.search(r"pyinstaller\s+--", named[name], re.I))
    assert names.index(suite[0]) < names.index(bundle)
    assert "if:" not in named[suite[0]]  # on every platform, not only Linux

    deb = named["Debian package"]
    commands = run_commands(deb).splitlines()
    build = next(i for i, line in enumerate(commands) if "build-deb.sh" in line)
    lint = next(i for i, line in enumerate(commands) if line.startswith("lintian "))
    install = next(i for i, line in enumerate(commands) if "apt-get install" in line)
    assert build < lint < install
    assert "--fail-on error" in commands[lint] and "dist/cactus-desk_*.deb" in commands[lint]
    tools = run_commands(named["Qt runtime and packaging tools (Linux)"])
    assert re.search(r"\blintian\b", tools)


def test_self_test_warns_when_there_is_no_os_keyring(qapp: object) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        out = io.StringIO()
        code = selftest.run(["--self-test"], out)
    finally:
        keyring.set_keyring(previous)
    lines = out.getvalue().splitlines()
    assert code == 0, lines
    (warning,) = [line for line in lines if "keyring" in line]
    assert warning.startswith("WARN keyring: no usable OS keyring")
    assert "live salts cannot be saved" in warning
    assert not any(line.startswith("ok  keyring") for line in lines)
    assert lines[-1] == "self-test passed (1 warning(s))"
