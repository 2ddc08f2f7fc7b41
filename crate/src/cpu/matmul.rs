//! Matrix products on the packed weights: the activations are quantized once per product, then
//! the output rows are split into chunks that the threads claim; each chunk walks its rows for
//! up to four tokens at a time, so a batch decodes each weight block once per four tokens.

use std::ops::Range;

use super::activations::{quantize_into, Activation};
use super::dot::{with_format, FormatVisitor, RowDot};
use super::layout::{Layout, GROUP};
use super::pool::{SharedOut, Workers};
use super::simd::{Kernel, Kernels, Simd};
use crate::quant::QuantFormat;

/// A weight matrix `[rows][cols]` in its format's blocks, laid out as `Layout` says.
pub(crate) struct Weights<'a> {
    pub format: QuantFormat,
    pub rows: usize,
    pub cols: usize,
    pub layout: Layout,
    pub bytes: &'a [u8],
}

/// `out[t] = weights · x[t]` for `n` tokens, rows `x_width` and `out_width` apart.
pub(crate) struct Product<'a> {
    pub weights: Weights<'a>,
    pub x: &'a [f32],
    pub x_width: usize,
    pub n: usize,
    pub out: &'a mut [f32],
    pub out_width: usize,
}

impl Product<'_> {
    /// Runs the product on `workers`; `scratch` holds the quantized activations.
    pub(crate) fn run(self, workers: &dyn Workers, kernels: Kernels, scratch: &mut Vec<u32>) {
        with_format(self.weights.format, Run { p: self, workers, kernels, scratch });
    }
}

struct Run<'a, 'w> {
    p: Product<'a>,
    workers: &'w dyn Workers,
    kernels: Kernels,
    scratch: &'w mut Vec<u32>,
}

impl FormatVisitor for Run<'_, '_> {
    type Output = ();

    fn visit<W: RowDot>(self) {
        let Run { p, workers, kernels, scratch } = self;
        let (cols, rows, n) = (p.weights.cols, p.weights.rows, p.n);
        let row_blocks = cols / W::FORMAT.block_elems();
        let words = n * row_blocks * std::mem::size_of::<W::Act>() / 4;
        if scratch.len() < words {
            scratch.resize(words, 0);
        }
        let acts: &mut [W::Act] = bytemuck::cast_slice_mut(&mut scratch[..words]);
        quantize(workers, kernels, p.x, p.x_width, cols, n, acts);
        let blocks = Blocks::<W> {
            blocks: bytemuck::cast_slice(p.weights.bytes),
            layout: p.weights.layout,
            row_blocks,
            acts,
            n,
            out: SharedOut::new(p.out),
            out_width: p.out_width,
        };
        // A few chunks per thread, so a thread that loses its core for a while delays only one;
        // whole groups of the layout each.
        let per_chunk = rows.div_ceil(4 * workers.threads()).next_multiple_of(GROUP);
        workers.for_each(rows.div_ceil(per_chunk), &|c| {
            kernels.run(Rows { p: &blocks, rows: c * per_chunk..((c + 1) * per_chunk).min(rows) });
        });
    }
}

/// A product with its weights as blocks and its activations quantized.
struct Blocks<'a, W: RowDot> {
    blocks: &'a [W],
    layout: Layout,
    row_blocks: usize,
    acts: &'a [W::Act],
    n: usize,
    out: SharedOut,
    out_width: usize,
}

/// One task: a chunk of output rows, for every token.
struct Rows<'a, 'p, W: RowDot> {
    p: &'p Blocks<'a, W>,
    rows: Range<usize>,
}

impl<W: RowDot> Kernel for Rows<'_, '_, W> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let p = self.p;
        // Four tokens per pass over the rows, the last pass what is left; for one token, the
        // rows of each interleaved group together (see `dot32`).
        for t0 in (0..p.n).step_by(4) {
            match p.n - t0 {
                1 => tile::<S, W, GROUP, 1>(s, p, self.rows.clone(), t0),
                2 => tile::<S, W, 1, 2>(s, p, self.rows.clone(), t0),
                3 => tile::<S, W, 1, 3>(s, p, self.rows.clone(), t0),
                _ => tile::<S, W, 1, 4>(s, p, self.rows.clone(), t0),
            }
        }
    }
}

/// Tokens `t0..t0 + N` of `rows`: R rows at a time where they make a group of the layout, one
/// at a time elsewhere.
#[inline(always)]
fn tile<S: Simd, W: RowDot, const R: usize, const N: usize>(s: S, p: &Blocks<W>, rows: Range<usize>, t0: usize) {
    let rb = p.row_blocks;
    let acts: [&[W::Act]; N] = std::array::from_fn(|t| &p.acts[(t0 + t) * rb..][..rb]);
    let mut r = rows.start;
    while r < rows.end {
        if R > 1 && r + R <= rows.end {
            if let Some(group) = p.layout.group_at::<W, R>(p.blocks, r) {
                write(p, r, t0, W::dot::<S, R, N>(s, group, acts));
                r += R;
                continue;
            }
        }
        write(p, r, t0, W::dot::<S, 1, N>(s, p.layout.row(p.blocks, r), acts));
        r += 1;
    }
}

/// Stores the dots of rows `r0..r0 + R` for tokens `t0..t0 + N`.
#[inline(always)]
fn write<W: RowDot, const R: usize, const N: usize>(p: &Blocks<W>, r0: usize, t0: usize, dots: [[f32; N]; R]) {
    for (r, row) in dots.into_iter().enumerate() {
        for (t, v) in row.into_iter().enumerate() {
            // SAFETY: this task owns these rows of every token's output.
            unsafe { p.out.write((t0 + t) * p.out_width + r0 + r, v) };
        }
    }
}

/// Quantizes the activation rows `tokens` of `x` (`width` apart, `cols` used) into `out`.
struct Quantize<'a, A: Activation> {
    x: &'a [f32],
    width: usize,
    cols: usize,
    tokens: Range<usize>,
    out: &'a mut [A],
}

impl<A: Activation> Kernel for Quantize<'_, A> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, _: S) {
        let per_row = self.cols / A::ELEMS;
        for (t, out) in self.tokens.zip(self.out.chunks_exact_mut(per_row)) {
            quantize_into(&self.x[t * self.width..][..self.cols], out);
        }
    }
}

/// Fills `acts` with the first `n` rows of `x` (`width` apart, `cols` used), quantized; a large
/// batch is shared among the threads.
fn quantize<A: Activation>(workers: &dyn Workers, kernels: Kernels, x: &[f32], width: usize, cols: usize, n: usize, acts: &mut [A]) {
    const ROWS_PER_TASK: usize = 8;
    if n < 2 * ROWS_PER_TASK {
        kernels.run(Quantize { x, width, cols, tokens: 0..n, out: acts });
        return;
    }
    let floats_per_row = cols / A::ELEMS * std::mem::size_of::<A>() / 4;
    let out = SharedOut::new(bytemuck::cast_slice_mut(acts));
    workers.for_each(n.div_ceil(ROWS_PER_TASK), &|c| {
        let tokens = c * ROWS_PER_TASK..((c + 1) * ROWS_PER_TASK).min(n);
        // SAFETY: task c alone writes the blocks of its tokens.
        let out = unsafe { out.slice(tokens.start * floats_per_row, tokens.len() * floats_per_row) };
        kernels.run(Quantize::<A> { x, width, cols, tokens, out: bytemuck::cast_slice_mut(out) });
    });
}
