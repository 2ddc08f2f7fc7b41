//! The model's other ops on f32 activations, written once over [`Simd`]: RMSNorm, the gated
//! activations (SwiGLU, GeGLU), causal attention (the query heads that share a key/value head,
//! over a range of keys, and the merge of such ranges), and argmax.

use super::simd::{Kernel, Simd};
use crate::model::Activation;

/// `a · b` over equal lengths: 8 lanes at a time in two accumulators, the rest one by one.
#[inline(always)]
pub(crate) fn dot<S: Simd>(s: S, a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (mut acc0, mut acc1) = (s.fzero(), s.fzero());
    let mut i = 0;
    while i + 16 <= n {
        acc0 = s.fmadd(acc0, s.fload(a[i..i + 8].try_into().unwrap()), s.fload(b[i..i + 8].try_into().unwrap()));
        acc1 = s.fmadd(acc1, s.fload(a[i + 8..i + 16].try_into().unwrap()), s.fload(b[i + 8..i + 16].try_into().unwrap()));
        i += 16;
    }
    if i + 8 <= n {
        acc0 = s.fmadd(acc0, s.fload(a[i..i + 8].try_into().unwrap()), s.fload(b[i..i + 8].try_into().unwrap()));
        i += 8;
    }
    let mut sum = s.fsum(s.fadd(acc0, acc1));
    for j in i..n {
        sum += a[j] * b[j];
    }
    sum
}

/// `out = x * (1 / rms(x)) * gain` over each of the `groups` runs of `gain.len()` values that
/// begin each row.
pub(crate) struct RmsNorm<'a> {
    pub x: &'a [f32],
    pub x_width: usize,
    pub gain: &'a [f32],
    pub groups: usize,
    pub out: &'a mut [f32],
    pub out_width: usize,
    pub n: usize,
    pub eps: f32,
}

impl Kernel for RmsNorm<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let width = self.gain.len();
        for t in 0..self.n {
            for g in 0..self.groups {
                let x = &self.x[t * self.x_width + g * width..][..width];
                let mean_sq = dot(s, x, x) / width as f32;
                let scale = 1.0 / (mean_sq + self.eps).sqrt();
                let out = &mut self.out[t * self.out_width + g * width..][..width];
                for ((o, &v), &g) in out.iter_mut().zip(x).zip(self.gain) {
                    *o = v * scale * g;
                }
            }
        }
    }
}

/// `gate = act(gate) * up` over equal lengths.
pub(crate) struct Glu<'a> {
    pub gate: &'a mut [f32],
    pub up: &'a [f32],
    pub act: Activation,
}

/// GELU's tanh approximation is `x * sigmoid(2z)`, z = sqrt(2/pi) (x + 0.044715 x^3): the
/// sigmoid form shares SiLU's kernel and stays finite where tanh's exponentials overflow.
const GELU_2_SQRT_2_OVER_PI: f32 = 1.595_769_1;
const GELU_CUBIC: f32 = 0.044_715;

impl Kernel for Glu<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let n = self.gate.len().min(self.up.len());
        let one = s.fsplat(1.0);
        let gelu = self.act == Activation::GeluTanh;
        let mut i = 0;
        while i + 8 <= n {
            let g: &mut [f32; 8] = (&mut self.gate[i..i + 8]).try_into().unwrap();
            let gv = s.fload(g);
            // The sigmoid's argument: x for SiLU, 2z for GELU.
            let arg = if gelu {
                let cube = s.fmul(s.fmul(gv, gv), gv);
                s.fmul(s.fmadd(gv, cube, s.fsplat(GELU_CUBIC)), s.fsplat(GELU_2_SQRT_2_OVER_PI))
            } else {
                gv
            };
            let e = s.fexp(s.fmul(arg, s.fsplat(-1.0)));
            // g / (1 + e^-arg) * u, with one division: g * u / (1 + e^-arg).
            let mut denom = [0.0; 8];
            s.fstore(s.fadd(one, e), &mut denom);
            let mut num = [0.0; 8];
            s.fstore(s.fmul(gv, s.fload(self.up[i..i + 8].try_into().unwrap())), &mut num);
            for j in 0..8 {
                g[j] = num[j] / denom[j];
            }
            i += 8;
        }
        for j in i..n {
            let g = self.gate[j];
            let arg = if gelu { GELU_2_SQRT_2_OVER_PI * (g + GELU_CUBIC * g * g * g) } else { g };
            self.gate[j] = g / (1.0 + (-arg).exp()) * self.up[j];
        }
    }
}

