#!/usr/bin/env bash
# The main job: set up, then generate text with the test model on wgpu.
# Extra arguments go to `torchlight generate` (e.g. --prompt "..." --max-tokens 64).
set -euo pipefail
cd "$(dirname "$0")/.."
bash pkg-scripts/setup.sh
cargo build --release -p torchlight
if [ "$#" -eq 0 ]; then
    set -- --chat --prompt "Write one sentence about lighthouses." --max-tokens 48
fi
exec ./target/release/torchlight generate --model models/SmolLM2-135M-Instruct.Q4_1.gguf "$@"
