#!/usr/bin/env bash
# The npm package in a real browser: builds the package (unless --no-build), the demo site and
# the native CLI the tests compare against, serves pkg/, the test page, the site and models/ on
# 127.0.0.1,
# and runs tests/browser/*.test.js in headless Chromium with WebGPU (SwiftShader without a GPU).
# Needs chromium and `npm ci` in tests/browser (pkg-scripts/setup.sh installs both), and
# llama.cpp's server for the cloud tests (pkg-scripts/setup-llama-server.sh, called here).
source "$(dirname "$0")/steps.sh"
cd "$(dirname "$0")/.."

if [ "${1:-}" != "--no-build" ]; then
    bash pkg-scripts/build-npm.sh
fi
# The demo site around that package (tests/browser/site.test.js).
bash pkg-scripts/build-site.sh --no-build-package
step "building the torchlight CLI (release)"
cargo build --release -p torchlight

# The cloud tests' real OpenAI-compatible endpoint: llama.cpp's server (set up once per machine).
step "setting up llama.cpp's server (pkg-scripts/setup-llama-server.sh)"
TORCHLIGHT_LLAMA_PYTHON="$(bash pkg-scripts/setup-llama-server.sh)"
export TORCHLIGHT_LLAMA_PYTHON

# Mesa's Vulkan loader (the native CLI on lavapipe) warns without this.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

# The server prints its URL once listening; the tests read it from the environment.
url_file="$(mktemp)"
node tests/browser/server.js >"$url_file" &
server=$!
trap 'kill "$server" 2>/dev/null; rm -f "$url_file"' EXIT
for _ in $(seq 50); do
    [ -s "$url_file" ] && break
    sleep 0.1
done
TORCHLIGHT_TEST_URL="$(head -n 1 "$url_file")"
export TORCHLIGHT_TEST_URL

step "running tests/browser/*.test.js in headless Chromium"
cd tests/browser
node --test --test-concurrency=1 --test-reporter=spec
