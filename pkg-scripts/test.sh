#!/usr/bin/env bash
# Every test: set up, run the Rust test suite (GPU tests on whatever Vulkan adapter exists,
# lavapipe in CI) natively and the CPU kernels on aarch64 under qemu, check that the core still
# builds for the browser, and run the npm package's tests in headless Chromium, then the packed
# package inside web apps built by each bundler.
source "$(dirname "$0")/steps.sh"
cd "$(dirname "$0")/.."
TESTS_FAILED="a test failed: its report is above"

# First, with nothing installed yet: the set-up scripts on a simulated fresh machine.
step "testing the set-up scripts with their tools absent (tests/setup)" "$TESTS_FAILED"
node --test --test-reporter=spec tests/setup/probes.test.mjs

step "setting up (pkg-scripts/setup.sh)"
bash pkg-scripts/setup.sh

# Mesa's Vulkan loader warns on every device open without this; the warning is noise.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

# llama.cpp, the reference: it writes the goldens of the tiny models of every family, which
# the Rust tests (crate/tests/families.rs) compare with.
step "setting up llama.cpp (pkg-scripts/setup-llama-server.sh)"
llama_python="$(bash pkg-scripts/setup-llama-server.sh)"
step "writing tiny models of every family and llama.cpp's logits for them (tests/golden/families.py)" "$TESTS_FAILED"
"$llama_python" tests/golden/families.py --out target/families
step "writing hostile model files the CLI and the package must refuse cleanly (tests/hostile/make_hostile.py)" "$TESTS_FAILED"
"$llama_python" tests/hostile/make_hostile.py --model models/SmolLM2-135M-Instruct.Q4_1.gguf --out target/hostile

step "building and running the Rust tests (cargo test --release --workspace)" "$TESTS_FAILED"
cargo test --release --workspace
# The fuzz targets (crate/fuzz/), run briefly so they keep building and running, with every
# past finding in crate/fuzz/regressions/; a search runs them longer (pkg-scripts/fuzz.sh).
step "fuzzing the header reader and chat templates briefly (pkg-scripts/fuzz.sh)" "$TESTS_FAILED"
bash pkg-scripts/fuzz.sh 20000
# The NEON kernels, cross-built for aarch64 and run under qemu.
step "testing the NEON kernels on aarch64 under qemu (pkg-scripts/test-aarch64.sh)" "$TESTS_FAILED"
bash pkg-scripts/test-aarch64.sh
# A file llama.cpp itself requantized (Q3_K among its tensors), against llama.cpp, on both backends.
step "comparing with llama.cpp on a file it requantized (tests/golden/requantized_agreement.py)" "$TESTS_FAILED"
"$llama_python" tests/golden/requantized_agreement.py --cli target/release/torchlight \
    --model models/SmolLM2-135M-Instruct.Q4_1.gguf --backends cpu,gpu
step "building the core for wasm32-unknown-unknown"
cargo build -p torchlight --target wasm32-unknown-unknown
# The npm package, built and run in headless Chromium against the native CLI.
step "testing the npm package in headless Chromium (pkg-scripts/test-browser.sh)" "$TESTS_FAILED"
bash pkg-scripts/test-browser.sh
# The same package as web developers get it: packed, installed into an app per bundler (Vite,
# Next.js with Turbopack and with webpack, esbuild, none), built and answering in Chromium.
step "testing the packed npm package in apps built by Vite, Next.js and esbuild (pkg-scripts/test-bundlers.sh)" "$TESTS_FAILED"
bash pkg-scripts/test-bundlers.sh --no-build
echo "test.sh: all tests passed, the wasm32 build succeeded, and the npm package works in Chromium, bundled or not"