/// Keys scored per step of the online softmax: their rows stay in L1 while every query head
/// of the group uses them.
const KEY_BLOCK: usize = 32;
/// Largest head the attention kernel takes (`ModelConfig` refuses larger).
pub(crate) const MAX_HEAD_DIM: usize = 256;
/// Query heads sharing a key/value head that one pass serves; larger groups take more passes.
pub(crate) const MAX_GROUP: usize = 8;

/// Causal attention of up to `MAX_GROUP` query heads that share one key/value head, over the
/// keys `keys` of the layer's cache, with a running (online) softmax, so no buffer grows with
/// the context. For each head it leaves a partial result over those keys: `acc / sum` is the
/// attention output, `max` the largest score, which `acc` and `sum` are relative to.
pub(crate) struct AttendGroup<'a> {
    /// The query heads, `head_dim` values each, back to back.
    pub q: &'a [f32],
    /// The layer's keys and values, `kv_width` apart; this head's start at `offset`.
    pub k: &'a [f32],
    pub v: &'a [f32],
    pub kv_width: usize,
    pub offset: usize,
    pub keys: std::ops::Range<usize>,
    pub scale: f32,
    /// Per head.
    pub max: &'a mut [f32],
    pub sum: &'a mut [f32],
    /// `head_dim` per head.
    pub acc: &'a mut [f32],
}

impl Kernel for AttendGroup<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let hd = self.acc.len() / self.max.len();
        self.max.fill(f32::NEG_INFINITY);
        self.sum.fill(0.0);
        self.acc.fill(0.0);
        let mut scores = [0.0f32; KEY_BLOCK];
        for j0 in self.keys.clone().step_by(KEY_BLOCK) {
            let len = KEY_BLOCK.min(self.keys.end - j0);
            let first = j0 * self.kv_width + self.offset;
            let heads = self.q.chunks_exact(hd).zip(self.acc.chunks_exact_mut(hd)).zip(self.max.iter_mut().zip(self.sum.iter_mut()));
            for ((q, acc), (max, sum)) in heads {
                let mut block_max = f32::NEG_INFINITY;
                for (j, score) in scores[..len].iter_mut().enumerate() {
                    *score = dot(s, q, &self.k[first + j * self.kv_width..][..hd]) * self.scale;
                    block_max = block_max.max(*score);
                }
                let new_max = max.max(block_max);
                let rescale = (*max - new_max).exp();
                *max = new_max;
                let m = s.fsplat(-new_max);
                for c in (0..KEY_BLOCK).step_by(8) {
                    let x: &mut [f32; 8] = (&mut scores[c..c + 8]).try_into().unwrap();
                    s.fstore(s.fexp(s.fadd(s.fload(x), m)), x);
                }
                *sum = *sum * rescale + scores[..len].iter().sum::<f32>();
                add_weighted_rows(s, acc, rescale, &scores[..len], self.v, self.kv_width, first);
            }
        }
    }
}

