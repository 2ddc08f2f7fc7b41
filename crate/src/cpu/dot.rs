//! Fused dequantize-and-dot: weight rows, still in their GGUF blocks (as `layout` keeps them),
//! against the activations of up to four tokens. Each block is decoded once into 32-byte
//! vectors of small unsigned quants and reused for every token and both activation byte planes;
//! products are summed in integers and scaled once per block (or super-block). Weight offsets (Q4_0's -8, Q4_1's min, the
//! K-quants' mins) become one multiply with the activations' block sums instead of a
//! subtraction per element.

use super::activations::{Activation, HIGH, Q16, Q16K};
use super::layout::Rows;
use super::simd::Simd;
use crate::quant::blocks::{
    scale_k3, scale_min, Block, BlockF16, BlockF32, BlockQ2_K, BlockQ3_K, BlockQ4_0, BlockQ4_1, BlockQ4_K, BlockQ5_0,
    BlockQ5_1, BlockQ5_K, BlockQ6_K, BlockQ8_0,
};
use crate::quant::QuantFormat;

/// A weight block type with its fused dot product.
pub(crate) trait RowDot: Block + Sync {
    /// The activation blocks this format multiplies with: one per weight block.
    type Act: Activation;
    /// `row r · acts[t]` for each of the R `rows` and N tokens.
    fn dot<S: Simd, const R: usize, const N: usize>(s: S, rows: Rows<Self>, acts: [&[Self::Act]; N]) -> [[f32; N]; R];
}

/// A 32-element block whose values are `d * q + offset` with quants as bytes.
trait Block32: Block {
    /// Q8_0's quants are signed bytes; the others are unsigned and below 32.
    const SIGNED: bool = false;
    fn quants<S: Simd>(&self, s: S) -> S::Bytes;
    /// `(d, offset)`.
    fn scale_offset<S: Simd>(&self, s: S) -> (f32, f32);
}

impl Block32 for BlockQ8_0 {
    const SIGNED: bool = true;
    #[inline(always)]
    fn quants<S: Simd>(&self, s: S) -> S::Bytes {
        s.load_i8(&self.qs)
    }
    #[inline(always)]
    fn scale_offset<S: Simd>(&self, s: S) -> (f32, f32) {
        (s.f16(self.d), 0.0)
    }
}

impl Block32 for BlockQ4_0 {
    #[inline(always)]
    fn quants<S: Simd>(&self, s: S) -> S::Bytes {
        s.nibbles(&self.qs)
    }
    #[inline(always)]
    fn scale_offset<S: Simd>(&self, s: S) -> (f32, f32) {
        let d = s.f16(self.d);
        (d, -8.0 * d)
    }
}

impl Block32 for BlockQ4_1 {
    #[inline(always)]
    fn quants<S: Simd>(&self, s: S) -> S::Bytes {
        s.nibbles(&self.qs)
    }
    #[inline(always)]
    fn scale_offset<S: Simd>(&self, s: S) -> (f32, f32) {
        (s.f16(self.d), s.f16(self.m))
    }
}

/// Q5_0/Q5_1 quants: the Q4 nibbles plus bit j of `qh` as the fifth bit of element j.
#[inline(always)]
fn q5_quants<S: Simd>(s: S, qh: [u8; 4], qs: &[u8; 16]) -> S::Bytes {
    let high = s.and(s.bit_bytes(u32::from_le_bytes(qh)), s.splat(0x10));
    s.or(s.nibbles(qs), high)
}

impl Block32 for BlockQ5_0 {
    #[inline(always)]
    fn quants<S: Simd>(&self, s: S) -> S::Bytes {
        q5_quants(s, self.qh, &self.qs)
    }
    #[inline(always)]
    fn scale_offset<S: Simd>(&self, s: S) -> (f32, f32) {
        let d = s.f16(self.d);
        (d, -16.0 * d)
    }
}

impl Block32 for BlockQ5_1 {
    #[inline(always)]
    fn quants<S: Simd>(&self, s: S) -> S::Bytes {
        q5_quants(s, self.qh, &self.qs)
    }
    #[inline(always)]
    fn scale_offset<S: Simd>(&self, s: S) -> (f32, f32) {
        (s.f16(self.d), s.f16(self.m))
    }
}

