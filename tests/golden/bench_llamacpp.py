#!/usr/bin/env python3
"""llama.cpp reference benchmark for the Torchlight test model (not a test).

    python3 tests/golden/bench_llamacpp.py --model models/SmolLM2-135M-Instruct.Q4_1.gguf --threads 2 --runs 3

Per run (fresh Llama object each time, CPU only):
  load      seconds to construct Llama(...) (model load + context creation;
            the GGUF is mmap'd, so after the first run it is in page cache)
  prefill   a --prompt-tokens prompt evaluated in one llama_decode batch;
            tokens/s = prompt tokens / seconds
  ttft      seconds from starting the prompt eval until the first generated
            token id is known (prefill + logits read + argmax)
  decode    --gen-tokens tokens, one llama_decode per token, each chosen by
            numpy argmax over the last logits row (no sampler; EOS ignored);
            tokens/s = gen tokens / seconds

No warm-up is done: every run is "cold" in the same way (new context, first
decode call included), which is what a user of a fresh process sees.
Prints the median of each metric on its own line, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np

try:
    import llama_cpp
    from llama_cpp import Llama
except ImportError:  # pragma: no cover - developer tool
    sys.exit("bench_llamacpp.py needs llama-cpp-python (pip install llama-cpp-python)")


FILLER = (
    "Rivers carry sediment from the mountains to the sea, and over thousands of "
    "years they build deltas, carve canyons and shift their beds across wide plains. "
    "In 1927 the Mississippi flooded 27,000 square miles; engineers answered with "
    "levees, spillways and a new respect for the water. "
)


def build_prompt(llm: Llama, n: int) -> list[int]:
    ids: list[int] = []
    while len(ids) < n:
        ids += llm.tokenize(FILLER.encode("utf-8"), add_bos=False, special=False)
    return ids[:n]


def last_logits(llm: Llama, n_vocab: int) -> np.ndarray:
    ptr = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
    return np.ctypeslib.as_array(ptr, shape=(n_vocab,))


def one_run(args) -> dict:
    t0 = time.perf_counter()
    llm = Llama(
        model_path=args.model,
        n_ctx=args.prompt_tokens + args.gen_tokens + 16,
        n_batch=max(512, args.prompt_tokens),
        n_ubatch=max(512, args.prompt_tokens),
        n_threads=args.threads,
        n_threads_batch=args.threads,
        logits_all=False,
        verbose=False,
        seed=0,
    )
    load_s = time.perf_counter() - t0

    n_vocab = llm.n_vocab()
    prompt = build_prompt(llm, args.prompt_tokens)
    llm.reset()

    t1 = time.perf_counter()
    llm.eval(prompt)
    t2 = time.perf_counter()
    tok = int(np.argmax(last_logits(llm, n_vocab)))
    t3 = time.perf_counter()

    generated = []
    t4 = time.perf_counter()
    for _ in range(args.gen_tokens):
        llm.eval([tok])
        tok = int(np.argmax(last_logits(llm, n_vocab)))
        generated.append(tok)
    t5 = time.perf_counter()

    llm.close()
    return {
        "load_s": load_s,
        "prefill_tok_s": len(prompt) / (t2 - t1),
        "ttft_s": t3 - t1,
        "decode_tok_s": args.gen_tokens / (t5 - t4),
        "generated_head": generated[:8],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--prompt-tokens", type=int, default=512)
    ap.add_argument("--gen-tokens", type=int, default=128)
    args = ap.parse_args()

    runs = []
    for i in range(args.runs):
        r = one_run(args)
        runs.append(r)
        print(
            f"run {i + 1}/{args.runs}: load {r['load_s']:.3f} s, prefill {r['prefill_tok_s']:.1f} tok/s, "
            f"ttft {r['ttft_s']:.3f} s, decode {r['decode_tok_s']:.1f} tok/s",
            file=sys.stderr,
        )

    med = {k: statistics.median(r[k] for r in runs) for k in ("load_s", "prefill_tok_s", "ttft_s", "decode_tok_s")}
    print(f"model_load_s         {med['load_s']:.3f}")
    print(f"prefill_tok_per_s    {med['prefill_tok_s']:.1f}   ({args.prompt_tokens}-token prompt, one batch)")
    print(f"ttft_s               {med['ttft_s']:.3f}")
    print(f"decode_tok_per_s     {med['decode_tok_s']:.1f}   ({args.gen_tokens} tokens, greedy argmax)")
    print(json.dumps({
        "engine": "llama.cpp via llama-cpp-python " + llama_cpp.__version__,
        "model": args.model.rsplit("/", 1)[-1],
        "threads": args.threads,
        "runs": args.runs,
        "prompt_tokens": args.prompt_tokens,
        "gen_tokens": args.gen_tokens,
        "median": {k: round(v, 4) for k, v in med.items()},
        "per_run": [{k: round(v, 4) for k, v in r.items() if k != "generated_head"} for r in runs],
    }))


if __name__ == "__main__":
    main()
