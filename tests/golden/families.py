#!/usr/bin/env python3
"""Tiny random-weight models of five families, and llama.cpp's logits on them: reference data.

    "$(bash pkg-scripts/setup-llama-server.sh)" tests/golden/families.py --out target/families

For each family (llama3, qwen2, qwen3, gemma3, phi3) this writes a small GGUF at F16 with the
metadata keys, tensor names and tensor types llama.cpp's converter (convert_hf_to_gguf.py) writes
for that architecture, every optional tensor of the family present; llama.cpp itself then
requantizes it to a few types and evaluates every file, teacher-forced, over one fixed random
token sequence in one batch. Each `<family>-<type>.gguf` gets `<family>-<type>.json`: llama.cpp's
full-vocabulary logits at every position. `manifest.json` lists the cases. Three more files serve
the loader's error tests and carry no logits: qwen3-extra-tensor.gguf, qwen3-missing-tensor.gguf
and qwen3-thinking.gguf. The byte-level BPE vocabularies (qwen2's and qwen3-thinking's with the
`qwen2` pre-tokenizer, llama3's with `llama-bpe`) get `<name>-tokenize.json`: llama.cpp's token
ids and detokenized text for make_golden.py's awkward strings and BPE_TOKENIZE_CASES, listed in
`tokenize.json`. tests/golden/README.md says what each file holds and why.

Everything is seeded: two runs give the same files for a given llama.cpp build and CPU. llama.cpp
runs in a child process, so that its crashing is reported as REFERENCE CRASHED (exit status 3),
never as a bad model or a bad golden.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import re
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import gguf
import numpy as np

# The teacher-forced sequence: one batch of SEQ_LEN tokens in a context of N_CTX.
SEQ_LEN = 48
N_CTX = 256
SEED = 20260509

# The types llama.cpp requantizes each family's F16 file to. Together they cover a legacy type
# (Q5_0), Q8_0, Q6_K and llama.cpp's Q4_K_M mix (Q4_K with Q6_K for some tensors).
QUANTS = {
    "llama3": ("q8_0", "q4_k_m"),
    "qwen2": ("q5_0", "q6_k"),
    "qwen3": ("q8_0", "q4_k_m"),
    "gemma3": ("q8_0", "q4_k_m"),
    "phi3": ("q8_0", "q5_0"),
}
FTYPES = {
    "q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "q6_k": "LLAMA_FTYPE_MOSTLY_Q6_K",
    "q5_0": "LLAMA_FTYPE_MOSTLY_Q5_0",
    "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
}

# Qwen3's chat template, byte for byte as Qwen/Qwen3-0.6B's tokenizer_config.json has it (llama.cpp
# keeps the same text as models/templates/Qwen-Qwen3-0.6B.jinja, sha256 87a2728c...). Test data:
# the thinking switch (`enable_thinking`) is what the chat tests exercise.
QWEN3_CHAT_TEMPLATE = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content + '\n\n' }}
    {%- endif %}
    {{- "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {%- set content = message.content %}
        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is defined and message.reasoning_content is not none %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- else %}
            {%- if '</think>' in message.content %}
                {%- set content = message.content.split('</think>')[-1].lstrip('\n') %}
                {%- set reasoning_content = message.content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}
            {%- endif %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index %}
            {%- if loop.last or (not loop.last and reasoning_content) %}
                {{- '<|im_start|>' + message.role + '\n<think>\n' + reasoning_content.strip('\n') + '\n</think>\n\n' + content.lstrip('\n') }}
            {%- else %}
                {{- '<|im_start|>' + message.role + '\n' + content }}
            {%- endif %}
        {%- else %}
            {{- '<|im_start|>' + message.role + '\n' + content }}
        {%- endif %}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- if (loop.first and content) or (not loop.first) %}
                    {{- '\n' }}
                {%- endif %}
                {%- if tool_call.function %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {{- '<tool_call>\n{"name": "' }}
                {{- tool_call.name }}
                {{- '", "arguments": ' }}
                {%- if tool_call.arguments is string %}
                    {{- tool_call.arguments }}
                {%- else %}
                    {{- tool_call.arguments | tojson }}
                {%- endif %}
                {{- '}\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- endif %}
{%- endif %}"""

