//! aarch64 Advanced SIMD: 32 bytes as two 128-bit registers; byte products widened by `vmull`
//! (quants below 64 are valid signed bytes, so one signed product serves every format).
// Which of these intrinsics need `unsafe` depends on the toolchain's target-feature rules.
#![allow(unused_unsafe)]

use std::arch::aarch64::*;

use super::Simd;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Neon;

#[derive(Clone, Copy)]
pub(crate) struct Bytes(uint8x16_t, uint8x16_t);

#[derive(Clone, Copy)]
pub(crate) struct Floats(float32x4_t, float32x4_t);

/// Byte j of the result is byte `j / 8` of `bits` (j < 16), tested against bit `j % 8`.
#[inline(always)]
fn bit_half(bits: u16) -> uint8x16_t {
    unsafe {
        let spread = vcombine_u8(vdup_n_u8(bits as u8), vdup_n_u8((bits >> 8) as u8));
        let select: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];
        vtstq_u8(spread, vld1q_u8(select.as_ptr()))
    }
}

/// `acc + s *` the dot product of 16 signed bytes.
#[inline(always)]
fn dot16(acc: int32x4_t, q: uint8x16_t, a: uint8x16_t, s: i16) -> int32x4_t {
    unsafe {
        let (q, a) = (vreinterpretq_s8_u8(q), vreinterpretq_s8_u8(a));
        let products = vaddq_s16(vmull_s8(vget_low_s8(q), vget_low_s8(a)), vmull_high_s8(q, a));
        vmlaq_n_s32(acc, vpaddlq_s16(products), i32::from(s))
    }
}

// SAFETY (every `unsafe` below): NEON is part of aarch64, and the loads and stores touch exactly
// the arrays they are given.
impl Simd for Neon {
    type Bytes = Bytes;
    type Ints = int32x4_t;
    type Floats = Floats;

    #[inline(always)]
    fn load(self, p: &[u8; 32]) -> Bytes {
        unsafe { Bytes(vld1q_u8(p.as_ptr()), vld1q_u8(p.as_ptr().add(16))) }
    }
    #[inline(always)]
    fn splat(self, v: u8) -> Bytes {
        unsafe { Bytes(vdupq_n_u8(v), vdupq_n_u8(v)) }
    }
    #[inline(always)]
    fn and(self, a: Bytes, b: Bytes) -> Bytes {
        unsafe { Bytes(vandq_u8(a.0, b.0), vandq_u8(a.1, b.1)) }
    }
    #[inline(always)]
    fn or(self, a: Bytes, b: Bytes) -> Bytes {
        unsafe { Bytes(vorrq_u8(a.0, b.0), vorrq_u8(a.1, b.1)) }
    }
    #[inline(always)]
    fn nibbles(self, p: &[u8; 16]) -> Bytes {
        unsafe {
            let x = vld1q_u8(p.as_ptr());
            Bytes(vandq_u8(x, vdupq_n_u8(0x0f)), vshrq_n_u8::<4>(x))
        }
    }
    #[inline(always)]
    fn low_nibbles(self, b: Bytes) -> Bytes {
        unsafe { Bytes(vandq_u8(b.0, vdupq_n_u8(0x0f)), vandq_u8(b.1, vdupq_n_u8(0x0f))) }
    }
    #[inline(always)]
    fn high_nibbles(self, b: Bytes) -> Bytes {
        unsafe { Bytes(vshrq_n_u8::<4>(b.0), vshrq_n_u8::<4>(b.1)) }
    }
    #[inline(always)]
    fn bit_bytes(self, bits: u32) -> Bytes {
        Bytes(bit_half(bits as u16), bit_half((bits >> 16) as u16))
    }
    #[inline(always)]
    fn shr_and(self, b: Bytes, n: u32, mask: u8) -> Bytes {
        unsafe {
            let shift = vdupq_n_s8(-(n as i8));
            let m = vdupq_n_u8(mask);
            Bytes(vandq_u8(vshlq_u8(b.0, shift), m), vandq_u8(vshlq_u8(b.1, shift), m))
        }
    }
    #[inline(always)]
    fn shl4(self, b: Bytes) -> Bytes {
        unsafe { Bytes(vshlq_n_u8::<4>(b.0), vshlq_n_u8::<4>(b.1)) }
    }

