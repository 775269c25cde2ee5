#!/usr/bin/env bash
# Build the Playground bundle, archive it, and smoke-test the archive's binary in a clean environment.
#   packaging/build.sh            -> dist/playground-<version>-linux-x86_64.tar.gz (exit 0 only if --self-test passed)
#   PYTHON=... packaging/build.sh   use another interpreter (default: .venv/bin/python)
#   SKIP_SELF_TEST=1                build and archive only
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
VERSION=$("$PYTHON" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
ARCH=$(uname -m)
NAME="playground-$VERSION-linux-$ARCH"

if ! "$PYTHON" -c 'import PyInstaller' 2>/dev/null; then
    "$PYTHON" -m pip install --quiet "pyinstaller==6.22.*"
fi
if [ -z "${PLAYGROUND_EMBEDDED_GGUF:-}" ]; then
    # The bundle carries the embedded model's GGUF; fetch it once into the data dir if this host lacks it.
    PLAYGROUND_EMBEDDED_GGUF=$("$PYTHON" - <<'PY'
from playground.models.embedded import GGUF_NAME, _find_or_fetch_gguf
from playground import paths
print(_find_or_fetch_gguf(lambda e: None) if not (paths.downloads_dir() / GGUF_NAME).is_file()
      else paths.downloads_dir() / GGUF_NAME)
PY
)
    export PLAYGROUND_EMBEDDED_GGUF
fi

start=$(date +%s)
"$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath build/pyinstaller packaging/playground.spec
built=$(date +%s)
# Users install from the unpacked folder: ./install.sh puts it in ~/.local (see packaging/README.md).
cp packaging/linux/install.sh packaging/linux/playground.desktop dist/playground/
# QtWebEngine (6.11) creates this empty folder on every start if it is missing: ship it, so nothing is written.
mkdir -p dist/playground/_internal/PySide6/Qt/resources/locales
tar -C dist -czf "dist/$NAME.tar.gz" --transform "s,^playground,$NAME," playground
end=$(date +%s)
echo "built dist/playground in $((built - start)) s, archived in $((end - built)) s"
echo "bundle: $(du -sh dist/playground | cut -f1) unpacked, $(du -h "dist/$NAME.tar.gz" | cut -f1) archive ($NAME.tar.gz)"

if [ -n "${SKIP_SELF_TEST:-}" ]; then
    exit 0
fi
# Unpack elsewhere and run the frozen binary with a clean environment: no venv, no PYTHONPATH, a fresh HOME.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -C "$tmp" -xzf "dist/$NAME.tar.gz"
chmod -R a-w "$tmp/$NAME"  # the bundle must not write inside its own folder
mkdir "$tmp/home"
set +e
env -i HOME="$tmp/home" PATH=/usr/bin:/bin LANG=C.UTF-8 "$tmp/$NAME/playground" --self-test
rc=$?
set -e
chmod -R u+w "$tmp/$NAME"
echo "self-test of the unpacked bundle: exit $rc"
exit $rc