/// `Σ (d q + offset) a` over each row: `d d_a Σ q Q_a + offset s_a` per block, `Σ q Q_a` as
/// `HIGH Σ q hi_a + Σ q lo_a` (at most 255 · 32 · 128 · 127 in magnitude: no overflow).
///
/// R rows at once when there are few tokens (decode): the interleaved layout puts their blocks
/// side by side, so one sequential run of memory feeds them all, each token's activations are
/// loaded once for all of them, and each (row, token) pair sums into its own registers, so that
/// one pair's float adds never wait for another's.
#[inline(always)]
fn dot32<S: Simd, B: Block32, const R: usize, const N: usize>(s: S, rows: Rows<B>, acts: [&[Q16]; N]) -> [[f32; N]; R] {
    let acts = acts.map(|a| &a[..rows.len]);
    let mut acc = [[s.fzero(); N]; R];
    let mut offsets = [[0.0f32; N]; R];
    for i in 0..rows.len {
        let blocks = rows.blocks::<R>(i);
        let mut quants = [s.splat(0); R];
        let mut scales = [(0.0, 0.0); R];
        for r in 0..R {
            quants[r] = blocks[r].quants(s);
            scales[r] = blocks[r].scale_offset(s);
        }
        for t in 0..N {
            let a = &acts[t][i];
            let (hi, lo) = (s.load_i8(&a.hi), s.load_i8(&a.lo));
            for r in 0..R {
                let (q, (d, offset)) = (quants[r], scales[r]);
                // The 16-bit products (`dot_q16`) won for signed quants and, in a batch, where the
                // quants are widened once for several tokens; one token's unsigned quants stay
                // faster as byte planes.
                let sum = if B::SIGNED || N > 1 {
                    s.dot_q16(s.izero(), q, B::SIGNED, hi, lo, HIGH, &a.wide)
                } else {
                    s.dot(s.dot(s.izero(), q, hi, HIGH, HIGH), q, lo, 1, 1)
                };
                acc[r][t] = s.fmadd_ints(acc[r][t], sum, d * a.d);
                if !B::SIGNED {
                    offsets[r][t] += offset * a.s;
                }
            }
        }
    }
    // Loops, not `array::from_fn`: a closure may be compiled apart, without the vector features.
    let mut out = [[0.0; N]; R];
    for r in 0..R {
        for t in 0..N {
            out[r][t] = s.fsum(acc[r][t]) + offsets[r][t];
        }
    }
    out
}

/// Formats without a multi-row kernel: `$dot` on each of the R `$rows` alone. A macro, not a
/// function taking a closure: a closure too large to inline is compiled apart, without the
/// instruction set's features, and its vector operations become calls (prefill at 0.6x).
macro_rules! one_by_one {
    ($rows:expr, $dot:ident($s:expr, _, $acts:expr)) => {{
        let mut out = [[0.0; N]; R];
        for (r, out) in out.iter_mut().enumerate() {
            *out = $dot($s, $rows.row(r), $acts);
        }
        out
    }};
}

macro_rules! row_dot_32 {
    ($($block:ty),*) => {$(
        impl RowDot for $block {
            type Act = Q16;
            #[inline(always)]
            fn dot<S: Simd, const R: usize, const N: usize>(s: S, rows: Rows<Self>, acts: [&[Q16]; N]) -> [[f32; N]; R] {
                dot32(s, rows, acts)
            }
        }
    )*};
}

row_dot_32!(BlockQ8_0, BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1);

/// The parts of a Q4_K or Q5_K super-block: 8 sub-blocks of 32, `d sc q - dmin mn`.
trait BlockK4: Block {
    fn d(&self) -> [u8; 2];
    fn dmin(&self) -> [u8; 2];
    fn scales(&self) -> &[u8; 12];
    fn qs(&self) -> &[u8; 128];
    /// The fifth bits (Q5_K): bit i of byte l belongs to element 32 i + l.
    fn qh(&self) -> Option<&[u8; 32]>;
}

