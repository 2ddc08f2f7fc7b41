#!/usr/bin/env bash
# A real OpenAI-compatible server for the cloud-fallback tests: llama.cpp's, through
# llama-cpp-python's `llama_cpp.server`, in a virtualenv under ~/.cache/torchlight. llama.cpp
# builds from source (about 5 minutes on 2 cores); the wheel is kept beside the virtualenv, so
# that happens once per machine. Prints the virtualenv's python.
set -euo pipefail

VERSION=0.3.36
cache="${TORCHLIGHT_CACHE:-$HOME/.cache/torchlight}"
venv="$cache/llama-server"
wheels="$cache/wheels"

if ! "$venv/bin/python" -c "import llama_cpp.server, uvicorn" 2>/dev/null; then
    as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
    # Debian's python3 needs python3-venv for `-m venv`, and a compiler and cmake for llama.cpp.
    if ! python3 -c "import ensurepip" 2>/dev/null || ! command -v cmake >/dev/null || ! command -v g++ >/dev/null; then
        echo "setup: installing python3-venv, cmake and g++ (llama.cpp server for the cloud tests)" >&2
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-dev cmake g++ >/dev/null
    fi
    echo "setup: installing llama-cpp-python $VERSION with its server into $venv (builds llama.cpp once)" >&2
    mkdir -p "$wheels"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip >&2
    "$venv/bin/pip" wheel -q --wheel-dir "$wheels" --find-links "$wheels" "llama-cpp-python==$VERSION" >&2
    "$venv/bin/pip" install -q --find-links "$wheels" "llama-cpp-python[server]==$VERSION" >&2
fi
echo "$venv/bin/python"
