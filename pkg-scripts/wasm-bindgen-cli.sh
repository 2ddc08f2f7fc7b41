#!/usr/bin/env bash
# Installs wasm-bindgen's CLI at exactly the version of the wasm-bindgen crate in Cargo.lock (the
# two must match), unless that version is already on PATH. Used by setup.sh and build-npm.sh.
source "$(dirname "$0")/steps.sh"
cd "$(dirname "$0")/.."

want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
if [ -z "$want" ]; then
    echo "wasm-bindgen-cli: Cargo.lock names no wasm-bindgen crate" >&2
    exit 1
fi
# A missing or broken wasm-bindgen is an answer ("none"), not the end of the script.
have="$(wasm-bindgen --version 2>/dev/null || true)"
have="${have#wasm-bindgen }"
have="${have%% *}"
if [ "$have" != "$want" ]; then
    step "installing wasm-bindgen-cli $want${have:+ (found $have)} with cargo: a source build, 3 to 5 minutes on 2 cores" \
        "cargo must reach crates.io and find a C compiler (Debian: apt-get install gcc); try 'cargo install wasm-bindgen-cli --version $want' by hand"
    cargo install wasm-bindgen-cli --version "$want"
fi
