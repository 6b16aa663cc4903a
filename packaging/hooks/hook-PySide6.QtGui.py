"""PyInstaller's own QtGui hook, minus the GTK 3 platform theme plugin.

The plugin would drag GTK 3, cairo, pango and ATK (tens of MB) into the bundle and its
dependency list; Qt's Fusion style and the xdg-desktop-portal theme serve Linux desktops.
Dropping it here, before dependency analysis, keeps those libraries out entirely.
"""

from pathlib import Path

from PyInstaller.utils.hooks.qt import add_qt6_dependencies

hiddenimports, binaries, datas = add_qt6_dependencies(__file__)
binaries = [(src, dest) for src, dest in binaries if "qgtk3" not in Path(src).name]