impl BlockK4 for BlockQ4_K {
    fn d(&self) -> [u8; 2] {
        self.d
    }
    fn dmin(&self) -> [u8; 2] {
        self.dmin
    }
    fn scales(&self) -> &[u8; 12] {
        &self.scales
    }
    fn qs(&self) -> &[u8; 128] {
        &self.qs
    }
    fn qh(&self) -> Option<&[u8; 32]> {
        None
    }
}

impl BlockK4 for BlockQ5_K {
    fn d(&self) -> [u8; 2] {
        self.d
    }
    fn dmin(&self) -> [u8; 2] {
        self.dmin
    }
    fn scales(&self) -> &[u8; 12] {
        &self.scales
    }
    fn qs(&self) -> &[u8; 128] {
        &self.qs
    }
    fn qh(&self) -> Option<&[u8; 32]> {
        Some(&self.qh)
    }
}

/// 32 bytes of a block's array at `at`.
#[inline(always)]
fn run32<T: bytemuck::Pod>(v: &[T], at: usize) -> &[u8; 32] {
    bytemuck::cast_slice::<T, u8>(v)[at..at + 32].try_into().unwrap()
}

/// Q4_K/Q5_K: per super-block, `d d_a Σ_j sc_j (q_j · Q_a) - dmin d_a Σ_j mn_j Σ Q_a`, the
/// first sum in integers, one per activation plane (together they could overflow i32).
#[inline(always)]
fn dot_k4<S: Simd, B: BlockK4, const N: usize>(s: S, row: Rows<B>, acts: [&[Q16K]; N]) -> [f32; N] {
    let acts = acts.map(|a| &a[..row.len]);
    let mut acc = [s.fzero(); N];
    let mut mins = [0.0f32; N];
    for i in 0..row.len {
        let b = row.block(i);
        let mut sc = [0i16; 8];
        let mut mn = [0i32; 8];
        for j in 0..8 {
            let (scale, min) = scale_min(b.scales(), j);
            (sc[j], mn[j]) = (i16::from(scale), i32::from(min));
        }
        // No closures around vector operations here (see `one_by_one!`).
        let high = match b.qh() {
            Some(qh) => Some(s.load(qh)),
            None => None,
        };
        let mut high_sums = [s.izero(); N];
        let mut low_sums = [s.izero(); N];
        for r in 0..4 {
            let raw = s.load(run32(b.qs(), 32 * r));
            let (mut lo, mut hi) = (s.low_nibbles(raw), s.high_nibbles(raw));
            if let Some(qh) = high {
                lo = s.or(lo, s.shl4(s.shr_and(qh, 2 * r as u32, 1)));
                hi = s.or(hi, s.shl4(s.shr_and(qh, 2 * r as u32 + 1, 1)));
            }
            let (s0, s1) = (sc[2 * r], sc[2 * r + 1]);
            for t in 0..N {
                let a = &acts[t][i];
                high_sums[t] = s.dot(high_sums[t], lo, s.load(run32(&a.hi, 64 * r)), s0, s0);
                high_sums[t] = s.dot(high_sums[t], hi, s.load(run32(&a.hi, 64 * r + 32)), s1, s1);
                low_sums[t] = s.dot(low_sums[t], lo, s.load(run32(&a.lo, 64 * r)), s0, s0);
                low_sums[t] = s.dot(low_sums[t], hi, s.load(run32(&a.lo, 64 * r + 32)), s1, s1);
            }
        }
        let (d, dmin) = (s.f16(b.d()), s.f16(b.dmin()));
        for t in 0..N {
            let a = &acts[t][i];
            acc[t] = s.fmadd_ints(acc[t], high_sums[t], f32::from(HIGH) * d * a.d);
            acc[t] = s.fmadd_ints(acc[t], low_sums[t], d * a.d);
            let m: i32 = mn.iter().zip(a.sums.chunks_exact(2)).map(|(mn, pair)| mn * (pair[0] + pair[1])).sum();
            mins[t] += dmin * a.d * m as f32;
        }
    }
    let mut out = [0.0; N];
    for t in 0..N {
        out[t] = s.fsum(acc[t]) - mins[t];
    }
    out
}

