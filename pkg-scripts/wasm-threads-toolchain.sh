#!/usr/bin/env bash
# Installs the toolchain the threaded wasm core is built with, unless present, and prints its
# name. Threads in the browser need std itself compiled with wasm atomics (`-Z build-std`), which
# only a nightly toolchain does; it is pinned so that every build makes the same module.
# Used by setup.sh and build-npm.sh.
set -euo pipefail

toolchain=nightly-2026-05-20
if ! rustup component list --toolchain "$toolchain" --installed 2>/dev/null | grep -q '^rust-src'; then
    echo "wasm-threads-toolchain: installing $toolchain with rust-src" >&2
    rustup toolchain install "$toolchain" --profile minimal --component rust-src >&2
fi
echo "$toolchain"
