#!/bin/sh
# Wrap the PyInstaller bundle (dist/cactus-desk, from `make dist`) in a Debian package,
# dist/cactus-desk_<version>_<arch>.deb, and print its path.
#
# Environment (all optional):
#   PYTHON      interpreter with cactus-desk and PySide6 installed (renders the icons and
#               reads the version); default: the project's .venv, else python3
#   VERSION     package version; default: the installed cactus-desk's version
#   BUNDLE      the PyInstaller one-folder bundle; default: dist/cactus-desk
#   OUTDIR      where the .deb goes; default: dist
#   WORKDIR     staging folder; default: build/deb
#   COMPRESS    xz (default), gzip or zstd. Debian 12's lintian rejects zstd members and
#               dpkg before 1.21.18 cannot read them; gzip is quicker to pack but larger.
#   MAINTAINER  default: "Cactus Desk <cactus-desk@users.noreply.github.com>"
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)

if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python3; fi
fi
BUNDLE=${BUNDLE:-$ROOT/dist/cactus-desk}
OUTDIR=${OUTDIR:-$ROOT/dist}
WORKDIR=${WORKDIR:-$ROOT/build/deb}
COMPRESS=${COMPRESS:-xz}
MAINTAINER=${MAINTAINER:-Cactus Desk <cactus-desk@users.noreply.github.com>}
PACKAGE=cactus-desk

die() { echo "build-deb: $*" >&2; exit 1; }

[ -x "$BUNDLE/$PACKAGE" ] || die "no bundle at $BUNDLE; build it first with 'make dist'"
command -v dpkg-deb >/dev/null || die "dpkg-deb is missing (install the dpkg package)"

if [ -z "${VERSION:-}" ]; then
    VERSION=$("$PYTHON" -c 'import importlib.metadata as m; print(m.version("cactus-desk"))' \
        2>/dev/null) \
        || VERSION=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$ROOT/pyproject.toml" | head -n 1)
fi
[ -n "$VERSION" ] || die "could not read the version from the package or pyproject.toml"
ARCH=$(dpkg --print-architecture)
OUT="$OUTDIR/${PACKAGE}_${VERSION}_${ARCH}.deb"

# Run-time packages the bundle does not carry: glibc, the X/GL/Wayland client libraries the
# Qt platform plugins link against (checked with ldd), Qt's xcb plugin stack, fontconfig's
# configuration and at least one font (without fonts Qt draws boxes).
DEPENDS="libc6, libxcb1, libx11-6, libx11-xcb1, libxcb-cursor0, libxcb-icccm4, libxcb-image0"
DEPENDS="$DEPENDS, libxcb-keysyms1, libxcb-randr0, libxcb-render-util0, libxcb-shape0"
DEPENDS="$DEPENDS, libxcb-shm0, libxcb-sync1, libxcb-xfixes0, libxcb-xkb1, libxkbcommon0"
DEPENDS="$DEPENDS, libxkbcommon-x11-0, libegl1, libgl1, libdrm2, libwayland-client0"
DEPENDS="$DEPENDS, libwayland-cursor0, libwayland-egl1, libfontconfig1, libfreetype6"
DEPENDS="$DEPENDS, libdbus-1-3, fonts-dejavu-core | fonts-liberation | fonts-noto-core"
RECOMMENDS="gnome-keyring | libkf5wallet-bin"

STAGE=$WORKDIR/${PACKAGE}_${VERSION}_${ARCH}
rm -rf "$STAGE"
mkdir -p "$STAGE/DEBIAN" "$STAGE/opt" "$STAGE/usr/bin" "$STAGE/usr/share/applications" \
    "$STAGE/usr/share/doc/$PACKAGE" "$STAGE/usr/share/lintian/overrides"

cp -R "$BUNDLE" "$STAGE/opt/$PACKAGE"
# Debian policy modes: directories and the launcher 0755, everything else (libraries too) 0644.
find "$STAGE/opt" -type d -exec chmod 0755 {} +
find "$STAGE/opt" -type f -exec chmod 0644 {} +
chmod 0755 "$STAGE/opt/$PACKAGE/$PACKAGE"
# Strip the libraries as dh_strip would (about 15% smaller). Never the launcher: PyInstaller
# keeps the Python archive inside it.
if command -v strip >/dev/null; then
    find "$STAGE/opt" -type f -name '*.so*' -exec \
        strip --strip-unneeded --remove-section=.comment --remove-section=.note {} +
fi
# The bootloader resolves its own location through /proc/self/exe, so a symlink works.
ln -s "/opt/$PACKAGE/$PACKAGE" "$STAGE/usr/bin/$PACKAGE"

install -m 0644 "$ROOT/packaging/linux/cactus-desk.desktop" "$STAGE/usr/share/applications/"
if command -v desktop-file-validate >/dev/null; then
    desktop-file-validate "$STAGE/usr/share/applications/cactus-desk.desktop"
fi
"$PYTHON" "$ROOT/packaging/render_icons.py" --hicolor "$STAGE/usr/share/icons/hicolor" \
    || die "rendering the icons needs PySide6 in $PYTHON"
find "$STAGE/usr/share/icons" -type d -exec chmod 0755 {} +
find "$STAGE/usr/share/icons" -type f -exec chmod 0644 {} +

install -m 0644 "$ROOT/packaging/linux/copyright" "$STAGE/usr/share/doc/$PACKAGE/copyright"
install -m 0644 "$ROOT/packaging/linux/lintian-overrides" \
    "$STAGE/usr/share/lintian/overrides/$PACKAGE"
DATE=$(date -u -R -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}")
printf '%s (%s) unstable; urgency=medium\n\n  * Release %s.\n\n -- %s  %s\n' \
    "$PACKAGE" "$VERSION" "$VERSION" "$MAINTAINER" "$DATE" \
    | gzip -9n > "$STAGE/usr/share/doc/$PACKAGE/changelog.gz"
chmod 0644 "$STAGE/usr/share/doc/$PACKAGE/changelog.gz"

INSTALLED_SIZE=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
cat > "$STAGE/DEBIAN/control" <<CONTROL
Package: $PACKAGE
Version: $VERSION
Architecture: $ARCH
Maintainer: $MAINTAINER
Installed-Size: $INSTALLED_SIZE
Depends: $DEPENDS
Recommends: $RECOMMENDS
Section: utils
Priority: optional
Description: desktop payout console for the Cactus payment gateway
 Cactus Desk lets finance staff send one-off payouts through the Cactus
 payment gateway and review what was sent. The site salt stays in the
 system keyring; an embedded sandbox gateway lets you try it end to end.
CONTROL
(cd "$STAGE" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | LC_ALL=C sort \
    | xargs -d '\n' md5sum > DEBIAN/md5sums)
chmod 0644 "$STAGE/DEBIAN/control" "$STAGE/DEBIAN/md5sums"

mkdir -p "$OUTDIR"
dpkg-deb --root-owner-group "-Z$COMPRESS" --build "$STAGE" "$OUT" >/dev/null
echo "$OUT"