impl RowDot for BlockQ4_K {
    type Act = Q16K;
    #[inline(always)]
    fn dot<S: Simd, const R: usize, const N: usize>(s: S, rows: Rows<Self>, acts: [&[Q16K]; N]) -> [[f32; N]; R] {
        one_by_one!(rows, dot_k4(s, _, acts))
    }
}

impl RowDot for BlockQ5_K {
    type Act = Q16K;
    #[inline(always)]
    fn dot<S: Simd, const R: usize, const N: usize>(s: S, rows: Rows<Self>, acts: [&[Q16K]; N]) -> [[f32; N]; R] {
        one_by_one!(rows, dot_k4(s, _, acts))
    }
}

/// The 32 low 2-bit fields `k` of a 32-byte run of Q2_K/Q3_K quants: elements 32 k..32 k + 32 of
/// that half block.
#[inline(always)]
fn crumbs<S: Simd>(s: S, qs: S::Bytes, k: usize) -> S::Bytes {
    s.shr_and(qs, 2 * k as u32, 3)
}

/// A super-block of 16 sub-blocks of 16: Q2_K, Q3_K and Q6_K.
trait Sub16: Block {
    /// The 32 quants of elements `128 h + 32 k..128 h + 32 k + 32`.
    fn quants<S: Simd>(&self, s: S, h: usize, k: usize) -> S::Bytes;
}

/// `Σ_g sc_g (q_g · Q_a)` of one super-block over its 16 sub-blocks of 16, one sum per activation
/// plane.
#[inline(always)]
fn sub16_sums<S: Simd, B: Sub16, const N: usize>(s: S, b: &B, sc: &[i16; 16], acts: [&Q16K; N]) -> ([S::Ints; N], [S::Ints; N]) {
    let mut high_sums = [s.izero(); N];
    let mut low_sums = [s.izero(); N];
    for h in 0..2 {
        for k in 0..4 {
            let q = b.quants(s, h, k);
            let g = 8 * h + 2 * k;
            for t in 0..N {
                let a = acts[t];
                high_sums[t] = s.dot(high_sums[t], q, s.load(run32(&a.hi, 128 * h + 32 * k)), sc[g], sc[g + 1]);
                low_sums[t] = s.dot(low_sums[t], q, s.load(run32(&a.lo, 128 * h + 32 * k)), sc[g], sc[g + 1]);
            }
        }
    }
    (high_sums, low_sums)
}

impl Sub16 for BlockQ2_K {
    #[inline(always)]
    fn quants<S: Simd>(&self, s: S, h: usize, k: usize) -> S::Bytes {
        crumbs(s, s.load(run32(&self.qs, 32 * h)), k)
    }
}

/// Q2_K: 16 sub-blocks of 16, `d sc q - dmin mn`: `d d_a Σ_g sc_g (q_g · Q_a) - dmin d_a Σ_g mn_g
/// Σ Q_a`.
impl RowDot for BlockQ2_K {
    type Act = Q16K;
    #[inline(always)]
    fn dot<S: Simd, const R: usize, const N: usize>(s: S, rows: Rows<Self>, acts: [&[Q16K]; N]) -> [[f32; N]; R] {
        one_by_one!(rows, dot_q2_k(s, _, acts))
    }
}

#[inline(always)]
fn dot_q2_k<S: Simd, const N: usize>(s: S, row: Rows<BlockQ2_K>, acts: [&[Q16K]; N]) -> [f32; N] {
    let acts = acts.map(|a| &a[..row.len]);
    let mut acc = [s.fzero(); N];
    let mut mins = [0.0f32; N];
    for i in 0..row.len {
        let b = row.block(i);
        let sc = b.scales.map(|v| i16::from(v & 0x0f));
        let block_acts = acts.map(|a| &a[i]);
        let (high_sums, low_sums) = sub16_sums(s, b, &sc, block_acts);
        let (d, dmin) = (s.f16(b.d), s.f16(b.dmin));
        for t in 0..N {
            let a = block_acts[t];
            acc[t] = s.fmadd_ints(acc[t], high_sums[t], f32::from(HIGH) * d * a.d);
            acc[t] = s.fmadd_ints(acc[t], low_sums[t], d * a.d);
            let m: i32 = b.scales.iter().zip(&a.sums).map(|(&sc, sum)| i32::from(sc >> 4) * sum).sum();
            mins[t] += dmin * a.d * m as f32;
        }
    }
    let mut out = [0.0; N];
    for t in 0..N {
        out[t] = s.fsum(acc[t]) - mins[t];
    }
    out
}

