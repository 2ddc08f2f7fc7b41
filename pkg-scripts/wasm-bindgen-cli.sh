#!/usr/bin/env bash
# Installs wasm-bindgen's CLI at exactly the version of the wasm-bindgen crate in Cargo.lock (the
# two must match), unless that version is already on PATH. Used by setup.sh and build-npm.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
have="$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }')"
if [ "$have" != "$want" ]; then
    echo "wasm-bindgen-cli: installing version $want${have:+ (found $have)}"
    cargo install wasm-bindgen-cli --version "$want"
fi
