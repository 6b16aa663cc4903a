#!/bin/sh
# Put "dist/Cactus Desk.app" (from `pyinstaller packaging/cactus-desk.spec` on macOS) into a
# compressed disk image, dist/cactus-desk-<version>-macos.dmg, with a link to /Applications
# so people drag the app across. Needs hdiutil, so it runs on macOS only.
#
# Environment (all optional): PYTHON (reads the version; default python3), VERSION, APP
# (default "dist/Cactus Desk.app"), OUTDIR (default dist).
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PYTHON=${PYTHON:-python3}
APP=${APP:-$ROOT/dist/Cactus Desk.app}
OUTDIR=${OUTDIR:-$ROOT/dist}

die() { echo "build-dmg: $*" >&2; exit 1; }

command -v hdiutil >/dev/null || die "hdiutil is missing: build the disk image on macOS"
[ -d "$APP" ] || die "no app bundle at $APP; build it first with PyInstaller on macOS"
if [ -z "${VERSION:-}" ]; then
    VERSION=$("$PYTHON" -c 'import importlib.metadata as m; print(m.version("cactus-desk"))') \
        || die "could not read the version; set VERSION or PYTHON"
fi

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"

mkdir -p "$OUTDIR"
OUT="$OUTDIR/cactus-desk-$VERSION-macos.dmg"
hdiutil create -volname "Cactus Desk" -srcfolder "$STAGE" -fs HFS+ -format UDZO -ov "$OUT" \
    >/dev/null
hdiutil verify "$OUT" >/dev/null
echo "$OUT"