/// `acc = acc * rescale + Σ_j weights[j] * v[at + j * stride..][..acc.len()]`, 64 dimensions at
/// a time held in registers across the rows (then 8, then one).
#[inline(always)]
fn add_weighted_rows<S: Simd>(s: S, acc: &mut [f32], rescale: f32, weights: &[f32], v: &[f32], stride: usize, at: usize) {
    let hd = acc.len();
    let r = s.fsplat(rescale);
    let mut d0 = 0;
    while d0 + 64 <= hd {
        let chunk: &mut [f32; 64] = (&mut acc[d0..d0 + 64]).try_into().unwrap();
        let mut sums = [s.fzero(); 8];
        for (c, sum) in sums.iter_mut().enumerate() {
            *sum = s.fmul(s.fload(chunk[8 * c..8 * c + 8].try_into().unwrap()), r);
        }
        for (j, &w) in weights.iter().enumerate() {
            let row: &[f32; 64] = v[at + j * stride + d0..][..64].try_into().unwrap();
            let w = s.fsplat(w);
            for (c, sum) in sums.iter_mut().enumerate() {
                *sum = s.fmadd(*sum, w, s.fload(row[8 * c..8 * c + 8].try_into().unwrap()));
            }
        }
        for (c, sum) in sums.iter().enumerate() {
            s.fstore(*sum, (&mut chunk[8 * c..8 * c + 8]).try_into().unwrap());
        }
        d0 += 64;
    }
    while d0 + 8 <= hd {
        let chunk: &mut [f32; 8] = (&mut acc[d0..d0 + 8]).try_into().unwrap();
        let mut sum = s.fmul(s.fload(chunk), r);
        for (j, &w) in weights.iter().enumerate() {
            sum = s.fmadd(sum, s.fsplat(w), s.fload(v[at + j * stride + d0..][..8].try_into().unwrap()));
        }
        s.fstore(sum, chunk);
        d0 += 8;
    }
    for (d, a) in acc.iter_mut().enumerate().skip(d0) {
        *a *= rescale;
        for (j, &w) in weights.iter().enumerate() {
            *a += w * v[at + j * stride + d];
        }
    }
}

/// Where `AttendGroup` leaves its partial results: for token t, key chunk c and head h, entry
/// `(t * chunks + c) * heads + h` of `max` and `sum`, and that entry times `head_dim` of `acc`.
pub(crate) struct Partials<'a> {
    pub chunks: usize,
    pub heads: usize,
    pub max: &'a [f32],
    pub sum: &'a [f32],
    pub acc: &'a [f32],
}

impl Partials<'_> {
    /// Head h of token t over all its keys: `Σ_c acc_c e^(max_c - M) / Σ_c sum_c e^(max_c - M)`.
    pub(crate) fn merge(&self, t: usize, h: usize, out: &mut [f32]) {
        let hd = out.len();
        let entries = (0..self.chunks).map(|c| (t * self.chunks + c) * self.heads + h);
        let max = entries.clone().fold(f32::NEG_INFINITY, |m, e| m.max(self.max[e]));
        out.fill(0.0);
        let mut total = 0.0;
        // Chunks past the token's last key hold nothing (sum 0).
        for e in entries.filter(|&e| self.sum[e] > 0.0) {
            let w = (self.max[e] - max).exp();
            total += self.sum[e] * w;
            for (o, a) in out.iter_mut().zip(&self.acc[e * hd..][..hd]) {
                *o += a * w;
            }
        }
        let inv = 1.0 / total;
        out.iter_mut().for_each(|o| *o *= inv);
    }
}

/// The index of the largest value, the first among equals. Rows holding NaN (a broken model)
/// may give `None`, or another index than the other backends.
pub(crate) struct Argmax<'a>(pub &'a [f32]);

impl Kernel for Argmax<'_> {
    type Output = Option<usize>;

    #[inline(always)]
    fn run<S: Simd>(self, s: S) -> Option<usize> {
        let row = self.0;
        let whole = row.len() / 8 * 8;
        let mut max = s.fsplat(f32::NEG_INFINITY);
        for c in (0..whole).step_by(8) {
            max = s.fmax(max, s.fload(row[c..c + 8].try_into().unwrap()));
        }
        let max = row[whole..].iter().fold(s.fmax_lane(max), |m, &v| m.max(v));
        row.iter().position(|&v| v == max)
    }
}
