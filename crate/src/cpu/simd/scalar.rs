//! Plain Rust, lane by lane: runs anywhere, and is the baseline the vector sets are tested against.

use super::Simd;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Scalar;

type Bytes = [u8; 32];
type Floats = [f32; 8];

#[inline(always)]
fn bytes(f: impl Fn(usize) -> u8) -> Bytes {
    std::array::from_fn(f)
}

#[inline(always)]
fn lanes(f: impl Fn(usize) -> f32) -> Floats {
    std::array::from_fn(f)
}

impl Simd for Scalar {
    type Bytes = Bytes;
    type Ints = i32;
    type Floats = Floats;

    #[inline(always)]
    fn load(self, p: &[u8; 32]) -> Bytes {
        *p
    }
    #[inline(always)]
    fn splat(self, v: u8) -> Bytes {
        [v; 32]
    }
    #[inline(always)]
    fn and(self, a: Bytes, b: Bytes) -> Bytes {
        bytes(|i| a[i] & b[i])
    }
    #[inline(always)]
    fn or(self, a: Bytes, b: Bytes) -> Bytes {
        bytes(|i| a[i] | b[i])
    }
    #[inline(always)]
    fn nibbles(self, p: &[u8; 16]) -> Bytes {
        bytes(|i| if i < 16 { p[i] & 0x0f } else { p[i - 16] >> 4 })
    }
    #[inline(always)]
    fn low_nibbles(self, b: Bytes) -> Bytes {
        bytes(|i| b[i] & 0x0f)
    }
    #[inline(always)]
    fn high_nibbles(self, b: Bytes) -> Bytes {
        bytes(|i| b[i] >> 4)
    }
    #[inline(always)]
    fn bit_bytes(self, bits: u32) -> Bytes {
        bytes(|i| if bits >> i & 1 == 1 { 0xff } else { 0 })
    }
    #[inline(always)]
    fn shr_and(self, b: Bytes, n: u32, mask: u8) -> Bytes {
        bytes(|i| (b[i] >> n) & mask)
    }
    #[inline(always)]
    fn shl4(self, b: Bytes) -> Bytes {
        bytes(|i| b[i] << 4)
    }

    #[inline(always)]
    fn izero(self) -> i32 {
        0
    }
    #[inline(always)]
    fn dot(self, acc: i32, q: Bytes, a: Bytes, s0: i16, s1: i16) -> i32 {
        let half = |r: std::ops::Range<usize>| r.map(|i| i32::from(q[i]) * i32::from(a[i] as i8)).sum::<i32>();
        acc + i32::from(s0) * half(0..16) + i32::from(s1) * half(16..32)
    }
    #[inline(always)]
    fn dot_signed(self, acc: i32, q: Bytes, a: Bytes, s: i16) -> i32 {
        acc + i32::from(s) * (0..32).map(|i| i32::from(q[i] as i8) * i32::from(a[i] as i8)).sum::<i32>()
    }
    #[inline(always)]
    fn fmadd_ints(self, mut acc: Floats, x: i32, scale: f32) -> Floats {
        acc[0] += x as f32 * scale;
        acc
    }

    #[inline(always)]
    fn fzero(self) -> Floats {
        [0.0; 8]
    }
    #[inline(always)]
    fn fsplat(self, v: f32) -> Floats {
        [v; 8]
    }
    #[inline(always)]
    fn fload(self, p: &[f32; 8]) -> Floats {
        *p
    }
    #[inline(always)]
    fn fstore(self, v: Floats, p: &mut [f32; 8]) {
        *p = v;
    }
    #[inline(always)]
    fn fload_le(self, p: &[u8; 32]) -> Floats {
        lanes(|i| f32::from_le_bytes([p[4 * i], p[4 * i + 1], p[4 * i + 2], p[4 * i + 3]]))
    }
    #[inline(always)]
    fn fadd(self, a: Floats, b: Floats) -> Floats {
        lanes(|i| a[i] + b[i])
    }
    #[inline(always)]
    fn fmul(self, a: Floats, b: Floats) -> Floats {
        lanes(|i| a[i] * b[i])
    }
    #[inline(always)]
    fn fmadd(self, acc: Floats, a: Floats, b: Floats) -> Floats {
        lanes(|i| acc[i] + a[i] * b[i])
    }
    #[inline(always)]
    fn fmax(self, a: Floats, b: Floats) -> Floats {
        lanes(|i| a[i].max(b[i]))
    }
    #[inline(always)]
    fn fmin(self, a: Floats, b: Floats) -> Floats {
        lanes(|i| a[i].min(b[i]))
    }
    #[inline(always)]
    fn fsum(self, v: Floats) -> f32 {
        ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]))
    }
    #[inline(always)]
    fn fmax_lane(self, v: Floats) -> f32 {
        v.iter().copied().fold(f32::NEG_INFINITY, f32::max)
    }
    #[inline(always)]
    fn fround(self, v: Floats) -> Floats {
        // Adding and removing 1.5 * 2^23 rounds to nearest (ties to even) for |v| < 2^22,
        // without a libm call; larger values are integers already.
        lanes(|i| if v[i].abs() < 4_194_304.0 { (v[i] + 12_582_912.0) - 12_582_912.0 } else { v[i] })
    }
    #[inline(always)]
    fn fscale2(self, v: Floats, n: Floats) -> Floats {
        lanes(|i| v[i] * f32::from_bits(((n[i] as i32 + 127) as u32) << 23))
    }
}
