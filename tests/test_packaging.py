"""App identity, the icon renderer, ``--self-test``, and the Debian package end to end.

The package tests (marker ``packaging``) build the PyInstaller bundle and the .deb, install
it (``dpkg -i`` as root, else unpacked into a temporary root), run the installed
``cactus-desk --self-test`` and lintian. They take a few minutes, so they run only when
``CACTUS_DESK_PACKAGING=1`` or ``CI=true``.
"""

from __future__ import annotations

import configparser
import io
import os
import re
import shutil
import sqlite3
import struct
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PySide6.QtGui import QImage, QImageReader

import cactus_desk
from cactus_desk import selftest
from cactus_desk.history import open_history
from cactus_desk.payouts.states import State
from cactus_desk.sandbox import Fault, SandboxGateway

REPO = Path(__file__).resolve().parent.parent
PACKAGING = REPO / "packaging"
RENDER_ICONS = PACKAGING / "render_icons.py"
SVG = REPO / "resources" / "icons" / "cactus-desk.svg"
HICOLOR_SIZES = (16, 32, 48, 64, 128, 256)
KNOWN_SALT = "selftest-known-salt-4f9c2e"
OK_LINES = ("ok  main window", "ok  history store", "ok  keyring: ", "ok  sandbox payout accepted")
# An installed self-test may run where there is no OS keyring: that is a warning, not a failure.
INSTALLED_LINES = (*OK_LINES[:2], ("ok  keyring: ", "WARN keyring: "), *OK_LINES[3:])