/// A super-block of 16 sub-blocks of 16 with signed scales, `d sc (q - BIAS)`: Q6_K and Q3_K.
trait BlockSub16: Sub16 {
    const BIAS: f32;
    fn d(&self) -> [u8; 2];
    fn scales(&self) -> [i16; 16];
}

impl BlockSub16 for BlockQ6_K {
    const BIAS: f32 = 32.0;
    fn d(&self) -> [u8; 2] {
        self.d
    }
    fn scales(&self) -> [i16; 16] {
        self.scales.map(i16::from)
    }
}

/// Each half of 128 elements draws element `32 k + l` from nibble `k / 2` of `ql[32 (k % 2) + l]`
/// and bits `2k..2k+2` of `qh[l]`.
impl Sub16 for BlockQ6_K {
    #[inline(always)]
    fn quants<S: Simd>(&self, s: S, h: usize, k: usize) -> S::Bytes {
        let ql = s.load(run32(&self.ql, 64 * h + 32 * (k % 2)));
        let low = if k < 2 { s.low_nibbles(ql) } else { s.high_nibbles(ql) };
        s.or(low, s.shl4(s.shr_and(s.load(run32(&self.qh, 32 * h)), 2 * k as u32, 3)))
    }
}

impl BlockSub16 for BlockQ3_K {
    const BIAS: f32 = 4.0;
    fn d(&self) -> [u8; 2] {
        self.d
    }
    fn scales(&self) -> [i16; 16] {
        std::array::from_fn(|j| i16::from(scale_k3(&self.scales, j)))
    }
}

/// Element `32 k + l` of half `h` has its third bit in bit `4 h + k` of `hmask[l]`.
impl Sub16 for BlockQ3_K {
    #[inline(always)]
    fn quants<S: Simd>(&self, s: S, h: usize, k: usize) -> S::Bytes {
        let hmask = s.load(&self.hmask);
        let bit = (4 * h + k) as u32;
        // That bit of each hmask byte, moved to bit 2 (worth 4); `shr_and` shifts right only,
        // so bits 0 and 1 first go up a nibble.
        let third = if bit >= 2 {
            s.shr_and(hmask, bit - 2, 4)
        } else {
            s.shr_and(s.shl4(s.and(hmask, s.splat(0x0f))), bit + 2, 4)
        };
        s.or(crumbs(s, s.load(run32(&self.qs, 32 * h)), k), third)
    }
}

/// `d d_a (Σ_g sc_g (q_g · Q_a) - BIAS Σ_g sc_g Σ Q_a)` per super-block.
#[inline(always)]
fn dot_sub16<S: Simd, B: BlockSub16, const N: usize>(s: S, row: Rows<B>, acts: [&[Q16K]; N]) -> [f32; N] {
    let acts = acts.map(|a| &a[..row.len]);
    let mut acc = [s.fzero(); N];
    let mut offsets = [0.0f32; N];
    for i in 0..row.len {
        let b = row.block(i);
        let sc = b.scales();
        let block_acts = acts.map(|a| &a[i]);
        let (high_sums, low_sums) = sub16_sums(s, b, &sc, block_acts);
        let d = s.f16(b.d());
        for t in 0..N {
            let a = block_acts[t];
            acc[t] = s.fmadd_ints(acc[t], high_sums[t], f32::from(HIGH) * d * a.d);
            acc[t] = s.fmadd_ints(acc[t], low_sums[t], d * a.d);
            let o: i32 = sc.iter().zip(&a.sums).map(|(&sc, sum)| i32::from(sc) * sum).sum();
            offsets[t] += B::BIAS * d * a.d * o as f32;
        }
    }
    let mut out = [0.0; N];
    for t in 0..N {
        out[t] = s.fsum(acc[t]) - offsets[t];
    }
    out
}

