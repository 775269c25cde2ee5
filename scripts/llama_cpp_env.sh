#!/usr/bin/env bash
# Builds llama-cpp-python (with its OpenAI-compatible server) into a cached venv outside the project.
# It compiles llama.cpp from source (~12 min on 2 cores), so neither set-up nor the default test run does this;
# the speed bench (bench/decode_speed.py) and the remote-engine peer tests (pytest -m llama_cpp) use it.
# Prints the venv's python on the last line.
set -euo pipefail
VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
ROOT="${PLAYGROUND_BENCH_CACHE:-$HOME/.cache/playground-bench}"
VENV="$ROOT/llama-cpp-$VERSION"
if [[ -x "$VENV/bin/python" ]] && [[ -f "$VENV/.built" ]]; then
    echo "$VENV/bin/python"
    exit 0
fi
mkdir -p "$ROOT"
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip >&2
# Not GGML_NATIVE: on VMs that report AMX without granting it (as here), native builds die with SIGILL in
# ggml's AMX matmul. Explicit flags give llama.cpp the best vector ISA the CPU really runs, minus AMX.
if [[ -z "${CMAKE_ARGS:-}" ]]; then
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
    for flag in avx512f avx512_vnni avx512_bf16 avx512vbmi; do
        if grep -qw "$flag" /proc/cpuinfo 2>/dev/null; then
            case $flag in
                avx512f) CMAKE_ARGS+=" -DGGML_AVX512=ON" ;;
                avx512_vnni) CMAKE_ARGS+=" -DGGML_AVX512_VNNI=ON" ;;
                avx512_bf16) CMAKE_ARGS+=" -DGGML_AVX512_BF16=ON" ;;
                avx512vbmi) CMAKE_ARGS+=" -DGGML_AVX512_VBMI=ON" ;;
            esac
        fi
    done
fi
echo "building llama-cpp-python $VERSION (compiles llama.cpp, ~12 min) with $CMAKE_ARGS" >&2
CMAKE_ARGS="$CMAKE_ARGS" "$VENV/bin/pip" install --quiet --no-cache-dir "llama-cpp-python[server]==$VERSION" >&2
"$VENV/bin/python" -c "import llama_cpp, llama_cpp.server" >&2
touch "$VENV/.built"
echo "$VENV/bin/python"
