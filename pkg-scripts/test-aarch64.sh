#!/usr/bin/env bash
# The CPU backend on aarch64 under qemu user-mode emulation: the only way the NEON kernels
# (crate/src/cpu/simd/neon.rs) are tested on x86 CI machines. Cross-builds for
# aarch64-unknown-linux-gnu and runs the SIMD unit tests, tests/cpu_kernels.rs (every kernel
# against the reference, NEON and scalar) and tests/cpu_model.rs (the test model's logits).
# Idempotent: installs the cross linker, the aarch64 C library, qemu and the Rust target only if
# missing. The first build for the target takes several minutes; the tests about three more.
source "$(dirname "$0")/steps.sh"
cd "$(dirname "$0")/.."
log="$(mktemp)"
trap 'rm -f "$log"; echo "test-aarch64.sh: took ${SECONDS}s"' EXIT

TARGET=aarch64-unknown-linux-gnu
PACKAGES=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)

if ! dpkg -s "${PACKAGES[@]}" >/dev/null 2>&1; then
    step "installing ${PACKAGES[*]} with apt-get (the aarch64 cross linker and qemu)" \
        "try 'apt-get install ${PACKAGES[*]}' by hand"
    apt_install --no-install-recommends "${PACKAGES[@]}"
fi

targets="$(rustup target list --installed 2>/dev/null || true)"
if ! grep -qx "$TARGET" <<<"$targets"; then
    step "adding the $TARGET target with rustup" "try 'rustup target add $TARGET' by hand"
    rustup target add "$TARGET"
fi

step "fetching the test model (tests/cpu_model.rs runs it)"
bash pkg-scripts/fetch-test-model.sh

# Linked by the cross gcc; run by qemu, which finds the aarch64 loader and libc under -L.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
test_aarch64() { cargo test --release --target "$TARGET" -p torchlight "$@"; }

step "building the tests for $TARGET and running the SIMD unit tests under qemu: several minutes the first time"
test_aarch64 --lib -- cpu::simd
# The kernel tests pass with the scalar set alone, so check from what they print that NEON ran.
# (--show-output also shows the thread pool test's deliberate panic.)
step "running tests/cpu_kernels.rs and tests/cpu_model.rs under qemu"
test_aarch64 --test cpu_kernels --test cpu_model -- --show-output 2>&1 | tee "$log"
if ! grep -q '^kernel sets on this machine: .*Neon' "$log"; then
    echo "test-aarch64: the kernel tests did not run the NEON kernels" >&2
    exit 1
fi
echo "test-aarch64.sh: the CPU kernels pass on aarch64 (NEON and scalar) under qemu"
