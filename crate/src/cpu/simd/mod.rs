//! The few vector operations the CPU kernels are written in, once per instruction set.
//!
//! Every kernel (each weight format's fused dequantize-and-dot, attention, the norms) is written
//! once, generic over [`Simd`], and compiled per instruction set: AVX2, alone or with AVX-512
//! VNNI (chosen at run time),
//! NEON, wasm simd128 (chosen at compile time), and plain Rust for anything else. A `Simd` value
//! is a token: holding one proves its instructions can run, so its methods are safe to call.
//!
//! Methods are `#[inline(always)]` and kernels too, down from the one entry point per instruction
//! set (`Kernels::run`), so that a whole kernel is compiled with that set's target features.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "aarch64")]
mod neon;
mod scalar;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm;

use std::fmt;

/// Where `Q16::wide` keeps a block's activations: position j holds element `WIDE_ORDER[j]`.
/// Each target has one set that reads `wide` (AVX2 on x86_64, simd128 on wasm), and this is
/// that set's order, in which its 16-bit products land in the lanes its byte products do.
#[cfg(target_arch = "x86_64")]
pub(crate) use avx2::WIDE_ORDER;
#[cfg(not(target_arch = "x86_64"))]
pub(crate) const WIDE_ORDER: [usize; 32] = {
    let mut order = [0; 32];
    let mut j = 0;
    while j < 32 {
        order[j] = j;
        j += 1;
    }
    order
};

pub(crate) use scalar::Scalar;

/// 32 bytes (`Bytes`), integer partial sums (`Ints`) and eight f32 lanes (`Floats`).
///
/// Weight quants are unsigned and below 64 unless a method says otherwise; activation bytes are
/// signed and within -127..=127 (never -128), so no pairwise sum of products can overflow i16,
/// and scales are within -32640..=32640 (255 times an i8).
pub(crate) trait Simd: Copy + Send + Sync + 'static {
    type Bytes: Copy;
    type Ints: Copy;
    type Floats: Copy;

    fn load(self, p: &[u8; 32]) -> Self::Bytes;
    fn load_i8(self, p: &[i8; 32]) -> Self::Bytes {
        self.load(bytemuck::cast_ref(p))
    }
    fn splat(self, v: u8) -> Self::Bytes;
    fn and(self, a: Self::Bytes, b: Self::Bytes) -> Self::Bytes;
    fn or(self, a: Self::Bytes, b: Self::Bytes) -> Self::Bytes;
    /// The 32 nibbles of 16 bytes: the low nibbles, then the high nibbles (Q4_0's order).
    fn nibbles(self, p: &[u8; 16]) -> Self::Bytes;
    fn low_nibbles(self, b: Self::Bytes) -> Self::Bytes;
    fn high_nibbles(self, b: Self::Bytes) -> Self::Bytes;
    /// Byte j is 0xff where bit j of `bits` is set, else 0.
    fn bit_bytes(self, bits: u32) -> Self::Bytes;
    /// `(b >> n) & mask` in every byte; `mask` keeps no bit that the shift emptied.
    fn shr_and(self, b: Self::Bytes, n: u32, mask: u8) -> Self::Bytes;
    /// `b << 4` in every byte, for bytes below 16.
    fn shl4(self, b: Self::Bytes) -> Self::Bytes;

    fn izero(self) -> Self::Ints;
    /// `acc` plus `s0` times the dot product of bytes 0..16 of unsigned `q` and signed `a`, plus
    /// `s1` times that of bytes 16..32.
    fn dot(self, acc: Self::Ints, q: Self::Bytes, a: Self::Bytes, s0: i16, s1: i16) -> Self::Ints;
    /// `acc` plus `s` times the dot product of signed `q` (any i8) and signed `a`.
    fn dot_signed(self, acc: Self::Ints, q: Self::Bytes, a: Self::Bytes, s: i16) -> Self::Ints;
    /// `acc` plus the dot product of `q` (signed bytes where `signed`, else unsigned and below
    /// 64) and the 16-bit activations `high * hi + lo`, which `wide` also holds whole, in
    /// `WIDE_ORDER`: by default one byte dot product per plane; a set that multiplies 16-bit
    /// integers in fewer steps uses `wide`. Either way each lane sums the same integers, so the
    /// results are bit for bit the same.
    #[allow(clippy::too_many_arguments)]
    fn dot_q16(self, acc: Self::Ints, q: Self::Bytes, signed: bool, hi: Self::Bytes, lo: Self::Bytes, high: i16, wide: &[i16; 32]) -> Self::Ints {
        let _ = wide;
        if signed {
            self.dot_signed(self.dot_signed(acc, q, hi, high), q, lo, 1)
        } else {
            self.dot(self.dot(acc, q, hi, high, high), q, lo, 1, 1)
        }
    }
    /// `acc + x * scale`, `x` converted to f32.
    fn fmadd_ints(self, acc: Self::Floats, x: Self::Ints, scale: f32) -> Self::Floats;

    fn fzero(self) -> Self::Floats;
    fn fsplat(self, v: f32) -> Self::Floats;
    fn fload(self, p: &[f32; 8]) -> Self::Floats;
    fn fstore(self, v: Self::Floats, p: &mut [f32; 8]);
    /// Eight little-endian f32.
    fn fload_le(self, p: &[u8; 32]) -> Self::Floats;
    /// Eight little-endian IEEE halves.
    fn fload_f16(self, p: &[u8; 16]) -> Self::Floats {
        let mut v = [0.0; 8];
        for (o, h) in v.iter_mut().zip(p.chunks_exact(2)) {
            *o = self.f16([h[0], h[1]]);
        }
        self.fload(&v)
    }
    fn fadd(self, a: Self::Floats, b: Self::Floats) -> Self::Floats;
    fn fmul(self, a: Self::Floats, b: Self::Floats) -> Self::Floats;
    /// `acc + a * b`.
    fn fmadd(self, acc: Self::Floats, a: Self::Floats, b: Self::Floats) -> Self::Floats;
    fn fmax(self, a: Self::Floats, b: Self::Floats) -> Self::Floats;
    fn fmin(self, a: Self::Floats, b: Self::Floats) -> Self::Floats;
    fn fsum(self, v: Self::Floats) -> f32;
    fn fmax_lane(self, v: Self::Floats) -> f32;
    /// Each lane rounded to the nearest integer.
    fn fround(self, v: Self::Floats) -> Self::Floats;
    /// `v * 2^n` for integral `n` in -126..=127.
    fn fscale2(self, v: Self::Floats, n: Self::Floats) -> Self::Floats;

    /// A little-endian IEEE half, widened exactly.
    fn f16(self, bits: [u8; 2]) -> f32 {
        f16_bits_to_f32(u16::from_le_bytes(bits))
    }

    /// `e^v` in every lane, to within a few ulp (Cephes' expf): inputs are clamped to
    /// -87.3..=88, so results are never 0 or infinite (softmax and SiLU never need them to be).
    #[inline(always)]
    fn fexp(self, v: Self::Floats) -> Self::Floats {
        let x = self.fmin(self.fmax(v, self.fsplat(-87.336_55)), self.fsplat(88.0));
        let n = self.fround(self.fmul(x, self.fsplat(std::f32::consts::LOG2_E)));
        // x - n ln 2, with ln 2 split in two for precision.
        let r = self.fmadd(x, n, self.fsplat(-0.693_359_4));
        let r = self.fmadd(r, n, self.fsplat(2.121_944_4e-4));
        let mut p = self.fsplat(1.987_569_1e-4);
        for c in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5] {
            p = self.fmadd(self.fsplat(c), p, r);
        }
        let r2 = self.fmul(r, r);
        let e = self.fadd(self.fmadd(r, p, r2), self.fsplat(1.0));
        self.fscale2(e, n)
    }
}

