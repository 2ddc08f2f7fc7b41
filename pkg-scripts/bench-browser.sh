#!/usr/bin/env bash
# Torchlight against @wllama/wllama (llama.cpp in wasm) in headless Chromium, on the test model:
# load times from the network and from cache, time to first token, decode tokens/s, medians
# over runs, and the ratios. A benchmark, not a test: it prints numbers (tests/browser/bench/).
#
#   bash pkg-scripts/bench-browser.sh [--no-build] [--no-isolate] [--runs N] [--tokens N] [--prompt TEXT] [--backends cpu,gpu]
#                                     [--model /models/gemma-3-270m-q4_k_m.gguf]
#   bash pkg-scripts/bench-browser.sh --conversation [--no-build] [--no-isolate] [--runs N] [--tokens N] [--backend cpu|gpu]
#   bash pkg-scripts/bench-browser.sh --structured [--no-build] [--no-isolate] [--runs N] [--tokens N] [--backend cpu|gpu] [--schema FILE]
#
# --conversation measures the prompt cache instead (tests/browser/bench/conversation.js): each
# turn of a four-turn chat, time to first token with the cache and with a whole prefill.
# --structured measures structured output (tests/browser/bench/structured.js): decode speed and
# time to first token with a JSON schema against the same request without one.
#
# Builds the package unless --no-build. The page is served cross-origin isolated (COOP and COEP)
# so that wllama can also run 2 threads; --no-isolate serves it as a plain page, wllama 1 thread
# only. Needs chromium and `npm ci` in tests/browser (pkg-scripts/setup.sh installs both).
source "$(dirname "$0")/steps.sh"
cd "$(dirname "$0")/.."

build=1
script=tests/browser/bench/bench.js
server_args=(--isolated)
bench_args=()
for arg in "$@"; do
    case "$arg" in
        --no-build) build= ;;
        --no-isolate) server_args=() ;;
        --conversation) script=tests/browser/bench/conversation.js ;;
        --structured) script=tests/browser/bench/structured.js ;;
        *) bench_args+=("$arg") ;;
    esac
done

if [ -n "$build" ]; then
    bash pkg-scripts/build-npm.sh
fi
bash pkg-scripts/fetch-test-model.sh
bash pkg-scripts/fetch-test-model.sh gemma3

# The server prints its URL once listening; the bench reads it from the environment.
url_file="$(mktemp)"
node tests/browser/server.js "${server_args[@]}" >"$url_file" &
server=$!
trap 'kill "$server" 2>/dev/null; rm -f "$url_file"' EXIT
for _ in $(seq 50); do
    [ -s "$url_file" ] && break
    sleep 0.1
done
TORCHLIGHT_TEST_URL="$(head -n 1 "$url_file")"
export TORCHLIGHT_TEST_URL

node "$script" "${bench_args[@]}"