    #[inline(always)]
    fn izero(self) -> int32x4_t {
        unsafe { vdupq_n_s32(0) }
    }
    #[inline(always)]
    fn dot(self, acc: int32x4_t, q: Bytes, a: Bytes, s0: i16, s1: i16) -> int32x4_t {
        dot16(dot16(acc, q.0, a.0, s0), q.1, a.1, s1)
    }
    #[inline(always)]
    fn dot_signed(self, acc: int32x4_t, q: Bytes, a: Bytes, s: i16) -> int32x4_t {
        // Products of -128..=127 and -127..=127 sum in pairs within i16.
        dot16(dot16(acc, q.0, a.0, s), q.1, a.1, s)
    }
    #[inline(always)]
    fn fmadd_ints(self, acc: Floats, x: int32x4_t, scale: f32) -> Floats {
        unsafe { Floats(vfmaq_n_f32(acc.0, vcvtq_f32_s32(x), scale), acc.1) }
    }

    #[inline(always)]
    fn fzero(self) -> Floats {
        self.fsplat(0.0)
    }
    #[inline(always)]
    fn fsplat(self, v: f32) -> Floats {
        unsafe { Floats(vdupq_n_f32(v), vdupq_n_f32(v)) }
    }
    #[inline(always)]
    fn fload(self, p: &[f32; 8]) -> Floats {
        unsafe { Floats(vld1q_f32(p.as_ptr()), vld1q_f32(p.as_ptr().add(4))) }
    }
    #[inline(always)]
    fn fstore(self, v: Floats, p: &mut [f32; 8]) {
        unsafe {
            vst1q_f32(p.as_mut_ptr(), v.0);
            vst1q_f32(p.as_mut_ptr().add(4), v.1);
        }
    }
    #[inline(always)]
    fn fload_le(self, p: &[u8; 32]) -> Floats {
        unsafe {
            let b = self.load(p);
            Floats(vreinterpretq_f32_u8(b.0), vreinterpretq_f32_u8(b.1))
        }
    }
    #[inline(always)]
    fn fadd(self, a: Floats, b: Floats) -> Floats {
        unsafe { Floats(vaddq_f32(a.0, b.0), vaddq_f32(a.1, b.1)) }
    }
    #[inline(always)]
    fn fmul(self, a: Floats, b: Floats) -> Floats {
        unsafe { Floats(vmulq_f32(a.0, b.0), vmulq_f32(a.1, b.1)) }
    }
    #[inline(always)]
    fn fmadd(self, acc: Floats, a: Floats, b: Floats) -> Floats {
        unsafe { Floats(vfmaq_f32(acc.0, a.0, b.0), vfmaq_f32(acc.1, a.1, b.1)) }
    }
    #[inline(always)]
    fn fmax(self, a: Floats, b: Floats) -> Floats {
        unsafe { Floats(vmaxq_f32(a.0, b.0), vmaxq_f32(a.1, b.1)) }
    }
    #[inline(always)]
    fn fmin(self, a: Floats, b: Floats) -> Floats {
        unsafe { Floats(vminq_f32(a.0, b.0), vminq_f32(a.1, b.1)) }
    }
    #[inline(always)]
    fn fsum(self, v: Floats) -> f32 {
        unsafe { vaddvq_f32(vaddq_f32(v.0, v.1)) }
    }
    #[inline(always)]
    fn fmax_lane(self, v: Floats) -> f32 {
        unsafe { vmaxvq_f32(vmaxq_f32(v.0, v.1)) }
    }
    #[inline(always)]
    fn fround(self, v: Floats) -> Floats {
        unsafe { Floats(vrndnq_f32(v.0), vrndnq_f32(v.1)) }
    }
    #[inline(always)]
    fn fscale2(self, v: Floats, n: Floats) -> Floats {
        unsafe {
            let pow2 = |n: float32x4_t| {
                vreinterpretq_f32_s32(vshlq_n_s32::<23>(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127))))
            };
            Floats(vmulq_f32(v.0, pow2(n.0)), vmulq_f32(v.1, pow2(n.1)))
        }
    }
}