# The text the tiny tokenizers' merges are learnt from, so that their pieces are English-like and
# a test that tokenizes a sentence gets multi-byte tokens, not only bytes.
CORPUS = """\
A lighthouse keeps its light burning through the night, and every ship that passes
reads the same signal: a long flash, two short ones, then darkness for nine seconds.
The keeper climbs one hundred and twelve steps at dusk. She trims the wick, cleans the
lens, and writes the weather in a book: wind from the west at 25 knots, rain after 3 a.m.,
visibility poor. In the morning she climbs again to put the light out.

Before there were lamps of glass and brass, people carried fire in their hands. A torch
was a stick wrapped in cloth and soaked in resin or fat; it burned for about an hour.
Travellers who walked at night carried several, lighting each new one from the last.
Miners, soldiers and watchmen all depended on them, and a city at night was a scatter of
small moving lights.

Light travels at nearly 300,000 kilometres per second. It takes about eight minutes to
reach us from the Sun, and a little over a second from the Moon. When you look at a star,
you see light that left it long ago; some of those stars may have changed since then.

Why does a candle flame point upward? Hot air rises, and the flame follows it. In space,
without gravity to make the warm air rise, a candle burns as a small blue sphere. Its
light is weaker, and it goes out sooner, because fresh air does not flow in to feed it.

The first electric lamps were arc lamps: two carbon rods with a spark jumping between them.
They were far too bright for a home, so streets and factories used them first. Later came
the filament bulb, which glowed because a thin wire grew hot; most of its energy became
heat, not light. Today a small LED gives the same light for a tenth of the power, and it
can last for twenty years.

Questions to think about:
1. How would you signal to a friend across a valley at night, without a phone?
2. Which uses more energy: ten candles or one old bulb?
3. What would change in your town if the street lights went out for a week?

"Keep a light in the window," my grandmother used to say, "so that whoever is late can
find the way home." We still do, even though everyone has a map in their pocket now.
"""


@dataclass
class Vocab:
    """A tokenizer as GGUF stores it: the `tokenizer.ggml.*` keys."""

    model: str  # "gpt2" (byte-level BPE) or "llama" (SentencePiece)
    pre: str
    tokens: list[str]
    types: list[int]
    special: dict[str, str]  # "bos", "eos", ... -> token text
    add_bos: bool
    merges: list[str] | None = None
    scores: list[float] | None = None
    add_space_prefix: bool | None = None
    chat_template: str | None = None

    def id(self, token: str) -> int:
        return self.tokens.index(token)

    def ordinary_ids(self) -> list[int]:
        """The ids a random test sequence draws from: no control or unused tokens."""
        ordinary = (gguf.TokenType.NORMAL, gguf.TokenType.BYTE)
        return [i for i, kind in enumerate(self.types) if kind in ordinary]


@dataclass
class Model:
    arch: str
    vocab: Vocab
    # (GGUFWriter method, value) for the architecture's own keys, as the converter writes them.
    hparams: list[tuple[str, object]]
    tensors: dict[str, np.ndarray]


@dataclass(frozen=True)
class Dims:
    width: int
    ffn: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim


# ---------------------------------------------------------------------------------------------
# Tokenizers


