#!/usr/bin/env bash
# Native CPU side by side: Torchlight's CPU backend (`torchlight bench`) and llama.cpp (through
# llama-cpp-python, built for this CPU by setup-llama-server.sh: GGML_NATIVE off, AMX off, the
# AVX-512 sets this CPU has on) on the same GGUF, thread count and prompt, their runs
# alternating so that both see the same machine; then the medians and Torchlight's ratio to
# llama.cpp, under the CPU's name and the instruction sets that matter. A benchmark, not a test.
#
#   bash pkg-scripts/bench-native.sh [--model GGUF] [--threads "1 2"] [--runs 3]
#                                    [--prompt-tokens 512] [--decode-tokens 128]
#                                    [--kernels "avx2 avx512-vnni"] [--quant Q8_0]
#
# --kernels runs Torchlight once per named instruction set (`torchlight bench --kernels`), to
# compare them in the same run; by default the one Torchlight picks. --quant has llama.cpp
# requantize the model first (tests/golden/requantize.py, its own file types: Q8_0, Q4_K_M, ...)
# into models/, where bench-browser.sh --model /models/NAME also finds it.
source "$(dirname "$0")/steps.sh"
cd "$(dirname "$0")/.."

model=models/SmolLM2-135M-Instruct.Q4_1.gguf
threads="1 2"
runs=3
prompt_tokens=512
decode_tokens=128
kernels=""
quant=""
while [ $# -gt 0 ]; do
    case "$1" in
        --model) model="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        --prompt-tokens) prompt_tokens="$2"; shift 2 ;;
        --decode-tokens) decode_tokens="$2"; shift 2 ;;
        --kernels) kernels="$2"; shift 2 ;;
        --quant) quant="$2"; shift 2 ;;
        *) echo "bench-native: unknown option $1 (see the comment at the top of $0)" >&2; exit 2 ;;
    esac
done

bash pkg-scripts/fetch-test-model.sh >&2
python="$(bash pkg-scripts/setup-llama-server.sh)"
if [ -n "$quant" ]; then
    requantized="models/$(basename "${model%.gguf}" | sed 's/\.Q[0-9A-Z_]*$//').$quant.gguf"
    if [ ! -s "$requantized" ]; then
        step "requantizing $model to $quant with llama.cpp (tests/golden/requantize.py)"
        "$python" tests/golden/requantize.py "$model" "$requantized.part" --type "$quant"
        mv "$requantized.part" "$requantized"
    fi
    model="$requantized"
fi
step "building the torchlight CLI (cargo build --release)"
cargo build --release -p torchlight >&2

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
step "timing $model: $runs run(s) per engine and thread count, alternating (about a minute each)" \
    "a failing run's error is above"
for t in $threads; do
    for run in $(seq "$runs"); do
        for k in ${kernels:-best}; do
            flag=()
            if [ "$k" != best ]; then flag=(--kernels "$k"); fi
            ./target/release/torchlight bench --model "$model" --backend cpu --threads "$t" "${flag[@]}" \
                --prompt-tokens "$prompt_tokens" --decode-tokens "$decode_tokens" --runs 1 \
                | tail -n 1 >>"$out/torchlight-$t-$k.jsonl"
        done
        "$python" tests/golden/bench_llamacpp.py --model "$model" --threads "$t" --runs 1 \
            --prompt-tokens "$prompt_tokens" --gen-tokens "$decode_tokens" \
            | tail -n 1 >>"$out/llamacpp-$t.jsonl"
    done
done

python3 - "$out" "$model" "$threads" "${kernels:-best}" <<'EOF'
import json, pathlib, re, statistics, sys

out, model, threads, kernels = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
cpuinfo = pathlib.Path("/proc/cpuinfo").read_text()
name = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.M)
flags = set(re.search(r"^flags\s*:\s*(.*)$", cpuinfo, re.M).group(1).split())
sets = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags]
print(f"CPU: {name.group(1) if name else 'unknown'}; {', '.join(sets) or 'no AVX2'}")
print(f"model: {model}; medians of each engine's runs, alternating; ratios are Torchlight over llama.cpp (TTFT: lower is better)")
print(f"{'threads':>7}  {'engine':<44} {'prefill tok/s':>13} {'decode tok/s':>12} {'TTFT ms':>8}")

def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

for t in threads:
    theirs = rows(out / f"llamacpp-{t}.jsonl")
    llama = {
        "prefill": statistics.median(r["median"]["prefill_tok_s"] for r in theirs),
        "decode": statistics.median(r["median"]["decode_tok_s"] for r in theirs),
        "ttft": statistics.median(r["median"]["ttft_s"] * 1000 for r in theirs),
    }
    for k in kernels:
        ours = rows(out / f"torchlight-{t}-{k}.jsonl")
        mine = {
            "prefill": statistics.median(r["prefill_tokens_per_s"] for r in ours),
            "decode": statistics.median(r["decode_tokens_per_s"] for r in ours),
            "ttft": statistics.median(r["ttft_ms"] for r in ours),
        }
        label = f"Torchlight ({ours[0]['backend'].removeprefix('cpu: ')})"
        print(f"{t:>7}  {label:<44} {mine['prefill']:>13.1f} {mine['decode']:>12.1f} {mine['ttft']:>8.0f}")
        print(f"{'':>7}  {'  ratio to llama.cpp':<44} {mine['prefill'] / llama['prefill']:>12.2f}x {mine['decode'] / llama['decode']:>11.2f}x {mine['ttft'] / llama['ttft']:>7.2f}x")
    print(f"{t:>7}  {'llama.cpp (llama-cpp-python)':<44} {llama['prefill']:>13.1f} {llama['decode']:>12.1f} {llama['ttft']:>8.0f}")
EOF
