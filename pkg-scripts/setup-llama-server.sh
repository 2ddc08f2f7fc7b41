#!/usr/bin/env bash
# llama.cpp, the reference, through llama-cpp-python (its `llama_cpp.server` is a real
# OpenAI-compatible server for the cloud tests; its bindings serve requantized_agreement.py and
# the benchmarks), in a virtualenv under ~/.cache/torchlight, with llama.cpp's `gguf` package
# (tests/golden/families.py writes its tiny models with it). Prints the virtualenv's python.
#
# llama.cpp builds from source (about 5 minutes on 2 cores), once per machine and CPU build
# flags. Not with its default native flags: on Intel Xeons with AMX those builds segfault on the
# first decode. The flags name the instruction sets this CPU has (AVX2 and FMA; AVX-512 and its
# VNNI, VBMI and BF16 where /proc/cpuinfo has them) and turn AMX off. The wheel is kept in a
# folder named by those flags and pip's own cache is bypassed, so a wheel built with other
# flags (a crashing native one, or one for another CPU) is never reused.
source "$(dirname "$0")/steps.sh"

VERSION=0.3.36
# The gguf-py that llama-cpp-python $VERSION's llama.cpp carries (vendor/llama.cpp/gguf-py).
GGUF_VERSION=0.19.0
cache="${TORCHLIGHT_CACHE:-$HOME/.cache/torchlight}"
venv="$cache/llama-server"

cmake_args="-DGGML_NATIVE=OFF"
if [ "$(uname -m)" = x86_64 ]; then
    flags="$(grep -m1 '^flags' /proc/cpuinfo || true)"
    has() { grep -qw "$1" <<<"$flags"; }
    cmake_args+=" -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
    for pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C avx_vnni:AVX_VNNI avx512f:AVX512 \
        avx512_vbmi:AVX512_VBMI avx512vbmi:AVX512_VBMI avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16; do
        if has "${pair%%:*}"; then cmake_args+=" -DGGML_${pair#*:}=ON"; fi
    done
fi
# The same flags twice (avx512_vbmi and avx512vbmi spell one feature) make the same key.
cmake_args="$(tr ' ' '\n' <<<"$cmake_args" | sort -u | tr '\n' ' ')"
cmake_args="${cmake_args% }"
key="$(printf '%s %s' "$VERSION" "$cmake_args" | sha256sum | cut -c1-12)"
wheels="$cache/wheels/llama-cpp-python-$key"
stamp="$venv/torchlight-build"

if [ "$(cat "$stamp" 2>/dev/null || true)" != "$VERSION $cmake_args" ] \
    || ! "$venv/bin/python" -c "import llama_cpp.server, uvicorn, numpy" 2>/dev/null; then
    # Debian's python3 needs python3-venv for `-m venv`, and a compiler and cmake for llama.cpp.
    if ! python3 -c "import ensurepip" 2>/dev/null || ! command -v cmake >/dev/null || ! command -v g++ >/dev/null; then
        step "installing python3-venv, cmake and g++ with apt-get (to build llama.cpp)" \
            "try 'apt-get install python3-venv python3-dev cmake g++' by hand"
        apt_install python3-venv python3-dev cmake g++
    fi
    step "building llama-cpp-python $VERSION (llama.cpp) with $cmake_args into $venv: about 5 minutes on 2 cores, once per machine" \
        "pip must reach PyPI, and cmake and g++ must work; the build's own errors are above"
    rm -rf "$venv"
    mkdir -p "$wheels"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --no-cache-dir --upgrade pip >&2
    CMAKE_ARGS="$cmake_args" "$venv/bin/pip" wheel -q --no-cache-dir --wheel-dir "$wheels" \
        --find-links "$wheels" "llama-cpp-python==$VERSION" >&2
    "$venv/bin/pip" install -q --no-cache-dir --find-links "$wheels" "llama-cpp-python[server]==$VERSION" >&2
    echo "$VERSION $cmake_args" >"$stamp"
fi
# Apart from the build, so that a virtualenv made before gguf was needed keeps its llama.cpp.
if [ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("gguf"))' 2>/dev/null || true)" \
    != "$GGUF_VERSION" ]; then
    step "installing gguf $GGUF_VERSION into $venv (the tiny models of tests/golden/families.py)" \
        "pip must reach PyPI; the errors are above"
    "$venv/bin/pip" install -q --no-cache-dir "gguf==$GGUF_VERSION" >&2
fi
echo "$venv/bin/python"
