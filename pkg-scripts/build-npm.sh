#!/usr/bin/env bash
# Builds the npm package into pkg/: the core compiled to wasm (release), its wasm-bindgen glue,
# the hand-written JS layer from pkg-scripts/js/ (main-thread API, worker, types), a
# package.json and a README. Prints the wasm's size, raw and gzipped.
#
# wasm-bindgen's CLI must be exactly the version of the wasm-bindgen crate in Cargo.lock; it is
# installed when missing (wasm-bindgen-cli.sh). wasm-opt (npm `binaryen`, pinned) shrinks the
# wasm when npm can get it; without it the package is built unoptimized, with a message.
set -euo pipefail
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
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-C target-feature=+simd128"
export CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 CARGO_PROFILE_RELEASE_OPT_LEVEL=s \
    CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_INCREMENTAL=false
wasm="$(cargo rustc -p torchlight --lib --release --target "$TARGET" --no-default-features \
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

rm -rf "$OUT"
mkdir -p "$OUT"
wasm-bindgen --target web --no-typescript --out-dir "$OUT" --out-name torchlight_core "$wasm"

core="$OUT/torchlight_core_bg.wasm"
if npm exec --yes --package="binaryen@$BINARYEN_VERSION" -- wasm-opt --version >/dev/null 2>&1; then
    raw_before=$(wc -c <"$core")
    # The features rustc's wasm32 target enables by default; wasm-opt must accept them.
    npm exec --yes --package="binaryen@$BINARYEN_VERSION" -- wasm-opt -Oz \
        --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
        --enable-mutable-globals --enable-reference-types --enable-multivalue --enable-simd \
        "$core" -o "$core.opt"
    mv "$core.opt" "$core"
    echo "build-npm: wasm-opt -Oz: $raw_before -> $(wc -c <"$core") bytes"
else
    echo "build-npm: wasm-opt (npm binaryen@$BINARYEN_VERSION) is not available; the wasm is not optimized"
fi

cp pkg-scripts/js/*.js pkg-scripts/js/*.d.ts pkg-scripts/js/README.md "$OUT/"

version="$(awk -F'"' '/^version = / { print $2; exit }' crate/Cargo.toml)"
node - "$OUT" "$version" <<'EOF'
const [out, version] = process.argv.slice(2);
const pkg = {
    name: "torchlight",
    version,
    description: "Quantized open-weight language models on WebGPU, in a browser tab",
    license: "Apache-2.0",
    type: "module",
    main: "./index.js",
    types: "./index.d.ts",
    exports: { ".": { types: "./index.d.ts", default: "./index.js" } },
    files: require("fs").readdirSync(out).sort(),
    sideEffects: false,
};
require("fs").writeFileSync(`${out}/package.json`, JSON.stringify(pkg, null, 2) + "\n");
EOF

raw=$(wc -c <"$core")
gz=$(gzip -9 -c "$core" | wc -c)
echo "build-npm: wrote $OUT/ (torchlight $version); wasm $raw bytes raw, $gz bytes gzipped"
