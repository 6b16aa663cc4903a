"""Render the one app icon SVG into the PNG, ICO and macOS iconset files installers need.

Uses Qt's own SVG renderer (PySide6.QtSvg, part of PySide6-Essentials) on the offscreen
platform, so no extra tool is needed on any build machine.

    python packaging/render_icons.py --hicolor build/icons/hicolor
    python packaging/render_icons.py --ico build/icons/cactus-desk.ico
    python packaging/render_icons.py --iconset build/icons/cactus-desk.iconset
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SVG = ROOT / "resources" / "icons" / "cactus-desk.svg"
ICON_NAME = "cactus-desk"
HICOLOR_SIZES = (16, 32, 48, 64, 128, 256)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# macOS iconset names: (file stem, pixel size); @2x entries are the Retina variants.
ICONSET = (
    ("icon_16x16", 16),
    ("icon_16x16@2x", 32),
    ("icon_32x32", 32),
    ("icon_32x32@2x", 64),
    ("icon_128x128", 128),
    ("icon_128x128@2x", 256),
    ("icon_256x256", 256),
    ("icon_256x256@2x", 512),
    ("icon_512x512", 512),
    ("icon_512x512@2x", 1024),
)


def render_png(svg: Path, size: int) -> bytes:
    """Return the SVG rendered as a square PNG of ``size`` pixels with a transparent corner."""
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise ValueError(f"{svg} is not a valid SVG image")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise RuntimeError("Qt could not encode the icon as PNG")
    buffer.close()
    return bytes(data.data())


def write_hicolor(svg: Path, root: Path, sizes: tuple[int, ...] = HICOLOR_SIZES) -> list[Path]:
    """Write ``<root>/<N>x<N>/apps/cactus-desk.png`` per size and the scalable SVG."""
    written = []
    for size in sizes:
        target = root / f"{size}x{size}" / "apps" / f"{ICON_NAME}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(render_png(svg, size))
        written.append(target)
    scalable = root / "scalable" / "apps" / f"{ICON_NAME}.svg"
    scalable.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(svg, scalable)
    written.append(scalable)
    return written


def ico_bytes(images: list[tuple[int, bytes]]) -> bytes:
    """Pack PNG images into a Windows ICO file (PNG entries, supported since Windows Vista)."""
    header = struct.pack("<HHH", 0, 1, len(images))
    offset = len(header) + 16 * len(images)
    entries = b""
    payload = b""
    for size, png in images:
        side = 0 if size >= 256 else size  # 0 means 256 in the ICO directory
        entries += struct.pack("<BBBBHHII", side, side, 0, 0, 1, 32, len(png), offset)
        payload += png
        offset += len(png)
    return header + entries + payload


def write_ico(svg: Path, target: Path, sizes: tuple[int, ...] = ICO_SIZES) -> Path:
    """Write a multi-size ``.ico`` for the Windows executable and installer."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(ico_bytes([(size, render_png(svg, size)) for size in sizes]))
    return target


def write_iconset(svg: Path, folder: Path) -> Path:
    """Write a macOS ``.iconset`` folder; ``iconutil -c icns`` turns it into an ``.icns``."""
    folder.mkdir(parents=True, exist_ok=True)
    rendered: dict[int, bytes] = {}
    for stem, size in ICONSET:
        if size not in rendered:
            rendered[size] = render_png(svg, size)
        (folder / f"{stem}.png").write_bytes(rendered[size])
    return folder


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--svg", type=Path, default=DEFAULT_SVG, help="source SVG icon")
    parser.add_argument("--hicolor", type=Path, help="write a hicolor theme tree here")
    parser.add_argument("--ico", type=Path, help="write a Windows .ico file here")
    parser.add_argument("--iconset", type=Path, help="write a macOS .iconset folder here")
    args = parser.parse_args(argv)
    if not (args.hicolor or args.ico or args.iconset):
        parser.error("give at least one of --hicolor, --ico, --iconset")
    if not args.svg.is_file():
        parser.error(f"no such SVG file: {args.svg}")
    app = QGuiApplication.instance() or QGuiApplication([sys.argv[0]])
    try:
        if args.hicolor:
            write_hicolor(args.svg, args.hicolor)
        if args.ico:
            write_ico(args.svg, args.ico)
        if args.iconset:
            write_iconset(args.svg, args.iconset)
    except (ValueError, RuntimeError, OSError) as error:
        print(f"render_icons: {error}", file=sys.stderr)
        return 1
    finally:
        del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
