#!/usr/bin/env bash
# Installs the toolchain the threaded wasm core is built with, unless present, and prints its
# name. Threads in the browser need std itself compiled with wasm atomics (`-Z build-std`), which
# only a nightly toolchain does; it is pinned so that every build makes the same module.
# Used by setup.sh and build-npm.sh.
source "$(dirname "$0")/steps.sh"

toolchain=nightly-2026-05-20
# No toolchain, or no rustup at all, reads as "not installed".
installed="$(rustup component list --toolchain "$toolchain" --installed 2>/dev/null || true)"
if ! grep -q '^rust-src' <<<"$installed"; then
    step "installing the Rust toolchain $toolchain with rust-src (the threaded wasm core): about a minute" \
        "rustup must reach its distribution server; try 'rustup toolchain install $toolchain --profile minimal --component rust-src' by hand"
    rustup toolchain install "$toolchain" --profile minimal --component rust-src >&2
fi
echo "$toolchain"
