//! Activations in the form each weight format multiplies with: 16-bit integers per block for
//! the quantized formats, plain f32 for F32 and F16 weights.
//!
//! A block of activations becomes integers `Q = round(x / d)` with `d = amax / 32385` (amax: the
//! block's largest magnitude), so each value moves by at most half a step, `amax / 64770` (plus
//! the float rounding of `x / d`, under 1% of that). Each `Q` is kept as two signed bytes,
//! `Q = 255 hi + lo` with both in -127..=127, so the kernels' byte dot products (as llama.cpp's
//! 8-bit ones) do the work, twice. One 8-bit plane alone, as llama.cpp's Q8_1 and Q8_K, moves
//! the test model's logits by up to 2.4 from the f32 reference (most of it in the last five of
//! its 30 layers); two move them by 0.013, close to the GPU's f32. The second plane costs about
//! 15% of prefill speed and nothing measurable in decode, which is bound by reading the weights.
//! Where a set multiplies 16-bit integers in fewer steps (AVX2's `madd`, AVX-512's `vpdpwssd`,
//! wasm's `i32x4.dot_i16x8_s`), the 32-element formats' weights multiply the integers whole
//! instead (`Q16::wide`; see `dot32` for when): the same sums in the same lanes, in about half
//! the instructions.

use bytemuck::{Pod, Zeroable};

use super::dot::{with_format, FormatVisitor, RowDot};
use super::simd::WIDE_ORDER;
use crate::quant::QuantFormat;

/// One block of activations, quantized from `ELEMS` f32 values.
pub(crate) trait Activation: Pod + Send + Sync {
    const ELEMS: usize;
    fn quantize(x: &[f32]) -> Self;
    /// The values the kernels multiply with.
    fn dequantize(&self, out: &mut [f32]);
}

/// The weight of the high byte plane.
pub(crate) const HIGH: i16 = 255;
/// Largest |Q|: 127 HIGH + 127.
const Q_MAX: f32 = 32385.0;

/// 32 activations `d * (HIGH hi + lo)`, with `s = d * Σ (HIGH hi + lo)` for formats whose
/// weights carry an offset, and the same integers whole in `wide` (in `WIDE_ORDER`), for
/// instruction sets that multiply 16-bit integers in one step (`Simd::dot_q16`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub(crate) struct Q16 {
    pub d: f32,
    pub s: f32,
    pub hi: [i8; 32],
    pub lo: [i8; 32],
    pub wide: [i16; 32],
}

/// 256 activations `d * (HIGH hi + lo)`, with the sum of each run of 16 for the K-quants'
/// offsets.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub(crate) struct Q16K {
    pub d: f32,
    pub sums: [i32; 16],
    pub hi: [i8; 256],
    pub lo: [i8; 256],
}

/// `v` rounded to the nearest integer (ties to even) for |v| < 2^22, without a libm call.
#[inline(always)]
fn round(v: f32) -> f32 {
    (v + 12_582_912.0) - 12_582_912.0
}

/// Quantizes `x` into the planes, returning the scale and `Σ Q`.
#[inline(always)]
fn quantize_planes(x: &[f32], hi: &mut [i8], lo: &mut [i8]) -> (f32, i32) {
    let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let d = amax / Q_MAX;
    let id = if d > 0.0 { 1.0 / d } else { 0.0 };
    let mut sum = 0;
    for ((&v, h), l) in x.iter().zip(hi.iter_mut()).zip(lo.iter_mut()) {
        let q = round(v * id);
        // q / 255 is never within float error of a tie: 255 is odd.
        let high = round(q * (1.0 / f32::from(HIGH)));
        *h = high as i8;
        *l = (q - high * f32::from(HIGH)) as i8;
        sum += q as i32;
    }
    (d, sum)
}

#[inline(always)]
fn values(d: f32, hi: &[i8], lo: &[i8], out: &mut [f32]) {
    for ((o, &h), &l) in out.iter_mut().zip(hi).zip(lo) {
        *o = d * (f32::from(h) * f32::from(HIGH) + f32::from(l));
    }
}

impl Activation for Q16 {
    const ELEMS: usize = 32;

    #[inline(always)]
    fn quantize(x: &[f32]) -> Self {
        let mut b = Q16::zeroed();
        let (d, sum) = quantize_planes(x, &mut b.hi, &mut b.lo);
        (b.d, b.s) = (d, d * sum as f32);
        for (w, &e) in b.wide.iter_mut().zip(&WIDE_ORDER) {
            *w = i16::from(b.hi[e]) * HIGH + i16::from(b.lo[e]);
        }
        b
    }

    fn dequantize(&self, out: &mut [f32]) {
        values(self.d, &self.hi, &self.lo, out);
    }
}

impl Activation for Q16K {
    const ELEMS: usize = 256;

    #[inline(always)]
    fn quantize(x: &[f32]) -> Self {
        let mut b = Q16K::zeroed();
        let (d, _) = quantize_planes(x, &mut b.hi, &mut b.lo);
        b.d = d;
        for (s, (h, l)) in b.sums.iter_mut().zip(b.hi.chunks_exact(16).zip(b.lo.chunks_exact(16))) {
            *s = h.iter().zip(l).map(|(&h, &l)| i32::from(h) * i32::from(HIGH) + i32::from(l)).sum();
        }
        b
    }

    fn dequantize(&self, out: &mut [f32]) {
        values(self.d, &self.hi, &self.lo, out);
    }
}

impl Activation for f32 {
    const ELEMS: usize = 1;

    #[inline(always)]
    fn quantize(x: &[f32]) -> Self {
        x[0]
    }

    fn dequantize(&self, out: &mut [f32]) {
        out[0] = *self;
    }
}

/// Quantizes `x` (whole rows of `ELEMS`-multiples) into `out`, one block per `ELEMS` values.
#[inline(always)]
pub(crate) fn quantize_into<A: Activation>(x: &[f32], out: &mut [A]) {
    for (o, x) in out.iter_mut().zip(x.chunks_exact(A::ELEMS)) {
        *o = A::quantize(x);
    }
}

/// The activations a `format` matrix product actually multiplies with: `x` (whole blocks of
/// the format) after quantization to 16-bit integers, or `x` itself for F32 and F16 weights.
pub fn quantized_activations(format: QuantFormat, x: &[f32]) -> Vec<f32> {
    struct RoundTrip<'a>(&'a [f32]);
    impl FormatVisitor for RoundTrip<'_> {
        type Output = Vec<f32>;
        fn visit<W: RowDot>(self) -> Vec<f32> {
            let mut out = vec![0.0; self.0.len()];
            for (x, o) in self.0.chunks_exact(W::Act::ELEMS).zip(out.chunks_exact_mut(W::Act::ELEMS)) {
                W::Act::quantize(x).dequantize(o);
            }
            out
        }
    }
    with_format(format, RoundTrip(x))
}
