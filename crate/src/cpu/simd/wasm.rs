//! WebAssembly simd128 (built with `-C target-feature=+simd128`): 32 bytes as two 128-bit
//! vectors; byte products widened by `extmul` and summed in scaled pairs by `i32x4_dot_i16x8`.

use std::arch::wasm32::*;

use super::Simd;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Simd128;

#[derive(Clone, Copy)]
pub(crate) struct Pair(v128, v128);

/// `acc + s *` the dot product of 16 signed bytes (quants below 64 are valid signed bytes).
#[inline(always)]
fn dot16(acc: v128, q: v128, a: v128, s: i16) -> v128 {
    let s = i16x8_splat(s);
    let low = i32x4_dot_i16x8(i16x8_extmul_low_i8x16(q, a), s);
    let high = i32x4_dot_i16x8(i16x8_extmul_high_i8x16(q, a), s);
    i32x4_add(acc, i32x4_add(low, high))
}

#[inline(always)]
fn pow2(n: v128) -> v128 {
    i32x4_shl(i32x4_add(i32x4_trunc_sat_f32x4(n), i32x4_splat(127)), 23)
}

// SAFETY (every `unsafe` below): the loads and stores touch exactly the arrays they are given;
// wasm loads need no alignment.
impl Simd for Simd128 {
    type Bytes = Pair;
    type Ints = v128;
    type Floats = Pair;

    #[inline(always)]
    fn load(self, p: &[u8; 32]) -> Pair {
        unsafe { Pair(v128_load(p.as_ptr().cast()), v128_load(p.as_ptr().add(16).cast())) }
    }
    #[inline(always)]
    fn splat(self, v: u8) -> Pair {
        Pair(u8x16_splat(v), u8x16_splat(v))
    }
    #[inline(always)]
    fn and(self, a: Pair, b: Pair) -> Pair {
        Pair(v128_and(a.0, b.0), v128_and(a.1, b.1))
    }
    #[inline(always)]
    fn or(self, a: Pair, b: Pair) -> Pair {
        Pair(v128_or(a.0, b.0), v128_or(a.1, b.1))
    }
    #[inline(always)]
    fn nibbles(self, p: &[u8; 16]) -> Pair {
        let x = unsafe { v128_load(p.as_ptr().cast()) };
        Pair(v128_and(x, u8x16_splat(0x0f)), u8x16_shr(x, 4))
    }
    #[inline(always)]
    fn low_nibbles(self, b: Pair) -> Pair {
        Pair(v128_and(b.0, u8x16_splat(0x0f)), v128_and(b.1, u8x16_splat(0x0f)))
    }
    #[inline(always)]
    fn high_nibbles(self, b: Pair) -> Pair {
        Pair(u8x16_shr(b.0, 4), u8x16_shr(b.1, 4))
    }
    #[inline(always)]
    fn bit_bytes(self, bits: u32) -> Pair {
        // Byte j takes byte j / 8 of `bits`, tested against bit j % 8.
        let x = u32x4_splat(bits);
        let select = u8x16(1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
        let half = |i: v128| {
            let spread = i8x16_swizzle(x, i);
            i8x16_eq(v128_and(spread, select), select)
        };
        Pair(half(u8x16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)), half(u8x16(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3)))
    }
    #[inline(always)]
    fn shr_and(self, b: Pair, n: u32, mask: u8) -> Pair {
        let m = u8x16_splat(mask);
        Pair(v128_and(u8x16_shr(b.0, n), m), v128_and(u8x16_shr(b.1, n), m))
    }
    #[inline(always)]
    fn shl4(self, b: Pair) -> Pair {
        Pair(i8x16_shl(b.0, 4), i8x16_shl(b.1, 4))
    }

