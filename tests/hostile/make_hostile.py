#!/usr/bin/env python3
"""Hostile variants of a model file: the corpus crate/tests/hostile_files.rs runs the CLI on.

    "$(bash pkg-scripts/setup-llama-server.sh)" tests/hostile/make_hostile.py \\
        --model models/SmolLM2-135M-Instruct.Q4_1.gguf --out target/hostile

Anyone can host a GGUF, and Torchlight believes the lengths and counts of its header and runs
its chat template on every request (issue 13). Each variant is the model's own header with one
lie or one hostile template in it, one per input class of the issue. The header is rewritten
byte by byte here (gguf-py's reader finds where each key and tensor info lies); huge arrays and
strings are holes in a sparse file, and the tensor data is a hole too: zeros, a valid model
that says nothing. So every file claims its full size (some a gigabyte and more) but stores
only its header's 1.8 MB, about 50 MB for the whole corpus.

`manifest.json` lists, per file: `class` (the input class), `what` (the lie), `expect` (a word
the one-line error must contain, or null for the control file) and what each command must do
with it. `generate` runs a chat request, so the template runs: "error" (it fails naming
`expect`), "clean" (it runs), or "error or runs" for a template that is legitimate once its
filter is bounded ('abc'.count('') is 4; batch(2**62) of one message is one batch), which may be
rendered or refused. `info` reads the header but never renders the template: "error", "clean",
"problem" (it runs and lists `expect` among what the model cannot run) or "runs" (whatever it
lists).
"""

from __future__ import annotations

import argparse
import json
import struct
from dataclasses import dataclass
from pathlib import Path

import gguf

T = gguf.GGUFValueType
TEMPLATE = "tokenizer.chat_template"
# Templates a chat request would run: each must end in an error naming the chat template (or,
# the two that are legitimate once bounded, render), within the test's time and memory limits,
# never loop, panic or exhaust memory.
TEMPLATES = [
    ("count-empty", "{{ 'abc'.count('') }}", "str.count of an empty string, which looped in pycompat"),
    ("batch", "{{ messages|batch(2**62) }}", "batch into lists of 2^62 capacity"),
    ("slice", "{{ messages|slice(2**62) }}", "slice into 2^62 lists"),
    ("sum-in-loop", "{% for i in range(100000) %}{{ range(100000)|sum }}{% endfor %}", "10^10 additions in a filter"),
    ("unique", "{{ ([1,2]*500000000)|unique|list|length }}", "a billion items through unique"),
    ("list", "{{ ([1]*10**10)|list|length }}", "a list of 10^10 items"),
    ("join", "{{ (['x'*10**7]*10**5)|join|length }}", "a join of a terabyte"),
    ("format", "{{ '%999999999d'|format(1) }}", "a format padded to a gigabyte"),
    ("indent", "{{ 'x'|indent(10**9) }}", "an indent of a gigabyte"),
    (
        "namespace-doubling",
        "{% set ns = namespace(s='xx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
        "a string doubled forty times through a namespace",
    ),
    ("unparsed", "{% for m in messages %}", "a template that does not parse"),
]


def u32(n: int) -> bytes:
    return struct.pack("<I", n)


def u64(n: int) -> bytes:
    return struct.pack("<Q", n)


