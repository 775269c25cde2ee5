#!/usr/bin/env bash
# Install (or, with --uninstall, remove) an unpacked Playground bundle for the current user; no root needed.
#   ./install.sh [BUNDLE_DIR]     BUNDLE_DIR: the unpacked playground-<version>-linux-<arch> folder
#                                 (default: the folder this script sits in, or the one above it)
#   ./install.sh --uninstall      removes the app, its menu entry and icon; your data dir is kept
set -euo pipefail
PREFIX=${PREFIX:-$HOME/.local}
APP_DIR="$PREFIX/opt/playground"
BIN="$PREFIX/bin/playground"
DESKTOP="$PREFIX/share/applications/playground.desktop"
ICON="$PREFIX/share/icons/hicolor/scalable/apps/playground.svg"
HERE=$(cd "$(dirname "$0")" && pwd)

if [ "${1:-}" = "--uninstall" ]; then
    rm -rf "$APP_DIR"
    rm -f "$BIN" "$DESKTOP" "$ICON"
    command -v update-desktop-database >/dev/null && update-desktop-database "$PREFIX/share/applications" || true
    data=${XDG_DATA_HOME:-$HOME/.local/share}/playground
    echo "Playground removed. Your sessions and converted models stay in $data (delete it to remove them too)."
    exit 0
fi

src=${1:-}
if [ -z "$src" ]; then
    for cand in "$HERE" "$HERE/.."; do
        if [ -x "$cand/playground" ]; then src=$cand; break; fi
    done
fi
if [ -z "$src" ] || [ ! -x "$src/playground" ]; then
    echo "usage: $0 BUNDLE_DIR   (the unpacked folder holding the 'playground' binary)" >&2
    exit 2
fi
src=$(cd "$src" && pwd)
desktop_src=$src/playground.desktop
[ -f "$desktop_src" ] || desktop_src=$HERE/playground.desktop
icon_src=$src/_internal/assets/icons/playground.svg

mkdir -p "$PREFIX/opt" "$(dirname "$BIN")" "$(dirname "$DESKTOP")" "$(dirname "$ICON")"
rm -rf "$APP_DIR.new"
cp -a "$src" "$APP_DIR.new"
rm -rf "$APP_DIR"
mv "$APP_DIR.new" "$APP_DIR"
ln -sf "$APP_DIR/playground" "$BIN"
sed "s|^Exec=.*|Exec=$APP_DIR/playground|" "$desktop_src" > "$DESKTOP"
cp "$icon_src" "$ICON"
command -v update-desktop-database >/dev/null && update-desktop-database "$PREFIX/share/applications" || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$PREFIX/share/icons/hicolor" || true
echo "Playground installed in $APP_DIR (menu entry: Playground; command: $BIN)."
