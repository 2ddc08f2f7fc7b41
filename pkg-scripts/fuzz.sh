#!/usr/bin/env bash
# Fuzzes what Torchlight does with an untrusted model file, with the targets in crate/fuzz/:
# `gguf_header` reads a header and builds from it what `torchlight info` builds (config,
# footprint, tokenizer, chat template, a render); `template` builds and renders chat templates.
#
#   bash pkg-scripts/fuzz.sh [RUNS [TARGET...]]
#
# Each target runs RUNS inputs (default 20000, under a minute for both once built: test.sh's
# check that they build and run; a search wants a million or more). An input that panics, runs
# over 5 s or takes over 512 MiB is a finding: libFuzzer stops with its report and saves the
# input in target/fuzz-artifacts/TARGET/; running the target's binary with the file as its
# argument replays it. FUZZ_FLAGS adds libFuzzer flags: FUZZ_FLAGS="-fork=1 -ignore_crashes=1"
# keeps going past findings, and the script fails at the end if there were any. The corpora,
# target/fuzz-corpus/TARGET/, start from real inputs and keep what every run learns; the inputs
# in crate/fuzz/regressions/TARGET/, past findings, run again every time.
#
# The stable toolchain builds the targets, with cargo-fuzz's coverage flags and without a
# sanitizer (which needs nightly). crate/fuzz/ is laid out for cargo-fuzz as well.
source "$(dirname "$0")/steps.sh"
cd "$(dirname "$0")/.."

runs="${1:-20000}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(gguf_header template)

# libfuzzer-sys compiles libFuzzer, which is C++.
if ! command -v c++ >/dev/null 2>&1; then
    step "installing g++ with apt-get (libFuzzer is C++)" \
        "apt-get must reach Debian's package servers; try 'apt-get install g++' by hand"
    apt_install g++
fi

step "building the fuzz targets (crate/fuzz/; the first build takes 5 to 7 minutes on two cores)"
# The root lock, so the fuzzed code has the dependency versions the crate ships with.
cp Cargo.lock crate/fuzz/Cargo.lock
host="$(cargo -vV | sed -n 's/^host: //p')"
# An explicit --target keeps the instrumentation out of build scripts and proc macros.
RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-sanitizer-coverage-stack-depth \
-Cllvm-args=-simplifycfg-branch-fold-threshold=0 --cfg fuzzing" \
    cargo build --manifest-path crate/fuzz/Cargo.toml --release --target "$host" \
    --target-dir target/fuzz --bins

step "seeding the corpora in target/fuzz-corpus/"
headers=target/fuzz-corpus/gguf_header
templates=target/fuzz-corpus/template
mkdir -p "$headers" "$templates"
# An empty GGUF (version 3, no tensors, no keys), so the search never starts from nothing.
{ printf 'GGUF\003\000\000\000'; head -c 16 /dev/zero; } >"$headers/seed-empty"
# Whole headers of the tiny models of every family, where test.sh has written them; the
# target pads its input with zeros, so their tensor data need not be there.
for model in target/families/*.gguf; do
    [ -e "$model" ] || continue
    head -c 32768 "$model" >"$headers/seed-$(basename "$model" .gguf)"
done
# The test model's header is 1.7 MB of vocabulary: its start only.
if [ -e models/SmolLM2-135M-Instruct.Q4_1.gguf ]; then
    head -c 4096 models/SmolLM2-135M-Instruct.Q4_1.gguf >"$headers/seed-smollm2-4k"
fi
# Real chat templates, as the template target reads text: a 0 byte, then the template.
for source in crate/tests/data/*_chat_template.jinja; do
    [ -e "$source" ] || continue
    { printf '\000'; cat "$source"; } >"$templates/seed-$(basename "$source" _chat_template.jinja)"
done

read -ra extra <<<"${FUZZ_FLAGS:-}"
for target in "${targets[@]}"; do
    step "fuzzing $target for $runs runs" \
        "an input made $target panic, run over 5 s or take over 512 MiB: libFuzzer's report is above, and the input is in target/fuzz-artifacts/$target/; replay it with target/fuzz/$host/release/$target FILE"
    mkdir -p "target/fuzz-artifacts/$target"
    # libFuzzer reads every folder it is given, and adds what it learns to the first.
    corpora=("target/fuzz-corpus/$target")
    [ ! -d "crate/fuzz/regressions/$target" ] || corpora+=("crate/fuzz/regressions/$target")
    # The target caps its own memory at 512 MiB (crate/fuzz/src/memory.rs); libFuzzer's RSS
    # limit is a backstop above it, for memory that is not Rust's.
    found_before="$(find "target/fuzz-artifacts/$target" -type f | wc -l)"
    "target/fuzz/$host/release/$target" "${corpora[@]}" \
        -runs="$runs" -timeout=5 -rss_limit_mb=1024 \
        -artifact_prefix="target/fuzz-artifacts/$target/" -print_funcs=0 -print_final_stats=1 "${extra[@]}"
    # With -fork, libFuzzer's exit status is only its last job's: new inputs saved are the test.
    [ "$(find "target/fuzz-artifacts/$target" -type f | wc -l)" = "$found_before" ]
done
echo "fuzz: ${targets[*]}: $runs runs each, no findings"