def render(*options: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run(
        [sys.executable, str(RENDER_ICONS), *options],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def assert_icon_image(image: QImage, size: int) -> None:
    """A real icon: the right size, transparent outside the rounded square, drawn inside."""
    assert (image.width(), image.height()) == (size, size)
    assert image.pixelColor(0, 0).alpha() == 0, "the corner should be transparent"
    centre = image.pixelColor(size // 2, size // 2)
    assert centre.alpha() == 255
    # The cactus is green where the trunk crosses the middle.
    assert centre.green() > centre.red() and centre.green() > centre.blue()


# --- identity and icons ---------------------------------------------------------------------


def test_version_comes_from_the_package_metadata() -> None:
    from importlib.metadata import version

    assert cactus_desk.__version__ == version("cactus-desk")
    assert cactus_desk.__version__ != "0.0.0"


def test_hicolor_icons_are_rendered_from_the_one_svg(tmp_path: Path) -> None:
    result = render("--hicolor", str(tmp_path / "hicolor"))
    assert result.returncode == 0, result.stderr
    for size in HICOLOR_SIZES:
        png = tmp_path / "hicolor" / f"{size}x{size}" / "apps" / "cactus-desk.png"
        image = QImage(str(png))
        assert not image.isNull(), png
        assert_icon_image(image, size)
    scalable = tmp_path / "hicolor" / "scalable" / "apps" / "cactus-desk.svg"
    assert scalable.read_bytes() == SVG.read_bytes()


def test_windows_ico_holds_every_size_up_to_256(tmp_path: Path) -> None:
    ico = tmp_path / "cactus-desk.ico"
    result = render("--ico", str(ico))
    assert result.returncode == 0, result.stderr
    reserved, kind, count = struct.unpack("<HHH", ico.read_bytes()[:6])
    assert (reserved, kind) == (0, 1)
    reader = QImageReader(str(ico))
    sizes = []
    for index in range(count):
        assert reader.jumpToImage(index)
        image = reader.read()
        sizes.append(image.width())
        assert_icon_image(image, image.width())
    assert sorted(sizes) == [16, 24, 32, 48, 64, 128, 256]


def test_macos_iconset_has_the_names_iconutil_expects(tmp_path: Path) -> None:
    iconset = tmp_path / "cactus-desk.iconset"
    result = render("--iconset", str(iconset))
    assert result.returncode == 0, result.stderr
    names = sorted(path.name for path in iconset.iterdir())
    expected = []
    for size in (16, 32, 128, 256, 512):
        expected += [f"icon_{size}x{size}.png", f"icon_{size}x{size}@2x.png"]
    assert names == sorted(expected)
    assert QImage(str(iconset / "icon_512x512@2x.png")).width() == 1024


def test_render_icons_explains_bad_input(tmp_path: Path) -> None:
    missing = render("--svg", str(tmp_path / "nope.svg"), "--hicolor", str(tmp_path / "out"))
    assert missing.returncode == 2
    assert "no such SVG file" in missing.stderr

    broken = tmp_path / "broken.svg"
    broken.write_text("<svg this is not xml", encoding="utf-8")
    invalid = render("--svg", str(broken), "--ico", str(tmp_path / "x.ico"))
    assert invalid.returncode == 1
    assert "not a valid SVG image" in invalid.stderr
    assert "Traceback" not in invalid.stderr

    nothing = render()
    assert nothing.returncode == 2
    assert "give at least one of" in nothing.stderr


def test_desktop_entry_launches_the_command_with_the_icon() -> None:
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    entry.read(PACKAGING / "linux" / "cactus-desk.desktop", encoding="utf-8")
    section = entry["Desktop Entry"]
    assert section["Type"] == "Application"
    assert section["Name"] == cactus_desk.APP_NAME
    assert section["Exec"] == "cactus-desk"
    assert section["Icon"] == SVG.stem
    assert section["Terminal"] == "false"
    validator = shutil.which("desktop-file-validate")
    if validator:
        check = subprocess.run(
            [validator, str(PACKAGING / "linux" / "cactus-desk.desktop")],
            capture_output=True,
            text=True,
        )
        assert check.returncode == 0, check.stdout + check.stderr


# --- cactus-desk --self-test ----------------------------------------------------------------


class KnownSaltSandbox(SandboxGateway):
    """The sandbox with a salt the test knows, to prove it never leaks."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs["salt"] = KNOWN_SALT
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


class RejectingSandbox(SandboxGateway):
    """A sandbox that says no to every payout."""

    def start(self) -> SandboxGateway:
        started = super().start()
        self.set_fault(Fault.REJECT)
        return started


def run_self_test(argv: list[str]) -> tuple[int, list[str]]:
    out = io.StringIO()
    code = selftest.run(argv, out)
    return code, out.getvalue().splitlines()


def test_self_test_passes_and_prints_one_line_per_check(qapp: object) -> None:
    code, lines = run_self_test(["--self-test"])
    assert code == 0, lines
    assert len(lines) == 5
    for line, expected in zip(lines, OK_LINES, strict=False):
        assert line.startswith(expected), lines
    assert re.fullmatch(r"ok  sandbox payout accepted \(invoice \d+\)", lines[3])
    assert lines[-1] == "self-test passed"


def test_self_test_records_the_payout_in_the_chosen_data_dir_without_secrets(
    qapp: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("cactus_desk.sandbox.SandboxGateway", KnownSaltSandbox)
    data = tmp_path / "data"
    code, lines = run_self_test(["--self-test", "--data-dir", str(data)])
    assert code == 0, lines
    invoice = re.search(r"invoice (\d+)", lines[3])
    assert invoice

    with open_history(data) as store:
        (record,) = list(store.iter_records())
    assert record.state == State.ACCEPTED
    assert record.invoice_id == invoice.group(1)
    assert record.request["additional_fields"]["card_number"] == "424242******4242"
    assert KNOWN_SALT not in "\n".join(lines)
    for path in data.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert KNOWN_SALT.encode() not in content, path
            assert b"4242424242424242" not in content, path
    with sqlite3.connect(data / "history.sqlite3") as db:
        dump = "\n".join(db.iterdump())
    assert KNOWN_SALT not in dump


def test_self_test_reports_a_rejected_payout_and_exits_1(
    qapp: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("cactus_desk.sandbox.SandboxGateway", RejectingSandbox)
    code, lines = run_self_test(["--self-test"])
    assert code == 1
    assert lines[:3][0].startswith("ok  main window")
    assert any(
        line.startswith("FAIL sandbox payout: the sandbox payout ended REJECTED") for line in lines
    )
    assert lines[-1] == "self-test failed (1 check(s))"


def test_a_failing_check_does_not_stop_the_others(
    qapp: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_window(argv: list[str]) -> object:
        raise RuntimeError("no\nwindow today")

    monkeypatch.setattr("cactus_desk.app.build_main_window", broken_window)
    code, lines = run_self_test(["--self-test"])
    assert code == 1
    assert lines[0] == "FAIL main window: RuntimeError: no window today"
    assert lines[1] == "ok  history store"
    assert lines[3].startswith("ok  sandbox payout accepted")
    assert lines[-1].startswith("self-test failed")


def test_self_test_rejects_unknown_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = run_self_test(["--self-test", "--bogus"])
    assert code == 2
    assert lines == []
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


# --- the Debian package ---------------------------------------------------------------------

PACKAGING_ENABLED = os.environ.get("CACTUS_DESK_PACKAGING") == "1" or os.environ.get("CI") == "true"
SKIP_REASON = (
    "builds, installs and lints the .deb (a few minutes): "
    "set CACTUS_DESK_PACKAGING=1 (or CI=true) to run"
)
EXCLUDED_FROM_BUNDLE = ("libqgtk3", "libgtk-3", "libQt6Qml", "libQt6Quick", "libQt6Pdf")


@dataclass(frozen=True)
class Installed:
    deb: Path
    root: Path  # "/" after dpkg -i, else the folder the package was unpacked into
    via_dpkg: bool

    @property
    def bundle(self) -> Path:
        return self.root / "opt" / "cactus-desk"

    @property
    def command(self) -> Path:
        # Unpacked, /usr/bin/cactus-desk points at the real /opt, so run the bundle directly.
        return (
            self.root / "usr" / "bin" / "cactus-desk"
            if self.via_dpkg
            else self.bundle / "cactus-desk"
        )


def _require(tool: str) -> str:
    found = shutil.which(tool)
    if not found:
        pytest.fail(f"{tool} is needed to test the Debian package; install it", pytrace=False)
    return found


def _run(argv: list[str], *, timeout: float, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the bundle from the committed spec and wrap it, as ``make deb`` does."""
    _require("dpkg-deb")
    work = tmp_path_factory.mktemp("packaging")
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        installed = _run(
            [sys.executable, "-m", "pip", "install", "--quiet", "pyinstaller"], timeout=300
        )
        assert installed.returncode == 0, installed.stderr
    built = _run(
        [
            sys.executable,
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--distpath",
            str(work / "dist"),
            "--workpath",
            str(work / "build"),
            str(PACKAGING / "cactus-desk.spec"),
        ],
        timeout=600,
        cwd=REPO,
    )
    assert built.returncode == 0, built.stderr[-4000:]
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "BUNDLE": str(work / "dist" / "cactus-desk"),
        "OUTDIR": str(work / "out"),
        "WORKDIR": str(work / "stage"),
        # gzip packs several times faster than xz; the contents are what is under test.
        "COMPRESS": "gzip",
    }
    packed = _run(["sh", str(PACKAGING / "linux" / "build-deb.sh")], timeout=300, env=env)
    assert packed.returncode == 0, packed.stderr
    deb_path = Path(packed.stdout.strip().splitlines()[-1])
    assert deb_path.is_file()
    return deb_path


def _installed_already() -> bool:
    status = _run(["dpkg-query", "-W", "-f=${Status}", "cactus-desk"], timeout=30)
    return status.returncode == 0 and "installed" in status.stdout.split()


@pytest.fixture(scope="module")
def installed(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """Install with dpkg as root (and remove afterwards); otherwise unpack it."""
    if os.geteuid() == 0 and shutil.which("dpkg") and not _installed_already():
        result = _run(["dpkg", "-i", str(deb)], timeout=300)
        if result.returncode != 0:
            _run(["dpkg", "-r", "cactus-desk"], timeout=300)
            pytest.fail(f"dpkg -i failed:\n{result.stdout}\n{result.stderr}", pytrace=False)
        try:
            yield Installed(deb, Path("/"), via_dpkg=True)
        finally:
            removed = _run(["dpkg", "-r", "cactus-desk"], timeout=300)
            assert removed.returncode == 0, removed.stderr
            assert not Path("/usr/bin/cactus-desk").exists()
            assert not Path("/opt/cactus-desk").exists()
        return
    root = tmp_path_factory.mktemp("deb-root")
    unpacked = _run(["dpkg-deb", "-x", str(deb), str(root)], timeout=300)
    assert unpacked.returncode == 0, unpacked.stderr
    yield Installed(deb, root, via_dpkg=False)


def _self_test_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CACTUS_DESK_", "QT_"))}
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    for name in ("XDG_DATA_HOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "HOME"):
        folder = tmp / name.lower()
        folder.mkdir(mode=0o700)
        env[name] = str(folder)
    return env


def _assert_self_test_passed(result: subprocess.CompletedProcess[str]) -> list[str]:
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout + result.stderr
    for line, expected in zip(lines, INSTALLED_LINES, strict=False):
        assert line.startswith(expected), lines
    assert lines[-1] in ("self-test passed", "self-test passed (1 warning(s))")
    assert "Traceback" not in result.stderr
    return lines


@pytest.mark.packaging
@pytest.mark.skipif(not PACKAGING_ENABLED, reason=SKIP_REASON)
class TestDebianPackage:
    def test_control_names_the_version_and_the_qt_runtime_packages(self, deb: Path) -> None:
        fields = _run(["dpkg-deb", "-f", str(deb)], timeout=60).stdout
        assert re.search(r"^Package: cactus-desk$", fields, re.M)
        assert re.search(rf"^Version: {re.escape(cactus_desk.__version__)}$", fields, re.M)
        depends = _depends(deb)
        for package in ("libxcb-cursor0", "libxkbcommon-x11-0", "libegl1", "libfontconfig1"):
            assert package in depends
        assert deb.name == f"cactus-desk_{cactus_desk.__version__}_{_arch()}.deb"

    def test_the_installed_command_passes_its_self_test(
        self, installed: Installed, tmp_path: Path
    ) -> None:
        env = _self_test_env(tmp_path)
        keyring = shutil.which("gnome-keyring-daemon") and shutil.which("dbus-run-session")
        if keyring:
            # A private D-Bus session with an unlocked keyring: the bundle must find the
            # Secret Service backend, which keyring loads through entry points.
            script = (
                "printf %s pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null;"
                ' exec "$0" --self-test'
            )
            argv = ["dbus-run-session", "--", "sh", "-c", script, str(installed.command)]
        else:
            argv = [str(installed.command), "--self-test"]
        lines = _assert_self_test_passed(_run(argv, timeout=120, env=env))
        assert "platform offscreen" in lines[0]
        if keyring:
            assert lines[2] == "ok  keyring: Secret Service (SecretService Keyring)"

    def test_the_window_opens_on_a_real_x_server(
        self, installed: Installed, tmp_path: Path
    ) -> None:
        xvfb = shutil.which("xvfb-run")
        if not xvfb:
            pytest.skip("xvfb-run is not installed")
        env = {**_self_test_env(tmp_path), "QT_QPA_PLATFORM": "xcb"}
        result = _run([xvfb, "-a", str(installed.command), "--self-test"], timeout=120, env=env)
        lines = _assert_self_test_passed(result)
        assert "platform xcb" in lines[0]

    def test_version_and_menu_entry(self, installed: Installed) -> None:
        version = _run([str(installed.command), "--version"], timeout=60)
        assert version.stdout.strip() == f"cactus-desk {cactus_desk.__version__}"
        share = installed.root / "usr" / "share"
        assert (share / "applications" / "cactus-desk.desktop").is_file()
        for size in HICOLOR_SIZES:
            png = share / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "cactus-desk.png"
            assert QImage(str(png)).width() == size
        assert (share / "icons" / "hicolor" / "scalable" / "apps" / "cactus-desk.svg").is_file()
        link = installed.root / "usr" / "bin" / "cactus-desk"
        assert os.readlink(link) == "/opt/cactus-desk/cactus-desk"
        copyright_text = (share / "doc" / "cactus-desk" / "copyright").read_text(encoding="utf-8")
        assert copyright_text.startswith("Format: https://www.debian.org/doc/packaging-manuals/")
        assert "License: MIT" in copyright_text

    def test_bundle_leaves_out_gtk_and_unused_qt_modules(self, installed: Installed) -> None:
        names = [path.name for path in installed.bundle.rglob("*")]
        for excluded in EXCLUDED_FROM_BUNDLE:
            assert not [name for name in names if name.startswith(excluded)], excluded
        assert (
            installed.bundle / "_internal" / "cactus_desk" / "resources" / "catalog.json"
        ).is_file()

    def test_every_library_the_bundle_needs_from_the_system_is_a_dependency(
        self, installed: Installed
    ) -> None:
        if not (shutil.which("readelf") and shutil.which("ldconfig") and shutil.which("dpkg")):
            pytest.skip("needs readelf, ldconfig and dpkg")
        bundled = {path.name for path in installed.bundle.rglob("*")}
        needed: set[str] = set()
        for path in installed.bundle.rglob("*"):
            if path.is_file() and not path.is_symlink() and _is_elf(path):
                dynamic = _run(["readelf", "-d", str(path)], timeout=60).stdout
                needed |= set(re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dynamic))
        external = sorted(needed - bundled)
        assert external, "the bundle should need at least glibc from the system"
        providers = _providers(external)
        unknown = [lib for lib in external if lib not in providers]
        assert not unknown, f"no installed package provides {unknown}"
        depends = _depends(installed.deb)
        undeclared = {lib: pkg for lib, pkg in providers.items() if pkg not in depends}
        assert not undeclared, f"add these to Depends: {undeclared}"

    def test_lintian_finds_no_errors(self, deb: Path) -> None:
        lintian = _require("lintian")
        result = _run([lintian, str(deb)], timeout=300)
        errors = [line for line in result.stdout.splitlines() if line.startswith("E:")]
        assert errors == [], result.stdout


def _is_elf(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"\x7fELF"


def _arch() -> str:
    return _run(["dpkg", "--print-architecture"], timeout=30).stdout.strip()


def _depends(deb: Path) -> set[str]:
    """Every package named in Depends, alternatives included, without version limits."""
    field = _run(["dpkg-deb", "-f", str(deb), "Depends"], timeout=60).stdout
    names = set()
    for clause in field.split(","):
        for alternative in clause.split("|"):
            name = alternative.strip().split(" ")[0].split(":")[0]
            if name:
                names.add(name)
    return names


def _providers(libraries: list[str]) -> dict[str, str]:
    """Map each library soname to the installed package that ships it."""
    cache = _run(["ldconfig", "-p"], timeout=60).stdout
    found: dict[str, str] = {}
    for lib in libraries:
        match = re.search(rf"^\s+{re.escape(lib)} \(.*?x86-64.*?\) => (\S+)$", cache, re.M)
        match = match or re.search(rf"^\s+{re.escape(lib)} \(.*?\) => (\S+)$", cache, re.M)
        if not match:
            continue
        path = Path(match.group(1))
        candidates = {str(path), str(path.resolve())}
        candidates |= {c.removeprefix("/usr") for c in candidates} | {
            "/usr" + c for c in candidates if not c.startswith("/usr")
        }
        for candidate in sorted(candidates):
            owner = _run(["dpkg", "-S", candidate], timeout=60)
            if owner.returncode == 0:
                found[lib] = owner.stdout.split(":")[0].strip()
                break
    return found
