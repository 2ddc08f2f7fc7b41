#!/usr/bin/env bash
# Builds the demo site and serves it on 127.0.0.1 (port $PORT, default 8080), with the test
# model from the catalog available beside it: open the URL it prints in a browser with WebGPU
# (a recent Chrome or Edge; Safari 26 and Firefox 141 on some systems). Installs what it needs
# first (pkg-scripts/setup.sh: the wasm toolchain, the test model, ...).
#
#   bash pkg-scripts/serve.sh [--base /app/] [--no-build-package]
#
# --base serves the site under a sub-path, as a static host might; --no-build-package reuses
# the npm package already in pkg/.
source "$(dirname "$0")/steps.sh"
cd "$(dirname "$0")/.."

build=()
serve=()
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build-package) build+=("$1") ;;
        --base) serve+=(--base "${2:?--base needs a path}"); shift ;;
        --base=*) serve+=("$1") ;;
        *) echo "usage: bash pkg-scripts/serve.sh [--base /app/] [--no-build-package]" >&2; exit 2 ;;
    esac
    shift
done

step "setting up (pkg-scripts/setup.sh)"
bash pkg-scripts/setup.sh
step "building the npm package and the site (pkg-scripts/build-site.sh)"
bash pkg-scripts/build-site.sh "${build[@]}"

echo "serve: the site is at the URL below (Ctrl+C stops it)"
exec node pkg-scripts/site/serve.js "${serve[@]}"
