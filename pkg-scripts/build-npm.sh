#!/usr/bin/env bash
# Builds the npm package into pkg/: the core compiled to wasm (release) with its wasm-bindgen
# glue, twice (plain, and in pkg/threads/ with wasm atomics for CPU threads on cross-origin
# isolated pages), the hand-written JS layer from pkg-scripts/js/ (main-thread API, workers,
# types), its package.json and README, and checks the result against `npm pack --dry-run`.
# Prints each wasm's size, raw and gzipped.
#
# wasm-bindgen's CLI must be exactly the version of the wasm-bindgen crate in Cargo.lock; it is
# installed when missing (wasm-bindgen-cli.sh). wasm-opt (npm `binaryen`, pinned) shrinks the
# wasm when npm can get it; without it the package is built unoptimized, with a message.
source "$(dirname "$0")/steps.sh"
cd "$(dirname "$0")/.."

OUT=pkg
TARGET=wasm32-unknown-unknown
BINARYEN_VERSION=123.0.0

bash pkg-scripts/wasm-bindgen-cli.sh

# `cargo rustc --crate-type cdylib` makes the .wasm without making every native build of the
# library link a shared object too; the artifact's path comes from cargo's own report.
# Download size matters more here than the last few percent of CPU speed (the hot path is on
# the GPU): whole-program LTO at opt-level "s" makes the wasm about a fifth smaller.
# The CPU backend's kernels use wasm SIMD (simd128): every browser with WebGPU has it, and so
# do Firefox 89+ and Safari 16.4+.
export CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 CARGO_PROFILE_RELEASE_OPT_LEVEL=s \
    CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_INCREMENTAL=false

# build_core OUT_DIR [CARGO_ARGS...]: builds the core with the rustflags in $RUSTFLAGS_WASM, runs
# wasm-bindgen into OUT_DIR, and shrinks it with wasm-opt (extra features in $WASM_OPT_FEATURES).
build_core() {
    local out="$1"
    shift
    local wasm
    wasm="$(CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="$RUSTFLAGS_WASM" \
        cargo "$@" rustc -p torchlight --lib --release --target "$TARGET" --no-default-features \
        --crate-type cdylib --message-format=json-render-diagnostics \
        | node -e '
            let wasm;
            for (const line of require("fs").readFileSync(0, "utf8").split("\n")) {
                if (!line.startsWith("{")) continue;
                const m = JSON.parse(line);
                if (m.reason === "compiler-artifact" && m.target.name === "torchlight")
                    wasm = m.filenames.find((f) => f.endsWith(".wasm")) ?? wasm;
            }
            if (!wasm) process.exit(1);
            console.log(wasm);
        ')"
    mkdir -p "$out"
    wasm-bindgen --target web --no-typescript --out-dir "$out" --out-name torchlight_core "$wasm"

    local core="$out/torchlight_core_bg.wasm"
    if npm exec --yes --package="binaryen@$BINARYEN_VERSION" -- wasm-opt --version >/dev/null 2>&1; then
        local raw_before
        raw_before=$(wc -c <"$core")
        # The features rustc's wasm32 target enables by default; wasm-opt must accept them.
        npm exec --yes --package="binaryen@$BINARYEN_VERSION" -- wasm-opt -Oz \
            --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
            --enable-mutable-globals --enable-reference-types --enable-multivalue --enable-simd \
            $WASM_OPT_FEATURES "$core" -o "$core.opt"
        mv "$core.opt" "$core"
        echo "build-npm: wasm-opt -Oz: $raw_before -> $(wc -c <"$core") bytes ($core)"
    else
        echo "build-npm: wasm-opt (npm binaryen@$BINARYEN_VERSION) is not available; $core is not optimized"
    fi
}

rm -rf "$OUT"
step "building the wasm core (release, whole-program LTO): a few minutes the first time" \
    "the compiler's errors are above; 'cargo build -p torchlight --target $TARGET' shows them again"
RUSTFLAGS_WASM="-C target-feature=+simd128" WASM_OPT_FEATURES="" build_core "$OUT"

# The threaded core, which runs the CPU backend on several Web Workers on a cross-origin isolated
# page: std rebuilt with atomics, a shared memory imported by every worker's instance (up to the
# 4 GiB wasm32 allows), and the thread-local storage symbols wasm-bindgen's glue sets up per
# thread. Its own target directory keeps the plain build's cache.
threads_toolchain="$(bash pkg-scripts/wasm-threads-toolchain.sh)"
step "building the threaded wasm core with $threads_toolchain (std rebuilt with atomics): several minutes the first time" \
    "the compiler's errors are above; the toolchain comes from pkg-scripts/wasm-threads-toolchain.sh"
RUSTFLAGS_WASM="-C target-feature=+atomics,+bulk-memory,+mutable-globals,+simd128 \
    -C link-arg=--shared-memory -C link-arg=--import-memory -C link-arg=--max-memory=4294967296 \
    -C link-arg=--export=__wasm_init_tls -C link-arg=--export=__tls_size \
    -C link-arg=--export=__tls_align -C link-arg=--export=__tls_base" \
    WASM_OPT_FEATURES="--enable-threads" CARGO_TARGET_DIR=target/wasm-threads \
    build_core "$OUT/threads" "+$threads_toolchain" -Z build-std=std,panic_abort

step "assembling the package in $OUT/"
cp pkg-scripts/js/*.js pkg-scripts/js/*.d.ts pkg-scripts/js/README.md pkg-scripts/js/package.json "$OUT/"
version="$(node -p 'require("./pkg-scripts/js/package.json").version')"

step "checking $OUT/ against what npm pack puts in the tarball (pkg-scripts/check-package.mjs)" \
    "the list above names each file: add it to \"files\" in pkg-scripts/js/package.json, or fix the reference"
node pkg-scripts/check-package.mjs "$OUT"

for core in "$OUT/torchlight_core_bg.wasm" "$OUT/threads/torchlight_core_bg.wasm"; do
    echo "build-npm: $core: $(wc -c <"$core") bytes raw, $(gzip -9 -c "$core" | wc -c) bytes gzipped"
done
echo "build-npm: wrote $OUT/ (torchlight $version)"