    #[inline(always)]
    fn izero(self) -> v128 {
        i32x4_splat(0)
    }
    #[inline(always)]
    fn dot(self, acc: v128, q: Pair, a: Pair, s0: i16, s1: i16) -> v128 {
        dot16(dot16(acc, q.0, a.0, s0), q.1, a.1, s1)
    }
    #[inline(always)]
    fn dot_signed(self, acc: v128, q: Pair, a: Pair, s: i16) -> v128 {
        dot16(dot16(acc, q.0, a.0, s), q.1, a.1, s)
    }
    /// The weights widened to 16 bits against the whole activations (in their natural order):
    /// one `dot_i16x8` per 8 elements, where the byte planes take two extmuls and two dots per
    /// plane. Pair j of elements lands in lane j % 4 either way. Unsigned quants below 64 widen
    /// as signed bytes too.
    #[inline(always)]
    fn dot_q16(self, acc: v128, q: Pair, _signed: bool, _hi: Pair, _lo: Pair, _high: i16, wide: &[i16; 32]) -> v128 {
        let a = |i: usize| unsafe { v128_load(wide.as_ptr().add(8 * i).cast()) };
        let low = i32x4_add(i32x4_dot_i16x8(i16x8_extend_low_i8x16(q.0), a(0)), i32x4_dot_i16x8(i16x8_extend_high_i8x16(q.0), a(1)));
        let high = i32x4_add(i32x4_dot_i16x8(i16x8_extend_low_i8x16(q.1), a(2)), i32x4_dot_i16x8(i16x8_extend_high_i8x16(q.1), a(3)));
        i32x4_add(acc, i32x4_add(low, high))
    }
    #[inline(always)]
    fn fmadd_ints(self, acc: Pair, x: v128, scale: f32) -> Pair {
        Pair(f32x4_add(acc.0, f32x4_mul(f32x4_convert_i32x4(x), f32x4_splat(scale))), acc.1)
    }

    #[inline(always)]
    fn fzero(self) -> Pair {
        self.fsplat(0.0)
    }
    #[inline(always)]
    fn fsplat(self, v: f32) -> Pair {
        Pair(f32x4_splat(v), f32x4_splat(v))
    }
    #[inline(always)]
    fn fload(self, p: &[f32; 8]) -> Pair {
        unsafe { Pair(v128_load(p.as_ptr().cast()), v128_load(p.as_ptr().add(4).cast())) }
    }
    #[inline(always)]
    fn fstore(self, v: Pair, p: &mut [f32; 8]) {
        unsafe {
            v128_store(p.as_mut_ptr().cast(), v.0);
            v128_store(p.as_mut_ptr().add(4).cast(), v.1);
        }
    }
    #[inline(always)]
    fn fload_le(self, p: &[u8; 32]) -> Pair {
        self.load(p)
    }
    #[inline(always)]
    fn fadd(self, a: Pair, b: Pair) -> Pair {
        Pair(f32x4_add(a.0, b.0), f32x4_add(a.1, b.1))
    }
    #[inline(always)]
    fn fmul(self, a: Pair, b: Pair) -> Pair {
        Pair(f32x4_mul(a.0, b.0), f32x4_mul(a.1, b.1))
    }
    #[inline(always)]
    fn fmadd(self, acc: Pair, a: Pair, b: Pair) -> Pair {
        self.fadd(acc, self.fmul(a, b))
    }
    #[inline(always)]
    fn fmax(self, a: Pair, b: Pair) -> Pair {
        Pair(f32x4_pmax(a.0, b.0), f32x4_pmax(a.1, b.1))
    }
    #[inline(always)]
    fn fmin(self, a: Pair, b: Pair) -> Pair {
        Pair(f32x4_pmin(a.0, b.0), f32x4_pmin(a.1, b.1))
    }
    #[inline(always)]
    fn fsum(self, v: Pair) -> f32 {
        let x = f32x4_add(v.0, v.1);
        (f32x4_extract_lane::<0>(x) + f32x4_extract_lane::<2>(x)) + (f32x4_extract_lane::<1>(x) + f32x4_extract_lane::<3>(x))
    }
    #[inline(always)]
    fn fmax_lane(self, v: Pair) -> f32 {
        let x = f32x4_pmax(v.0, v.1);
        f32x4_extract_lane::<0>(x).max(f32x4_extract_lane::<1>(x)).max(f32x4_extract_lane::<2>(x).max(f32x4_extract_lane::<3>(x)))
    }
    #[inline(always)]
    fn fround(self, v: Pair) -> Pair {
        Pair(f32x4_nearest(v.0), f32x4_nearest(v.1))
    }
    #[inline(always)]
    fn fscale2(self, v: Pair, n: Pair) -> Pair {
        Pair(f32x4_mul(v.0, pow2(n.0)), f32x4_mul(v.1, pow2(n.1)))
    }
}
