//! x86_64 AVX2 with FMA and F16C: 256-bit vectors, byte products summed in pairs by
//! `maddubs` (unsigned by signed) and widened and scaled by `madd`, as llama.cpp does. With
//! `VNNI`, AVX-512 VNNI on the same 256-bit vectors (AVX512VL): an unscaled byte dot product is
//! one `vpdpbusd` into the 32-bit sums instead of `maddubs`, `madd` and an add.

use std::arch::x86_64::*;

use super::{Kernel, Simd};

/// `Q16::wide` for `dot_q16`: the even elements, then the odd ones.
pub(crate) const WIDE_ORDER: [usize; 32] = {
    let mut order = [0; 32];
    let mut j = 0;
    while j < 16 {
        (order[j], order[16 + j]) = (2 * j, 2 * j + 1);
        j += 1;
    }
    order
};

#[derive(Debug, Clone, Copy)]
pub(crate) struct Avx2<const VNNI: bool>(());

impl Avx2<false> {
    pub(crate) fn new() -> Option<Self> {
        let ok = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c");
        ok.then_some(Avx2(()))
    }
}

impl Avx2<true> {
    pub(crate) fn new() -> Option<Self> {
        let ok = Avx2::<false>::new().is_some()
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512vnni");
        ok.then_some(Avx2(()))
    }
}

/// Runs `kernel` compiled with AVX2: everything it inlines is, too.
///
/// # Safety
/// Only sound where AVX2, FMA and F16C exist; an `Avx2` token proves that.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn enter<K: Kernel>(s: Avx2<false>, kernel: K) -> K::Output {
    kernel.run(s)
}

/// Runs `kernel` compiled with AVX2 and AVX-512 VNNI.
///
/// # Safety
/// Only sound where those exist; an `Avx2<true>` token proves that.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512vnni")]
pub(super) unsafe fn enter_vnni<K: Kernel>(s: Avx2<true>, kernel: K) -> K::Output {
    kernel.run(s)
}

// SAFETY (every `unsafe` below): an `Avx2` value exists only where `Avx2::new` found the
// features, and the loads read exactly the arrays they are given (unaligned loads).
impl<const VNNI: bool> Simd for Avx2<VNNI> {
    type Bytes = __m256i;
    type Ints = __m256i;
    type Floats = __m256;

