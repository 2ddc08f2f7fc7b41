#!/usr/bin/env python3
"""Torchlight against llama.cpp on a model file llama.cpp itself requantized: a test.

llama.cpp (through llama-cpp-python's `llama_model_quantize`) requantizes the test model to its
Q2_K mix. The test model's rows are mostly 576 wide and K-quants need rows of 256, so the file
holds Q3_K (every ffn_down), Q4_0 and Q8_0 tensors: a real file with a K-quant below 4 bits,
written by the reference converter rather than by our tests.

Torchlight (the CLI, on each --backend) generates greedily from a plain prompt. llama.cpp then
evaluates prompt plus Torchlight's tokens and gives its logits at every position. Each token
Torchlight chose must be llama.cpp's top choice, or within MARGIN of it: two implementations
may break a near tie differently (their activation rounding differs), never more.

    python tests/golden/requantized_agreement.py --cli target/release/torchlight \\
        --model models/SmolLM2-135M-Instruct.Q4_1.gguf --backends cpu,gpu

Run with the python of pkg-scripts/setup-llama-server.sh's venv (llama-cpp-python). Exits 1 on
a disagreement, 3 when llama.cpp itself crashed (REFERENCE CRASHED).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import llama_cpp
import numpy as np

from requantize import _quiet, requantize as requantize_as

PROMPT = "The capital of France is Paris. The capital of Italy is"
TOKENS = 24
# Logits, in llama.cpp's own units: how far below llama.cpp's best a near tie may be.
MARGIN = 0.5


# llama.cpp runs in a child process of this script, so that its crashing (llama.cpp built with
# the wrong flags segfaults on some CPUs) is reported as the reference crashing, never as a
# disagreement or a Torchlight failure. Exit status 3 means the reference crashed.
REFERENCE_CRASHED = 3


def requantize(model: Path, out: Path) -> None:
    requantize_as(model, out, "Q2_K")


def logits(model: Path, generated: Path, out: Path) -> None:
    """llama.cpp's logits at every generated position, for each backend's tokens, into `out`."""
    llm = llama_cpp.Llama(model_path=str(model), n_ctx=128, logits_all=True, verbose=False, n_threads=2)
    prompt = llm.tokenize(PROMPT.encode())
    scores = {}
    for backend, tokens in json.loads(generated.read_text()).items():
        llm.reset()
        llm.eval(prompt + tokens)
        scores[backend] = np.array(llm.scores[len(prompt) - 1 : len(prompt) - 1 + len(tokens)])
    np.savez(out, prompt=np.array(prompt), **scores)


REFERENCE_TASKS = {"requantize": (requantize, "requantized the test model"), "logits": (logits, "evaluated the tokens")}


def reference(task: str, *paths: Path) -> None:
    """Runs a llama.cpp task in a child process; a crash there ends the test as the reference's."""
    run = subprocess.run([sys.executable, __file__, "--reference", task, *map(str, paths)], check=False)
    if run.returncode < 0:
        print(f"REFERENCE CRASHED: llama.cpp (llama-cpp-python) died of {signal.Signals(-run.returncode).name} "
              f"while it {REFERENCE_TASKS[task][1]}. This is the reference failing, not Torchlight. "
              "pkg-scripts/setup-llama-server.sh builds it for this CPU (no native flags, no AMX); "
              "to build it again: rm -rf ~/.cache/torchlight/llama-server && bash pkg-scripts/setup-llama-server.sh",
              file=sys.stderr)
        sys.exit(REFERENCE_CRASHED)
    if run.returncode != 0:
        sys.exit(f"llama.cpp failed ({task}, exit status {run.returncode})")


def torchlight(cli: str, model: Path, backend: str) -> dict:
    run = subprocess.run(
        [cli, "generate", "--model", str(model), "--prompt", PROMPT, "--max-tokens", str(TOKENS),
         "--json", "--backend", backend],
        capture_output=True, text=True, check=False,
    )
    if run.returncode != 0:
        sys.exit(f"torchlight --backend {backend} failed: {run.stderr.strip()}")
    return json.loads(run.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cli", required=True)
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--backends", default="cpu,gpu")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "requantized.gguf"
        reference("requantize", args.model, model)
        info = subprocess.run([args.cli, "info", str(model)], capture_output=True, text=True, check=True).stdout
        if "Q3_K" not in info:
            sys.exit(f"the requantized file holds no Q3_K tensors:\n{info}")

        ours = {backend: torchlight(args.cli, model, backend) for backend in args.backends.split(",")}
        generated, scored = Path(tmp) / "generated.json", Path(tmp) / "scores.npz"
        generated.write_text(json.dumps({backend: answer["tokens"] for backend, answer in ours.items()}))
        reference("logits", model, generated, scored)
        theirs = np.load(scored)

        failed = False
        for backend, answer in ours.items():
            if answer["prompt_tokens"] != len(theirs["prompt"]):
                sys.exit(f"{backend}: {answer['prompt_tokens']} prompt tokens, llama.cpp {len(theirs['prompt'])}")
            tokens = answer["tokens"]
            scores = theirs[backend]
            best = scores.max(axis=1)
            chosen = scores[np.arange(len(tokens)), tokens]
            top1 = int((chosen == best).sum())
            worst = float((best - chosen).max())
            print(f"{backend}: {top1}/{len(tokens)} tokens llama.cpp's top choice; "
                  f"the others at most {worst:.3f} below it (margin {MARGIN}); text {answer['text']!r}")
            if worst > MARGIN:
                failed = True
                at = int((best - chosen).argmax())
                print(f"{backend}: token {at} ({tokens[at]}) is {best[at] - chosen[at]:.3f} below llama.cpp's best "
                      f"({int(scores[at].argmax())})", file=sys.stderr)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--reference"]:
        llama_cpp.llama_log_set(_quiet, ctypes.c_void_p(0))
        REFERENCE_TASKS[sys.argv[2]][0](*map(Path, sys.argv[3:]))
    else:
        main()