def string(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return u64(len(b)) + b


class Hole:
    """`n` zero bytes the file does not store."""

    def __init__(self, n: int):
        self.n = n


def kv(key: str, value_type: T, payload: bytes) -> list:
    return [string(key) + u32(value_type) + payload]


def array_head(key: str, item_type: T, count: int) -> bytes:
    return string(key) + u32(T.ARRAY) + u32(item_type) + u64(count)


class Model:
    """The source file's header as it is written: each key-value pair and tensor info raw."""

    def __init__(self, path: Path):
        r = gguf.GGUFReader(path)

        def raw(field) -> bytes:
            return bytes(r.data[field.offset : field.offset + sum(p.nbytes for p in field.parts)])

        # Pairs in file order; each value is a list of pieces (bytes or holes).
        self.kvs = {k: [raw(f)] for k, f in r.fields.items() if not k.startswith("GGUF.")}
        self.tensors = [raw(t.field) for t in r.tensors]
        self.alignment = r.alignment
        self.data_len = len(r.data) - r.data_offset


@dataclass
class Variant:
    file: str
    cls: str
    what: str
    # A word the error must contain; None for the control file.
    expect: str | None
    kvs: dict
    info: str = "error"
    generate: str = "error"
    # The tensor count the header claims, if not the table's own.
    tensor_count: int | None = None
    # Bytes cut off the end of the file.
    cut: int = 0

    def write(self, out: Path, model: Model) -> None:
        """The header with `kvs`, then the tensor data as a hole."""
        tensor_count = len(model.tensors) if self.tensor_count is None else self.tensor_count
        pieces = [b"GGUF", u32(3), u64(tensor_count), u64(len(self.kvs))]
        for value in self.kvs.values():
            pieces += value
        pieces += model.tensors
        with open(out / self.file, "wb") as f:
            for piece in pieces:
                if isinstance(piece, Hole):
                    f.seek(piece.n, 1)
                else:
                    f.write(piece)
            data_offset = -(-f.tell() // model.alignment) * model.alignment
            f.truncate(data_offset + model.data_len - self.cut)

    def manifest(self) -> dict:
        return {
            "file": self.file,
            "class": self.cls,
            "what": self.what,
            "expect": self.expect,
            "info": self.info,
            "generate": self.generate,
        }


def variants(model: Model) -> list[Variant]:
    def edit(changes: dict | None = None) -> dict:
        """The model's pairs, with `changes` in place of its own (or after them, if new)."""
        return {**model.kvs, **(changes or {})}

    def number(key: str, n: int) -> dict:
        return {key: kv(key, T.UINT32, u32(n)) if n < 1 << 32 else kv(key, T.UINT64, u64(n))}

    strings = 50_000_000
    depth = 100_000
    nest = b"".join(u32(T.ARRAY) + u64(1) for _ in range(depth)) + u32(T.UINT8) + u64(0)
    big = 32 << 20
    short_types = array_head("tokenizer.ggml.token_type", T.INT32, 1000) + u32(1) * 1000
    return [
        Variant("control.gguf", "control", "the model's own header, its weights zeros", None, edit(), "clean", "clean"),
        # Metadata arrays and strings: the reader's memory and time.
        Variant(
            "huge-array.gguf", "metadata array", "tokenizer.ggml.token_type claims 10^9 one-byte items (a sparse gigabyte)",
            "tokenizer.ggml.token_type",
            edit({"tokenizer.ggml.token_type": [array_head("tokenizer.ggml.token_type", T.UINT8, 10**9), Hole(10**9)]}),
        ),
        Variant(
            "many-strings.gguf", "metadata array", f"general.junk, a key nothing reads, holds {strings} empty strings",
            "general.junk", edit({"general.junk": [array_head("general.junk", T.STRING, strings), Hole(8 * strings)]}),
        ),
        Variant(
            "nested-arrays.gguf", "metadata array", f"general.nest: arrays nested {depth} deep",
            "nested too deep", edit({"general.nest": [string("general.nest") + u32(T.ARRAY) + nest]}),
        ),
        Variant(
            "string-past-end.gguf", "metadata string", "general.name claims 2^40 bytes, past the end of the file",
            "general.name", edit({"general.name": kv("general.name", T.STRING, u64(1 << 40))}),
        ),
        Variant(
            "huge-template.gguf", "metadata string", "the chat template claims 32 MiB (a sparse run of NULs)",
            TEMPLATE, edit({TEMPLATE: kv(TEMPLATE, T.STRING, u64(big)) + [Hole(big)]}),
        ),
        Variant(
            "tensor-count.gguf", "tensor table", "the tensor count claims one tensor more than the table holds",
            "dimensions", edit(), tensor_count=len(model.tensors) + 1,
        ),
        Variant(
            "truncated.gguf", "tensor table", "the file is cut 1 MiB short, as a broken download would be",
            "outside the file", edit(), cut=1 << 20,
        ),
        # Hyperparameters: checked against the tensor table before anything is sized by them.
        Variant("block-count.gguf", "hyperparameter", "llama.block_count = 2^40", "block_count", edit(number("llama.block_count", 1 << 40))),
        Variant(
            "head-count.gguf", "hyperparameter", "2^62 heads of 64, for queries and for keys and values", "head_count",
            edit({
                **number("llama.attention.head_count", 1 << 62),
                **number("llama.attention.head_count_kv", 1 << 62),
                **number("llama.attention.key_length", 64),
            }),
        ),
        Variant(
            "context-length.gguf", "hyperparameter", "llama.context_length = 2^63", "context_length",
            edit(number("llama.context_length", 1 << 63)),
        ),
        Variant(
            "embedding-length.gguf", "hyperparameter", "llama.embedding_length = 1024, where the tensors have 576",
            "embedding_length", edit(number("llama.embedding_length", 1024)),
        ),
        Variant(
            "feed-forward-length.gguf", "hyperparameter", "llama.feed_forward_length = 2^62", "feed_forward_length",
            edit(number("llama.feed_forward_length", 1 << 62)),
        ),
        Variant(
            "vocab-size.gguf", "hyperparameter", "llama.vocab_size = 2^40, for a vocabulary of 49152 tokens", "vocab_size",
            edit(number("llama.vocab_size", 1 << 40)),
        ),
        # The vocabulary: arrays that disagree. `info` lists the tokenizer's problems.
        Variant(
            "token-types-short.gguf", "vocabulary", "1000 token types for 49152 tokens", "tokenizer.ggml.token_type",
            edit({"tokenizer.ggml.token_type": [short_types]}), info="problem",
        ),
    ] + [
        # Chat templates: programs run on every chat request, never by `info`.
        Variant(
            f"template-{name}.gguf", "template", what, "chat template",
            edit({TEMPLATE: kv(TEMPLATE, T.STRING, string(template))}),
            info="runs", generate="error or runs" if name in ("count-empty", "batch") else "error",
        )
        for name, template, what in TEMPLATES
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    model = Model(args.model)
    args.out.mkdir(parents=True, exist_ok=True)
    corpus = variants(model)
    for variant in corpus:
        variant.write(args.out, model)
    manifest = [variant.manifest() for variant in corpus]
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"make_hostile.py: {len(manifest)} files in {args.out}")


if __name__ == "__main__":
    main()
