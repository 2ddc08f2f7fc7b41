#!/usr/bin/env bash
# A stand-in for a tool that installs or probes (cargo, rustup, apt-get, dpkg, npm, python3,
# ...), linked under that tool's name by probes.test.mjs. It writes every call to $STUB_LOG and
# keeps what it "installed" under $STUB_STATE, answering later probes from there, so that a
# set-up script can be run on a machine that has none of the tools without installing anything.
set -u
name="$(basename "$0")"
echo "$name $*" >>"$STUB_LOG"
state="$STUB_STATE"
bin="$(dirname "$0")"
mkdir -p "$state"

# install_tool NAME OUTPUT: a tool on PATH that prints OUTPUT, as the real one's --version would.
install_tool() { printf '#!/bin/sh\necho "%s"\n' "$2" >"$bin/$1"; chmod +x "$bin/$1"; }

case "$name" in
    rustup)
        case "$*" in
            "target list --installed") cat "$state/targets" 2>/dev/null; echo x86_64-unknown-linux-gnu ;;
            "target add "*) echo "${*:3}" >>"$state/targets" ;;
            "component list --toolchain "*" --installed")
                grep -qx "$4" "$state/toolchains" 2>/dev/null || { echo "error: toolchain '$4' is not installed" >&2; exit 1; }
                echo rust-src ;;
            "toolchain install "*) echo "$3" >>"$state/toolchains" ;;
            *) echo "stub rustup: unexpected: $*" >&2; exit 2 ;;
        esac ;;
    cargo)
        case "$1" in
            install) [ "$2" = wasm-bindgen-cli ] && install_tool wasm-bindgen "wasm-bindgen $4 (stub)" ;;
            *) ;;  # builds and tests: nothing to do, nothing printed
        esac ;;
    apt-get)
        if [ "$1" != update ]; then
            for arg in "$@"; do
                case "$arg" in
                    -*|install) ;;
                    *)
                        echo "$arg" >>"$state/debs"
                        if [ "$arg" = chromium ]; then install_tool chromium "Chromium (stub)"; fi ;;
                esac
            done
        fi ;;
    dpkg)
        [ "$1" = -s ] || exit 2
        shift
        for package in "$@"; do grep -qx "$package" "$state/debs" 2>/dev/null || exit 1; done ;;
    npm)
        case "$1" in
            ci) mkdir -p node_modules && touch node_modules/.package-lock.json ;;
            *) exit 1 ;;  # npm exec (wasm-opt): not available
        esac ;;
    python3)
        case "$*" in
            "-m pip --version") echo "pip (stub)" ;;
            "-m pip download"*) echo "stub pip: PyPI is not reachable from this test" >&2; exit 1 ;;
            "-m venv "*) mkdir -p "$3/bin" && ln -sf "$0" "$3/bin/pip" && ln -sf "$0" "$3/bin/python" ;;
            *) exit 1 ;;  # no ensurepip, no modules
        esac ;;
    pip)  # a virtualenv's pip
        echo "  CMAKE_ARGS=${CMAKE_ARGS:-}" >>"$STUB_LOG"
        case "$1" in
            wheel) wheels="$(sed -n 's/.*--wheel-dir \([^ ]*\).*/\1/p' <<<"$*")"; touch "$wheels/llama_cpp_python-stub.whl" ;;
            install) touch "$state/llama-installed" ;;
        esac ;;
    python)  # a virtualenv's python: has llama_cpp once its pip installed it
        [ -e "$state/llama-installed" ] ;;
    sudo) exec "$@" ;;
    *) echo "stub: no behaviour for $name" >&2; exit 2 ;;
esac
