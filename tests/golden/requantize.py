#!/usr/bin/env python3
"""llama.cpp's own requantizer (`llama_model_quantize`, through llama-cpp-python) on a GGUF.

Writes the model again in one of llama.cpp's file types (its "mixes": Q8_0, Q4_K_M, Q2_K, ...).
llama.cpp keeps a tensor whose rows do not fit the type's blocks in a fallback format (K-quants
need rows of 256), so a file's tensors may be a mix; `torchlight info` lists them.

    python tests/golden/requantize.py MODEL OUT --type Q8_0

Run with the python of pkg-scripts/setup-llama-server.sh's venv.
"""

from __future__ import annotations

import argparse
import ctypes
import sys
from pathlib import Path

import llama_cpp


@llama_cpp.llama_log_callback
def _quiet(level, text, user_data):
    """llama.cpp logs a line per tensor it requantizes; none of it is the caller's."""


def requantize(model: Path, out: Path, file_type: str) -> None:
    ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{file_type.upper()}", None)
    if ftype is None:
        sys.exit(f"llama.cpp has no file type {file_type!r} (Q8_0, Q4_0, Q4_1, Q4_K_M, Q5_K_M, Q6_K, Q2_K, ...)")
    llama_cpp.llama_log_set(_quiet, ctypes.c_void_p(0))
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = True
    params.nthread = 2
    if llama_cpp.llama_model_quantize(str(model).encode(), str(out).encode(), ctypes.byref(params)) != 0:
        sys.exit(f"llama.cpp could not requantize {model} to {file_type}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--type", required=True, help="llama.cpp's file type, as Q8_0 or Q4_K_M")
    args = parser.parse_args()
    requantize(args.model, args.out, args.type)