def byte_level_alphabet() -> list[tuple[int, str]]:
    """GPT-2's byte-to-symbol table, (byte, symbol), in the order byte-level vocabularies (GPT-2,
    Llama 3, Qwen) give the 256 bytes their first ids: printable Latin-1 bytes stand for
    themselves, the others map to U+0100 upwards."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    others = [b for b in range(256) if b not in printable]
    return [(b, chr(b)) for b in printable] + [(b, chr(0x100 + n)) for n, b in enumerate(others)]


def learn_merges(words: Counter[tuple[str, ...]], count: int) -> list[tuple[str, str]]:
    """Byte-pair encoding's training loop: merge the most frequent adjacent pair, `count` times.
    Ties go to the smallest pair, so the merges never depend on dict order."""
    merges = []
    for _ in range(count):
        pairs: Counter[tuple[str, str]] = Counter()
        for word, n in words.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += n
        if not pairs:
            sys.exit(f"the corpus allows only {len(merges)} merges, not {count}")
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        merges.append(best)
        words = Counter({merge_pair(word, best): n for word, n in words.items()})
    return merges


def merge_pair(word: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    out, i = [], 0
    while i < len(word):
        if word[i : i + 2] == pair:
            out.append(pair[0] + pair[1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def byte_level_vocab(merge_count: int, specials: list[str], pre: str, special: dict[str, str],
                     add_bos: bool, user_defined: tuple[str, ...] = ()) -> Vocab:
    """A byte-level BPE vocabulary (`gpt2` model): the 256 byte symbols, the learnt merges' tokens,
    then the added tokens, as Llama 3's and Qwen's are laid out. Added tokens are control tokens
    except `user_defined` ones (Qwen3's <think>, which its tokenizer does not mark special)."""
    alphabet = dict(byte_level_alphabet())
    # GPT-2's pre-tokenizer, simplified: a word keeps the space before it. Digit runs stay whole so
    # that merges such as "00" and "112" exist, which Llama 3's pre-tokenizer (digits in threes)
    # and Qwen's (one by one) then allow differently.
    pieces = re.findall(r" ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+", CORPUS)
    words = Counter(tuple(alphabet[b] for b in piece.encode()) for piece in pieces)
    merges = learn_merges(words, merge_count)
    # Two merges can make the same token ("ab c" and "a bc"); a vocabulary holds it once.
    tokens = list(dict.fromkeys([symbol for _, symbol in byte_level_alphabet()] + [a + b for a, b in merges]))
    types = [gguf.TokenType.NORMAL] * len(tokens)
    for token in specials:
        tokens.append(token)
        types.append(gguf.TokenType.USER_DEFINED if token in user_defined else gguf.TokenType.CONTROL)
    return Vocab("gpt2", pre, tokens, types, special, add_bos, merges=[f"{a} {b}" for a, b in merges])


def sentencepiece_vocab(merge_count: int, head: list[tuple[str, int]], tail: list[tuple[str, int]],
                        special: dict[str, str], add_bos: bool, add_space_prefix: bool) -> Vocab:
    """A SentencePiece BPE vocabulary (`llama` model) as llama.cpp's converter writes one: `head`
    (special tokens and their types), the 256 byte-fallback tokens <0x00>..<0xFF>, the learnt
    pieces (spaces as U+2581) and the corpus's characters, then `tail` (added tokens). llama.cpp's
    tokenizer merges the pair whose piece scores highest first, so earlier merges score higher."""
    words = Counter(tuple("\u2581" + word) for word in CORPUS.split())
    merges = learn_merges(words, merge_count)
    characters = sorted({ch for word in words for ch in word})
    pieces = list(dict.fromkeys(a + b for a, b in merges))  # once each, as above
    tokens = [token for token, _ in head] + [f"<0x{b:02X}>" for b in range(256)] + pieces + characters
    types = ([kind for _, kind in head] + [gguf.TokenType.BYTE] * 256
             + [gguf.TokenType.NORMAL] * (len(pieces) + len(characters)))
    scores = [0.0] * (len(head) + 256) + [-float(rank) for rank in range(len(pieces) + len(characters))]
    for token, kind in tail:
        tokens.append(token)
        types.append(kind)
        scores.append(0.0)
    return Vocab("llama", "default", tokens, types, special, add_bos, scores=scores,
                 add_space_prefix=add_space_prefix)


LLAMA3_SPECIALS = [
    "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>", "<|start_header_id|>", "<|end_header_id|>",
    "<|eom_id|>", "<|eot_id|>", "<|python_tag|>",
]
QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
QWEN_SPECIAL_IDS = {"bos": "<|endoftext|>", "eos": "<|im_end|>", "pad": "<|endoftext|>"}


def write_vocab(writer: gguf.GGUFWriter, vocab: Vocab) -> None:
    writer.add_tokenizer_model(vocab.model)
    writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    if vocab.scores is not None:
        writer.add_token_scores(vocab.scores)
    writer.add_token_types(vocab.types)
    if vocab.merges is not None:
        writer.add_token_merges(vocab.merges)
    for role, token in vocab.special.items():
        getattr(writer, f"add_{role}_token_id")(vocab.id(token))
    writer.add_add_bos_token(vocab.add_bos)
    writer.add_add_eos_token(False)
    if vocab.add_space_prefix is not None:
        writer.add_add_space_prefix(vocab.add_space_prefix)
    if vocab.chat_template is not None:
        writer.add_chat_template(vocab.chat_template)


# ---------------------------------------------------------------------------------------------
# Weights


class Weights:
    """Random tensors in the types llama.cpp's converter gives them at F16: matrices F16, vectors
    (norms, biases, rope factors) F32.

    A matrix's entries have standard deviation gain / sqrt(its input width), so that each layer
    keeps activations near unit size: the logits then come out spread (a clear top choice at most
    positions) without one token taking everything."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def matrix(self, rows: int, cols: int, gain: float = 1.0) -> np.ndarray:
        return self.embedding(rows, cols, gain / np.sqrt(cols))

    def embedding(self, rows: int, cols: int, std: float) -> np.ndarray:
        """An embedding (or output) matrix: its std sets the logits' spread, about std * sqrt(cols)
        for a normalized final hidden state."""
        return (self.rng.standard_normal((rows, cols)) * std).astype(np.float16)

    def norm(self, n: int, gain: float = 1.0) -> np.ndarray:
        """RMS-norm gains near `gain`, as the file stores them (for Gemma too: its converter folds
        Gemma's `1 + weight` into the file, so llama.cpp multiplies by the stored value)."""
        return (gain * (1.0 + 0.1 * self.rng.standard_normal(n))).astype(np.float32)

    def bias(self, n: int, scale: float) -> np.ndarray:
        return (scale * self.rng.standard_normal(n)).astype(np.float32)


def attention(w: Weights, d: Dims, i: int, *, biases: bool = False, qk_norm: bool = False,
              fused: bool = False) -> dict[str, np.ndarray]:
    """One layer's attention block. Q and K get a gain of 2 so that attention is selective (scores
    that vary by a few units), which makes positions, rope and the sliding window matter."""
    p = f"blk.{i}"
    t = {f"{p}.attn_norm.weight": w.norm(d.width)}
    q, k, v = w.matrix(d.q_dim, d.width, 2.0), w.matrix(d.kv_dim, d.width, 2.0), w.matrix(d.kv_dim, d.width)
    if fused:
        t[f"{p}.attn_qkv.weight"] = np.concatenate([q, k, v])  # rows: Q, then K, then V
    else:
        t |= {f"{p}.attn_q.weight": q, f"{p}.attn_k.weight": k, f"{p}.attn_v.weight": v}
    if biases:
        t |= {f"{p}.attn_q.bias": w.bias(d.q_dim, 0.5), f"{p}.attn_k.bias": w.bias(d.kv_dim, 0.5),
              f"{p}.attn_v.bias": w.bias(d.kv_dim, 0.5)}
    if qk_norm:
        t |= {f"{p}.attn_q_norm.weight": w.norm(d.head_dim), f"{p}.attn_k_norm.weight": w.norm(d.head_dim)}
    t[f"{p}.attn_output.weight"] = w.matrix(d.width, d.q_dim)
    return t


def feed_forward(w: Weights, d: Dims, i: int, *, fused: bool = False) -> dict[str, np.ndarray]:
    """One layer's gated feed-forward block. Fused (Phi-3): ffn_up holds 2 * ffn rows, the gate's
    first (llama.cpp's swiglu applies the activation to the first half of each row)."""
    p = f"blk.{i}"
    t = {f"{p}.ffn_norm.weight": w.norm(d.width)}
    gate, up = w.matrix(d.ffn, d.width), w.matrix(d.ffn, d.width)
    if fused:
        t[f"{p}.ffn_up.weight"] = np.concatenate([gate, up])
    else:
        t |= {f"{p}.ffn_gate.weight": gate, f"{p}.ffn_up.weight": up}
    t[f"{p}.ffn_down.weight"] = w.matrix(d.width, d.ffn)
    return t


def common_hparams(d: Dims, context: int, rms_eps: float) -> list[tuple[str, object]]:
    return [
        ("add_context_length", context),
        ("add_embedding_length", d.width),
        ("add_feed_forward_length", d.ffn),
        ("add_block_count", d.layers),
        ("add_head_count", d.heads),
        ("add_head_count_kv", d.kv_heads),
        ("add_layer_norm_rms_eps", rms_eps),
    ]


def head_dim_hparams(d: Dims) -> list[tuple[str, object]]:
    """What the converter writes when config.json has `head_dim`."""
    return [("add_key_length", d.head_dim), ("add_value_length", d.head_dim)]


# ---------------------------------------------------------------------------------------------
# Families. Widths, ffn sizes and every matrix's input width are multiples of 256 so that every
# matrix can take a k-quant; the number of Q heads times the head size is not the width where the
# architecture allows it (Llama, Qwen3, Gemma 3), and every family has fewer K/V heads than Q heads.


def llama3_rope_freqs(head_dim: int, base: float) -> np.ndarray:
    """Llama 3.1's per-dimension rope frequency divisors, by the converter's formula (factor 8, low
    and high frequency factors 1 and 4), but for an original context of 64 positions instead of
    8192: 1 for the fastest dimensions, 8 for the slowest, smooth in between, so that they change
    the angles within the 48-token test sequence."""
    factor, low, high, original = 8.0, 1.0, 4.0, 64
    freqs = base ** -(np.arange(0, head_dim, 2) / head_dim)
    wavelen = 2 * np.pi / freqs
    smooth = (original / wavelen - low) / (high - low)
    divisors = np.where(wavelen < original / high, 1.0,
                        np.where(wavelen > original / low, factor, 1 / ((1 - smooth) / factor + smooth)))
    return divisors.astype(np.float32)


def llama3() -> Model:
    d = Dims(width=256, ffn=768, layers=3, heads=8, kv_heads=2, head_dim=64)
    vocab = byte_level_vocab(520, LLAMA3_SPECIALS, "llama-bpe",
                             {"bos": "<|begin_of_text|>", "eos": "<|eot_id|>"}, add_bos=True)
    base = 500000.0
    w = Weights(SEED + 1)
    # Tied embeddings (Llama 3.2): no output.weight, the logits use token_embd.
    t = {"token_embd.weight": w.embedding(len(vocab.tokens), d.width, 0.25),
         "rope_freqs.weight": llama3_rope_freqs(d.head_dim, base)}
    for i in range(d.layers):
        t |= attention(w, d, i) | feed_forward(w, d, i)
    t["output_norm.weight"] = w.norm(d.width)
    hparams = common_hparams(d, 131072, 1e-5) + [
        ("add_rope_freq_base", base),
        *head_dim_hparams(d),
        ("add_vocab_size", len(vocab.tokens)),
        ("add_rope_dimension_count", d.head_dim),
    ]
    return Model("llama", vocab, hparams, t)


def qwen2() -> Model:
    # Qwen2's Q projection is width x width, so its head size is width / heads.
    d = Dims(width=256, ffn=512, layers=2, heads=8, kv_heads=2, head_dim=32)
    vocab = byte_level_vocab(400, QWEN_SPECIALS, "qwen2", QWEN_SPECIAL_IDS, add_bos=False)
    w = Weights(SEED + 2)
    t = {"token_embd.weight": w.embedding(len(vocab.tokens), d.width, 0.25)}
    for i in range(d.layers):
        t |= attention(w, d, i, biases=True) | feed_forward(w, d, i)
    t["output_norm.weight"] = w.norm(d.width)
    hparams = common_hparams(d, 32768, 1e-6) + [("add_rope_freq_base", 1000000.0)]
    return Model("qwen2", vocab, hparams, t)


def qwen3(vocab: Vocab | None = None) -> Model:
    d = Dims(width=256, ffn=768, layers=3, heads=4, kv_heads=2, head_dim=128)
    vocab = vocab or byte_level_vocab(560, QWEN_SPECIALS, "qwen2", QWEN_SPECIAL_IDS, add_bos=False)
    w = Weights(SEED + 3)
    t = {"token_embd.weight": w.embedding(len(vocab.tokens), d.width, 0.25)}
    for i in range(d.layers):
        t |= attention(w, d, i, qk_norm=True) | feed_forward(w, d, i)
    t["output_norm.weight"] = w.norm(d.width)
    t["output.weight"] = w.embedding(len(vocab.tokens), d.width, 0.25)
    hparams = common_hparams(d, 40960, 1e-6) + [("add_rope_freq_base", 1000000.0), *head_dim_hparams(d)]
    return Model("qwen3", vocab, hparams, t)


def qwen3_thinking() -> Model:
    """Qwen3 with the tokens and chat template of its thinking switch: <think> and </think> are
    user-defined tokens (Qwen3's tokenizer does not mark them special), the chat markers control
    tokens, and generation ends at <|im_end|>."""
    vocab = byte_level_vocab(560, [*QWEN_SPECIALS, "<think>", "</think>"], "qwen2", QWEN_SPECIAL_IDS,
                             add_bos=False, user_defined=("<think>", "</think>"))
    return qwen3(replace(vocab, chat_template=QWEN3_CHAT_TEMPLATE))


def gemma3() -> Model:
    # Gemma 3 1B's shape, scaled down: one K/V head, heads of 256 wider than width / heads.
    d = Dims(width=256, ffn=768, layers=6, heads=2, kv_heads=1, head_dim=256)
    control, unknown = gguf.TokenType.CONTROL, gguf.TokenType.UNKNOWN
    head = [("<pad>", control), ("<eos>", control), ("<bos>", control), ("<unk>", unknown),
            ("<start_of_turn>", control), ("<end_of_turn>", control)]
    vocab = sentencepiece_vocab(450, head, [], {"bos": "<bos>", "eos": "<end_of_turn>", "unk": "<unk>",
                                                "pad": "<pad>"}, add_bos=True, add_space_prefix=False)
    w = Weights(SEED + 4)
    # Gemma multiplies the embeddings by sqrt(width) = 16 and ties the output to them: with
    # gains near 1, the current token's own embedding would dominate the last hidden state and
    # every position would predict its input token. The post-norms and the final norm get gains
    # near 3 instead, so that the layers decide the logits.
    t = {"token_embd.weight": w.embedding(len(vocab.tokens), d.width, 0.06)}
    for i in range(d.layers):
        t |= attention(w, d, i, qk_norm=True)
        t[f"blk.{i}.post_attention_norm.weight"] = w.norm(d.width, 3.0)
        t |= feed_forward(w, d, i)
        t[f"blk.{i}.post_ffw_norm.weight"] = w.norm(d.width, 3.0)
    t["output_norm.weight"] = w.norm(d.width, 3.0)
    hparams = common_hparams(d, 32768, 1e-6) + [
        *head_dim_hparams(d),
        ("add_rope_freq_base", 1000000.0),  # global layers (every 6th: layer 5)
        ("add_rope_freq_base_swa", 10000.0),  # sliding-window layers (0 to 4)
        # A window of 5 positions, so that it cuts into the 48-token test sequence.
        ("add_sliding_window", 5),
    ]
    return Model("gemma3", vocab, hparams, t)


def longrope_factors(n: int, largest: float) -> np.ndarray:
    """Phi-3's rope frequency divisors: 1 for the fastest dimensions, growing to `largest`."""
    return np.geomspace(1.0, largest, n).astype(np.float32)


def phi3() -> Model:
    # Phi-3's heads are width / heads wide; rope turns only the first 48 of each head's 64
    # dimensions (Phi-4-mini's partial_rotary_factor 0.75).
    d = Dims(width=256, ffn=512, layers=3, heads=4, kv_heads=2, head_dim=64)
    rope_dims = 48
    control = gguf.TokenType.CONTROL
    head = [("<unk>", gguf.TokenType.UNKNOWN), ("<s>", control), ("</s>", control)]
    tail = [(token, control) for token in ("<|endoftext|>", "<|assistant|>", "<|system|>", "<|end|>", "<|user|>")]
    vocab = sentencepiece_vocab(350, head, tail, {"bos": "<s>", "eos": "<|endoftext|>", "unk": "<unk>",
                                                  "pad": "<|endoftext|>"}, add_bos=False, add_space_prefix=True)
    w = Weights(SEED + 5)
    t = {"token_embd.weight": w.embedding(len(vocab.tokens), d.width, 0.25)}
    for i in range(d.layers):
        t |= attention(w, d, i, fused=True) | feed_forward(w, d, i, fused=True)
    t["output_norm.weight"] = w.norm(d.width)
    t["output.weight"] = w.embedding(len(vocab.tokens), d.width, 0.25)
    # LongRoPE (Phi-3.5): llama.cpp divides the rope frequencies by the short factors while its
    # context fits the original 4096 positions, by the long ones beyond.
    t["rope_factors_long.weight"] = longrope_factors(rope_dims // 2, 40.0)
    t["rope_factors_short.weight"] = longrope_factors(rope_dims // 2, 3.0)
    context, original = 131072, 4096
    hparams = common_hparams(d, context, 1e-5) + [
        ("add_rope_scaling_orig_ctx_len", original),
        ("add_rope_dimension_count", rope_dims),
        ("add_rope_freq_base", 10000.0),
        # Phi-3.5-mini's window: llama.cpp warns and ignores it (no sliding window for Phi-3).
        ("add_sliding_window", 262144),
        # The converter's LongRoPE magnitude scale, sqrt(1 + ln(scale) / ln(original)): llama.cpp
        # multiplies the rotated dimensions of Q and K by it.
        ("add_rope_scaling_attn_factors", float(np.sqrt(1 + np.log(context / original) / np.log(original)))),
    ]
    return Model("phi3", vocab, hparams, t)


FAMILIES = {"llama3": llama3, "qwen2": qwen2, "qwen3": qwen3, "gemma3": gemma3, "phi3": phi3}


def write_gguf(model: Model, name: str, path: Path) -> None:
    writer = gguf.GGUFWriter(path, model.arch)
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(f"Torchlight tiny {name}")
    for method, value in model.hparams:
        getattr(writer, method)(value)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    write_vocab(writer, model.vocab)
    for tensor, data in model.tensors.items():
        writer.add_tensor(tensor, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_tokens(vocab: Vocab, seed: int) -> list[int]:
    """The teacher-forced sequence: the BOS token where the vocabulary has one, then random
    ordinary tokens."""
    rng = np.random.default_rng(seed)
    bos = [vocab.id(vocab.special["bos"])] if "bos" in vocab.special else []
    drawn = rng.choice(vocab.ordinary_ids(), SEQ_LEN - len(bos))
    return bos + [int(i) for i in drawn]


# Added to make_golden.py's TOKENIZE_CASES for the byte-level BPE families: what their
# pre-tokenizers split differently (Llama 3 groups digits by three, Qwen splits them one by one;
# both fold the case of contractions), the added tokens of each, and Qwen3's <think> and </think>,
# user-defined tokens that llama.cpp matches whole even without parse_special.
BPE_TOKENIZE_CASES: list[tuple[str, bool, bool]] = [
    ("1234567890 12 345 6789", False, False),
    ("I'VE SAID IT'S FINE, it\u2019s fine, we'RE done", False, False),
    ("hello\u00a0world \ufb01ne ligature", False, False),
    ("   \n\n  indented\n\t\ttabbed   \n", False, False),
    ("x=1;y=22;z=333", False, False),
    ("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>", False, True),
    ("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>", False, False),
    ("<|start_header_id|>assistant<|end_header_id|>\n\n", True, True),
    ("<think>\nLet me see: 2 + 2.\n</think>\n\nThe answer is 4.", False, False),
    ("<think>\nLet me see: 2 + 2.\n</think>\n\nThe answer is 4.", False, True),
    ("<|im_start|>assistant\n<think>\n\n</think>\n\n", False, True),
    ("a<think>b</think>c", False, False),
]

# The vocabularies whose tokenization is compared: each one's GGUF and its output file.
TOKENIZED = {"llama3": "llama3-f16.gguf", "qwen2": "qwen2-f16.gguf", "qwen3-thinking": "qwen3-thinking.gguf"}


# ---------------------------------------------------------------------------------------------
# llama.cpp, in a child process. The child runs this script with --reference TASK ARGS...

# ggml.h's level for errors (llama-cpp-python's _logger.py comments an older numbering).
GGML_LOG_LEVEL_ERROR = 4
# What llama.cpp logged at that level in the child: why it refused a file. It cannot go straight
# to stderr, which llama-cpp-python points at /dev/null while it loads a model (verbose=False).
LLAMA_ERRORS: list[str] = []


def fail(message: str) -> None:
    sys.exit(f"{message}: {''.join(LLAMA_ERRORS).strip() or 'llama.cpp logged no error'}")


def reference_quantize(source: str, target: str, qtype: str) -> None:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, FTYPES[qtype])
    params.nthread = 2
    if llama_cpp.llama_model_quantize(source.encode(), target.encode(), ctypes.byref(params)) != 0:
        fail(f"llama.cpp could not quantize {source} to {qtype}")


def load(path: str):
    import llama_cpp

    return llama_cpp.Llama(model_path=path, logits_all=True, n_ctx=N_CTX, n_threads=2, n_batch=N_CTX,
                           seed=0, verbose=False)


def reference_logits(path: str, tokens: str, out: str) -> None:
    """Evaluates the tokens in one batch (n_batch covers them) and saves every position's logits."""
    ids = json.loads(tokens)
    llm = load(path)
    llm.eval(ids)
    np.save(out, np.array(llm.scores[: len(ids)], dtype=np.float32))


def reference_load(path: str) -> None:
    """Exits 0 if llama.cpp loads the file, 1 (with llama.cpp's error on stderr) if it refuses it."""
    try:
        load(path)
    except ValueError:
        fail("refuses it")


def reference_tokenize(path: str, name: str, out: str) -> None:
    """llama.cpp's tokenization of every case, in make_golden.py's tokenize.json format."""
    import llama_cpp
    from make_golden import TOKENIZE_CASES, make_tokenize

    llm = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
    add_bos = llama_cpp.llama_vocab_get_add_bos(llm._model.vocab)
    golden = make_tokenize(llm, name, TOKENIZE_CASES + BPE_TOKENIZE_CASES, add_bos)
    Path(out).write_text(json.dumps(golden, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


REFERENCE_TASKS = {
    "quantize": (reference_quantize, "quantized"),
    "tokenize": (reference_tokenize, "tokenized with"),
    "logits": (reference_logits, "evaluated"),
    "load": (reference_load, "loaded"),
}

# Exit status 3: llama.cpp itself crashed (see requantized_agreement.py, which does the same).
REFERENCE_CRASHED = 3


def reference(task: str, *args: str) -> subprocess.CompletedProcess:
    """Runs a llama.cpp task in a child; a crash there ends this script as the reference's."""
    run = subprocess.run([sys.executable, __file__, "--reference", task, *args],
                         capture_output=True, text=True, check=False)
    if run.returncode < 0:
        print(f"REFERENCE CRASHED: llama.cpp (llama-cpp-python) died of {signal.Signals(-run.returncode).name} "
              f"while it {REFERENCE_TASKS[task][1]} {args[0]}. This is the reference failing, not the test "
              "data. pkg-scripts/setup-llama-server.sh builds it for this CPU (no native flags, no AMX); to "
              "build it again: rm -rf ~/.cache/torchlight/llama-server && bash pkg-scripts/setup-llama-server.sh",
              file=sys.stderr)
        sys.exit(REFERENCE_CRASHED)
    if run.returncode != 0 and task != "load":
        sys.exit(f"llama.cpp failed ({task} {' '.join(args)}, exit status {run.returncode}):\n{run.stderr}")
    return run


def reference_main(task: str, args: list[str]) -> None:
    import llama_cpp

    @llama_cpp.llama_log_callback
    def errors_only(level, text, user_data):
        """llama.cpp logs every tensor it loads or quantizes; only its errors say anything here."""
        if level == GGML_LOG_LEVEL_ERROR:
            LLAMA_ERRORS.append(text.decode(errors="replace"))

    llama_cpp.llama_log_set(errors_only, ctypes.c_void_p(0))
    REFERENCE_TASKS[task][0](*args)


# ---------------------------------------------------------------------------------------------
# The run


def golden_case(family: str, qtype: str, path: Path, arch: str, tokens: list[int], out: Path) -> dict:
    scores = out / f"{family}-{qtype}.npy"
    reference("logits", str(path), json.dumps(tokens), str(scores))
    logits = np.load(scores)
    scores.unlink()
    golden = out / f"{family}-{qtype}.json"
    golden.write_text(json.dumps({
        "file": path.name,
        "arch": arch,
        "tokens": tokens,
        "logits": [[round(float(x), 5) for x in row] for row in logits],
    }))
    print(summary(path, logits))
    return {"family": family, "type": qtype, "gguf": path.name, "golden": golden.name}


def summary(path: Path, logits: np.ndarray) -> str:
    """The tensor types llama.cpp chose (it may fall back from the asked type for some), how
    spread the logits are, and how often the top choice is clear (beats the second by > 0.1)."""
    types = Counter(tensor.tensor_type.name for tensor in gguf.GGUFReader(path).tensors)
    mix = " ".join(f"{name}:{n}" for name, n in sorted(types.items()))
    top2 = np.sort(logits, axis=1)[:, -2:]
    clear = float(np.mean(top2[:, 1] - top2[:, 0] > 0.1))
    return f"{path.name:28} {mix:40} logit std {logits.std(axis=1).mean():5.2f}  clear top-1 {clear:4.0%}"


def error_files(out: Path) -> None:
    """Files the loader must refuse or handle: what llama.cpp does with each is printed."""
    extra = qwen3()
    # A MoE router for 4 experts, F32 as the converter keeps routers: qwen3 has no use for it.
    extra.tensors["blk.0.ffn_gate_inp.weight"] = Weights(SEED + 6).matrix(4, 256).astype(np.float32)
    # Qwen3's k norm is required in llama.cpp too (Qwen2's biases are not: it loads without).
    missing = qwen3()
    del missing.tensors["blk.1.attn_k_norm.weight"]
    for name, model in (("qwen3-extra-tensor", extra), ("qwen3-missing-tensor", missing),
                        ("qwen3-thinking", qwen3_thinking())):
        path = out / f"{name}.gguf"
        write_gguf(model, name, path)
        run = reference("load", str(path))
        verdict = "loads it" if run.returncode == 0 else run.stderr.strip().splitlines()[0]
        print(f"{path.name:28} llama.cpp {verdict}")


def tokenize_goldens(out: Path) -> list[dict]:
    """llama.cpp's tokenization on each byte-level BPE vocabulary (the files exist by now)."""
    files = []
    for name, model in TOKENIZED.items():
        golden = out / f"{name}-tokenize.json"
        reference("tokenize", str(out / model), name, str(golden))
        cases = json.loads(golden.read_text(encoding="utf-8"))["cases"]
        tokens = sum(len(case["ids"]) for case in cases)
        print(f"{golden.name:28} {len(cases)} strings, {tokens} tokens")
        files.append({"vocabulary": name, "gguf": model, "golden": golden.name})
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("target/families"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    cases = []
    for n, (family, build) in enumerate(FAMILIES.items()):
        model = build()
        f16 = args.out / f"{family}-f16.gguf"
        write_gguf(model, family, f16)
        tokens = test_tokens(model.vocab, SEED + n)
        cases.append(golden_case(family, "f16", f16, model.arch, tokens, args.out))
        for qtype in QUANTS[family]:
            path = args.out / f"{family}-{qtype}.gguf"
            reference("quantize", str(f16), str(path), qtype)
            cases.append(golden_case(family, qtype, path, model.arch, tokens, args.out))
    error_files(args.out)
    (args.out / "tokenize.json").write_text(json.dumps(tokenize_goldens(args.out), indent=1) + "\n")
    (args.out / "manifest.json").write_text(json.dumps(cases, indent=1) + "\n")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--reference"]:
        reference_main(sys.argv[2], sys.argv[3:])
    else:
        main()
