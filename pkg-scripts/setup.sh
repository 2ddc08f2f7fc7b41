#!/usr/bin/env bash
# Installs what building and testing Torchlight needs on a fresh Debian machine, then fetches
# the test model. Idempotent: each step checks first. Used by generate.sh, test.sh and CI.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Vulkan on the CPU (Mesa's lavapipe), so the WGSL kernels run on machines without a GPU.
if ! dpkg -s mesa-vulkan-drivers libvulkan1 >/dev/null 2>&1; then
    echo "setup: installing mesa-vulkan-drivers (lavapipe)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo not found; install Rust with rustup first" >&2
    exit 1
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    echo "setup: adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
fi

# The threaded wasm core (CPU threads in the browser) is built with a pinned nightly and rust-src.
bash pkg-scripts/wasm-threads-toolchain.sh >/dev/null

# The npm package and its browser tests: wasm-bindgen's CLI at the crate's version, Node.js,
# headless Chromium (WebGPU on SwiftShader, no GPU needed) and playwright-core to drive it.
bash pkg-scripts/wasm-bindgen-cli.sh

if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' 2>/dev/null; then
    echo "setup: Node.js 20 or newer is needed (found: $(node --version 2>/dev/null || echo none))" >&2
    exit 1
fi

if ! command -v chromium >/dev/null 2>&1; then
    echo "setup: installing chromium (browser tests)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# npm ci again only when the lock file changed since the last install.
if [ ! -d tests/browser/node_modules ] || [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
    echo "setup: npm ci in tests/browser"
    (cd tests/browser && npm ci --no-audit --no-fund)
fi

bash pkg-scripts/fetch-test-model.sh
