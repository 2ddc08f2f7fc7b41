#!/usr/bin/env bash
# The main job: set up, then generate text with the test model on wgpu.
# Extra arguments go to `torchlight generate` (e.g. --prompt "..." --max-tokens 64).
source "$(dirname "$0")/steps.sh"
cd "$(dirname "$0")/.."
step "setting up (pkg-scripts/setup.sh)"
bash pkg-scripts/setup.sh
step "building the torchlight CLI (release): a few minutes the first time"
cargo build --release -p torchlight
if [ "$#" -eq 0 ]; then
    set -- --chat --prompt "Write one sentence about lighthouses." --max-tokens 48
fi
exec ./target/release/torchlight generate --model models/SmolLM2-135M-Instruct.Q4_1.gguf "$@"