macro_rules! row_dot_sub16 {
    ($($block:ty),*) => {$(
        impl RowDot for $block {
            type Act = Q16K;
            #[inline(always)]
            fn dot<S: Simd, const R: usize, const N: usize>(s: S, rows: Rows<Self>, acts: [&[Q16K]; N]) -> [[f32; N]; R] {
                one_by_one!(rows, dot_sub16(s, _, acts))
            }
        }
    )*};
}

row_dot_sub16!(BlockQ6_K, BlockQ3_K);

/// Unquantized weights, 8 at a time against f32 activations.
trait FloatBlock: Block {
    fn load8<S: Simd>(s: S, row: &[Self]) -> S::Floats;
    fn value<S: Simd>(&self, s: S) -> f32;
}

impl FloatBlock for BlockF32 {
    #[inline(always)]
    fn load8<S: Simd>(s: S, row: &[Self]) -> S::Floats {
        s.fload_le(bytemuck::cast_slice(row).try_into().unwrap())
    }
    #[inline(always)]
    fn value<S: Simd>(&self, _: S) -> f32 {
        f32::from_le_bytes(self.v)
    }
}

impl FloatBlock for BlockF16 {
    #[inline(always)]
    fn load8<S: Simd>(s: S, row: &[Self]) -> S::Floats {
        s.fload_f16(bytemuck::cast_slice(row).try_into().unwrap())
    }
    #[inline(always)]
    fn value<S: Simd>(&self, s: S) -> f32 {
        s.f16(self.v)
    }
}

#[inline(always)]
fn dot_float<S: Simd, B: FloatBlock, const N: usize>(s: S, row: Rows<B>, acts: [&[f32]; N]) -> [f32; N] {
    let row = row.plain();
    let acts = acts.map(|a| &a[..row.len()]);
    let whole = row.len() / 8 * 8;
    let mut acc = [s.fzero(); N];
    for c in (0..whole).step_by(8) {
        let w = B::load8(s, &row[c..c + 8]);
        for t in 0..N {
            acc[t] = s.fmadd(acc[t], w, s.fload(acts[t][c..c + 8].try_into().unwrap()));
        }
    }
    let mut out = [0.0; N];
    for t in 0..N {
        out[t] = s.fsum(acc[t]);
        for (w, a) in row[whole..].iter().zip(&acts[t][whole..]) {
            out[t] += w.value(s) * a;
        }
    }
    out
}

impl RowDot for BlockF32 {
    type Act = f32;
    #[inline(always)]
    fn dot<S: Simd, const R: usize, const N: usize>(s: S, rows: Rows<Self>, acts: [&[f32]; N]) -> [[f32; N]; R] {
        one_by_one!(rows, dot_float(s, _, acts))
    }
}

impl RowDot for BlockF16 {
    type Act = f32;
    #[inline(always)]
    fn dot<S: Simd, const R: usize, const N: usize>(s: S, rows: Rows<Self>, acts: [&[f32]; N]) -> [[f32; N]; R] {
        one_by_one!(rows, dot_float(s, _, acts))
    }
}

/// Something to do with a weight format's block type.
pub(crate) trait FormatVisitor {
    type Output;
    fn visit<W: RowDot>(self) -> Self::Output;
}

pub(crate) fn with_format<V: FormatVisitor>(format: QuantFormat, v: V) -> V::Output {
    match format {
        QuantFormat::F32 => v.visit::<BlockF32>(),
        QuantFormat::F16 => v.visit::<BlockF16>(),
        QuantFormat::Q8_0 => v.visit::<BlockQ8_0>(),
        QuantFormat::Q4_0 => v.visit::<BlockQ4_0>(),
        QuantFormat::Q4_1 => v.visit::<BlockQ4_1>(),
        QuantFormat::Q5_0 => v.visit::<BlockQ5_0>(),
        QuantFormat::Q5_1 => v.visit::<BlockQ5_1>(),
        QuantFormat::Q4_K => v.visit::<BlockQ4_K>(),
        QuantFormat::Q5_K => v.visit::<BlockQ5_K>(),
        QuantFormat::Q6_K => v.visit::<BlockQ6_K>(),
        QuantFormat::Q2_K => v.visit::<BlockQ2_K>(),
        QuantFormat::Q3_K => v.visit::<BlockQ3_K>(),
    }
}