/// An IEEE half's bits as f32, exactly: the exponent is rebiased by one multiplication, which
/// also normalizes subnormals; infinities and NaN keep their all-ones exponent.
#[inline(always)]
pub(crate) fn f16_bits_to_f32(h: u16) -> f32 {
    let magnitude = f32::from_bits(u32::from(h & 0x7fff) << 13) * f32::from_bits(0x7780_0000);
    let bits = if h & 0x7c00 == 0x7c00 { magnitude.to_bits() | 0x7f80_0000 } else { magnitude.to_bits() };
    f32::from_bits(bits | (u32::from(h & 0x8000) << 16))
}

/// A kernel: work written once over [`Simd`], run with the instruction set `Kernels` picks.
pub(crate) trait Kernel {
    type Output;
    fn run<S: Simd>(self, s: S) -> Self::Output;
}

/// Which instruction set the CPU kernels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernels {
    /// Plain Rust: any machine, and the baseline the vector paths are tested against.
    Scalar,
    /// x86_64 with AVX2, FMA and F16C, detected at run time.
    Avx2,
    /// AVX2's set plus AVX-512 VNNI on 256-bit vectors (AVX512VL), detected at run time.
    Avx512Vnni,
    /// aarch64's Advanced SIMD.
    Neon,
    /// WebAssembly's 128-bit SIMD, when the crate is built with `-C target-feature=+simd128`.
    Simd128,
}

impl Kernels {
    pub const ALL: [Kernels; 5] = [Kernels::Scalar, Kernels::Avx2, Kernels::Avx512Vnni, Kernels::Neon, Kernels::Simd128];

    /// Weight rows the set multiplies with one token at once (`layout::GROUP`, or 1), which
    /// sets how a matrix is laid out. More keep more sums in flight where the registers hold
    /// them. Not in wasm, whose engines map its 128-bit pairs onto 16 registers: interleaved
    /// rows made decode in Chromium about 0.7x as fast there. Nor in plain Rust, the fallback,
    /// which so also keeps the row-after-row layout under the native tests.
    pub(crate) fn rows_per_pass(self) -> usize {
        match self {
            Kernels::Simd128 | Kernels::Scalar => 1,
            _ => super::layout::GROUP,
        }
    }

    /// The fastest set this machine runs.
    pub fn best() -> Self {
        Self::available().pop().unwrap_or(Kernels::Scalar)
    }