    #[inline(always)]
    fn load(self, p: &[u8; 32]) -> __m256i {
        unsafe { _mm256_loadu_si256(p.as_ptr().cast()) }
    }
    #[inline(always)]
    fn splat(self, v: u8) -> __m256i {
        unsafe { _mm256_set1_epi8(v as i8) }
    }
    #[inline(always)]
    fn and(self, a: __m256i, b: __m256i) -> __m256i {
        unsafe { _mm256_and_si256(a, b) }
    }
    #[inline(always)]
    fn or(self, a: __m256i, b: __m256i) -> __m256i {
        unsafe { _mm256_or_si256(a, b) }
    }
    #[inline(always)]
    fn nibbles(self, p: &[u8; 16]) -> __m256i {
        unsafe {
            let x = _mm_loadu_si128(p.as_ptr().cast());
            let m = _mm_set1_epi8(0x0f);
            _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(x, 4), m), _mm_and_si128(x, m))
        }
    }
    #[inline(always)]
    fn low_nibbles(self, b: __m256i) -> __m256i {
        unsafe { _mm256_and_si256(b, _mm256_set1_epi8(0x0f)) }
    }
    #[inline(always)]
    fn high_nibbles(self, b: __m256i) -> __m256i {
        unsafe { _mm256_and_si256(_mm256_srli_epi16(b, 4), _mm256_set1_epi8(0x0f)) }
    }
    #[inline(always)]
    fn bit_bytes(self, bits: u32) -> __m256i {
        unsafe {
            // Byte j takes byte j / 8 of `bits`, then every bit but bit j % 8 is set.
            let spread = _mm256_set_epi64x(0x0303_0303_0303_0303, 0x0202_0202_0202_0202, 0x0101_0101_0101_0101, 0);
            let x = _mm256_shuffle_epi8(_mm256_set1_epi32(bits as i32), spread);
            let others = _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe);
            _mm256_cmpeq_epi8(_mm256_or_si256(x, others), _mm256_set1_epi64x(-1))
        }
    }
    #[inline(always)]
    fn shr_and(self, b: __m256i, n: u32, mask: u8) -> __m256i {
        // A 16-bit shift moves bits across bytes only into those the mask clears.
        unsafe { _mm256_and_si256(_mm256_srl_epi16(b, _mm_cvtsi32_si128(n as i32)), _mm256_set1_epi8(mask as i8)) }
    }
    #[inline(always)]
    fn shl4(self, b: __m256i) -> __m256i {
        unsafe { _mm256_slli_epi16(b, 4) }
    }

    #[inline(always)]
    fn izero(self) -> __m256i {
        unsafe { _mm256_setzero_si256() }
    }
    #[inline(always)]
    fn dot(self, acc: __m256i, q: __m256i, a: __m256i, s0: i16, s1: i16) -> __m256i {
        unsafe {
            // Sums of four products fit i32 whole (`maddubs` keeps pairs within i16 too).
            if VNNI && s0 == 1 && s1 == 1 {
                return _mm256_dpbusd_epi32(acc, q, a);
            }
            let pairs = _mm256_maddubs_epi16(q, a);
            let scales = _mm256_set_m128i(_mm_set1_epi16(s1), _mm_set1_epi16(s0));
            _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, scales))
        }
    }
    #[inline(always)]
    fn dot_signed(self, acc: __m256i, q: __m256i, a: __m256i, s: i16) -> __m256i {
        unsafe {
            // |q| times a with q's sign: maddubs and dpbusd want their first operand unsigned.
            if VNNI && s == 1 {
                return _mm256_dpbusd_epi32(acc, _mm256_sign_epi8(q, q), _mm256_sign_epi8(a, q));
            }
            let pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(a, q));
            _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(s)))
        }
    }
    /// The quants' even and odd bytes widened to 16 bits by shifts, against the activations'
    /// even and odd elements (`WIDE_ORDER`): two `madd`s, or with VNNI two `vpdpwssd`s, where
    /// the byte planes take a sign fix, `maddubs` and `madd` each. Lane k sums elements
    /// 4k..4k + 4 either way.
    #[inline(always)]
    fn dot_q16(self, acc: __m256i, q: __m256i, signed: bool, _hi: __m256i, _lo: __m256i, _high: i16, wide: &[i16; 32]) -> __m256i {
        unsafe {
            let (even, odd) = if signed {
                (_mm256_srai_epi16(_mm256_slli_epi16(q, 8), 8), _mm256_srai_epi16(q, 8))
            } else {
                (_mm256_and_si256(q, _mm256_set1_epi16(0xff)), _mm256_srli_epi16(q, 8))
            };
            let a_even = _mm256_loadu_si256(wide.as_ptr().cast());
            let a_odd = _mm256_loadu_si256(wide.as_ptr().add(16).cast());
            if VNNI {
                return _mm256_dpwssd_epi32(_mm256_dpwssd_epi32(acc, even, a_even), odd, a_odd);
            }
            _mm256_add_epi32(acc, _mm256_add_epi32(_mm256_madd_epi16(even, a_even), _mm256_madd_epi16(odd, a_odd)))
        }
    }
    #[inline(always)]
    fn fmadd_ints(self, acc: __m256, x: __m256i, scale: f32) -> __m256 {
        unsafe { _mm256_fmadd_ps(_mm256_cvtepi32_ps(x), _mm256_set1_ps(scale), acc) }
    }

    #[inline(always)]
    fn fzero(self) -> __m256 {
        unsafe { _mm256_setzero_ps() }
    }
    #[inline(always)]
    fn fsplat(self, v: f32) -> __m256 {
        unsafe { _mm256_set1_ps(v) }
    }
    #[inline(always)]
    fn fload(self, p: &[f32; 8]) -> __m256 {
        unsafe { _mm256_loadu_ps(p.as_ptr()) }
    }
    #[inline(always)]
    fn fstore(self, v: __m256, p: &mut [f32; 8]) {
        unsafe { _mm256_storeu_ps(p.as_mut_ptr(), v) }
    }
    #[inline(always)]
    fn fload_le(self, p: &[u8; 32]) -> __m256 {
        unsafe { _mm256_loadu_ps(p.as_ptr().cast()) }
    }
    #[inline(always)]
    fn fload_f16(self, p: &[u8; 16]) -> __m256 {
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.as_ptr().cast())) }
    }
    #[inline(always)]
    fn fadd(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_add_ps(a, b) }
    }
    #[inline(always)]
    fn fmul(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_mul_ps(a, b) }
    }
    #[inline(always)]
    fn fmadd(self, acc: __m256, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_fmadd_ps(a, b, acc) }
    }
    #[inline(always)]
    fn fmax(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_max_ps(a, b) }
    }
    #[inline(always)]
    fn fmin(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_min_ps(a, b) }
    }
    #[inline(always)]
    fn fsum(self, v: __m256) -> f32 {
        unsafe {
            let x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            let x = _mm_add_ps(x, _mm_movehl_ps(x, x));
            _mm_cvtss_f32(_mm_add_ss(x, _mm_movehdup_ps(x)))
        }
    }
    #[inline(always)]
    fn fmax_lane(self, v: __m256) -> f32 {
        unsafe {
            let x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            let x = _mm_max_ps(x, _mm_movehl_ps(x, x));
            _mm_cvtss_f32(_mm_max_ss(x, _mm_movehdup_ps(x)))
        }
    }
    #[inline(always)]
    fn fround(self, v: __m256) -> __m256 {
        unsafe { _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC) }
    }
    #[inline(always)]
    fn fscale2(self, v: __m256, n: __m256) -> __m256 {
        unsafe {
            let e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
            _mm256_mul_ps(v, _mm256_castsi256_ps(e))
        }
    }
    #[inline(always)]
    fn f16(self, bits: [u8; 2]) -> f32 {
        unsafe { _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(u16::from_le_bytes(bits))))) }
    }
}
