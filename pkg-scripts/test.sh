#!/usr/bin/env bash
# Every test: set up, run the Rust test suite (GPU tests on whatever Vulkan adapter exists,
# lavapipe in CI) natively and the CPU kernels on aarch64 under qemu, check that the core still
# builds for the browser, and run the npm package's tests in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
bash pkg-scripts/setup.sh

# Mesa's Vulkan loader warns on every device open without this; the warning is noise.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

cargo test --release --workspace
# The NEON kernels, cross-built for aarch64 and run under qemu.
bash pkg-scripts/test-aarch64.sh
# A file llama.cpp itself requantized (Q3_K among its tensors), against llama.cpp, on both backends.
llama_python="$(bash pkg-scripts/setup-llama-server.sh)"
"$llama_python" tests/golden/requantized_agreement.py --cli target/release/torchlight \
    --model models/SmolLM2-135M-Instruct.Q4_1.gguf --backends cpu,gpu
cargo build -p torchlight --target wasm32-unknown-unknown
# The npm package, built and run in headless Chromium against the native CLI.
bash pkg-scripts/test-browser.sh
echo "test.sh: all tests passed, the wasm32 build succeeded, and the npm package works in Chromium"