    /// Every set this machine runs, slowest first; `Scalar` always.
    pub fn available() -> Vec<Self> {
        Self::ALL.into_iter().filter(|k| k.is_available()).collect()
    }

    pub fn is_available(self) -> bool {
        match self {
            Kernels::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx2 => avx2::Avx2::<false>::new().is_some(),
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx512Vnni => avx2::Avx2::<true>::new().is_some(),
            #[cfg(target_arch = "aarch64")]
            Kernels::Neon => true,
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Kernels::Simd128 => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Runs `kernel` with this instruction set. Panics if this machine lacks it.
    #[inline]
    pub(crate) fn run<K: Kernel>(self, kernel: K) -> K::Output {
        match self {
            Kernels::Scalar => kernel.run(Scalar),
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx2 => match avx2::Avx2::<false>::new() {
                // SAFETY: the token proves the CPU has every feature `enter` enables.
                Some(s) => unsafe { avx2::enter(s, kernel) },
                None => unavailable(self),
            },
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx512Vnni => match avx2::Avx2::<true>::new() {
                // SAFETY: the token proves the CPU has every feature `enter_vnni` enables.
                Some(s) => unsafe { avx2::enter_vnni(s, kernel) },
                None => unavailable(self),
            },
            #[cfg(target_arch = "aarch64")]
            Kernels::Neon => kernel.run(neon::Neon),
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Kernels::Simd128 => kernel.run(wasm::Simd128),
            #[allow(unreachable_patterns)]
            _ => unavailable(self),
        }
    }
}

#[cold]
fn unavailable(k: Kernels) -> ! {
    panic!("{k} kernels do not run on this machine")
}

impl fmt::Display for Kernels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kernels::Scalar => "scalar",
            Kernels::Avx2 => "AVX2",
            Kernels::Avx512Vnni => "AVX-512 VNNI",
            Kernels::Neon => "NEON",
            Kernels::Simd128 => "simd128",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_widening_matches_the_half_crate_for_every_value() {
        for h in 0..=u16::MAX {
            let want = half::f16::from_bits(h).to_f32();
            let got = f16_bits_to_f32(h);
            assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()), "{h:#06x}: {got} vs {want}");
        }
    }

    #[test]
    fn exp_is_within_a_few_ulp() {
        for k in Kernels::available() {
            k.run(ExpCheck);
        }
    }

    #[test]
    fn sixteen_bit_products_sum_what_the_byte_planes_sum_in_every_lane() {
        for k in Kernels::available() {
            k.run(WideCheck);
        }
    }

    /// `dot_q16` against the byte planes it stands in for, lane by lane, on random blocks with
    /// the extremes of every range (i8::MIN among signed quants).
    struct WideCheck;
    impl Kernel for WideCheck {
        type Output = ();
        fn run<S: Simd>(self, s: S) {
            use crate::cpu::activations::HIGH;
            use rand::{Rng, SeedableRng};
            let mut rng = rand::rngs::SmallRng::seed_from_u64(5);
            let lanes = |x: S::Ints| {
                // Every sum is below 2^24 in magnitude, so f32 holds it exactly.
                let mut out = [0.0; 8];
                s.fstore(s.fmadd_ints(s.fzero(), x, 1.0), &mut out);
                out
            };
            for case in 0..2000 {
                let signed = case % 2 == 0;
                let extreme = case < 8;
                let q: [u8; 32] = std::array::from_fn(|_| match (signed, extreme) {
                    (true, true) => 0x80,
                    (false, true) => 63,
                    (true, false) => rng.random(),
                    (false, false) => rng.random_range(0..64),
                });
                let plane = |rng: &mut rand::rngs::SmallRng| -> [i8; 32] { std::array::from_fn(|_| if extreme { 127 } else { rng.random_range(-127..=127) }) };
                let (hi, lo) = (plane(&mut rng), plane(&mut rng));
                let wide: [i16; 32] = std::array::from_fn(|j| i16::from(hi[WIDE_ORDER[j]]) * HIGH + i16::from(lo[WIDE_ORDER[j]]));
                let (qv, hv, lv) = (s.load(&q), s.load_i8(&hi), s.load_i8(&lo));
                let planes = if signed {
                    s.dot_signed(s.dot_signed(s.izero(), qv, hv, HIGH), qv, lv, 1)
                } else {
                    s.dot(s.dot(s.izero(), qv, hv, HIGH, HIGH), qv, lv, 1, 1)
                };
                let whole = s.dot_q16(s.izero(), qv, signed, hv, lv, HIGH, &wide);
                assert_eq!(lanes(whole), lanes(planes), "case {case} (signed {signed})");
            }
        }
    }

    struct ExpCheck;
    impl Kernel for ExpCheck {
        type Output = ();
        fn run<S: Simd>(self, s: S) {
            for i in -8700..8800 {
                let x = i as f32 / 100.0 + 0.003;
                let mut out = [0.0; 8];
                s.fstore(s.fexp(s.fsplat(x)), &mut out);
                let want = (x as f64).exp();
                let err = ((out[0] as f64 - want) / want).abs();
                assert!(err < 4e-7, "exp({x}) = {} vs {want}", out[0]);
            }
        }
    }
}
