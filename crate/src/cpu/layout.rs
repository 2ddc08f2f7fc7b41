//! How the CPU backend keeps a weight matrix: the file's blocks, with the rows of each group of
//! `GROUP` interleaved block by block (block 0 of rows 0..4, block 1 of rows 0..4, ...); rows past
//! the last whole group, F32/F16 matrices, and every matrix of kernels that read one row at a
//! time (`Kernels::rows_per_pass`) stay row after row.
//!
//! Why: a decode step multiplies each weight row with one token. One row at a time leaves a
//! single chain of float adds per row that each block waits on; several rows at a time break
//! the chain, but read as many separate streams of memory, and on the machines measured that
//! lost more than it won. Interleaved, the rows of a group are one sequential stream. The
//! rearrangement happens in place, a group at a time, as a matrix finishes loading: never a
//! second copy of the weights.

use crate::quant::QuantFormat;

/// Rows per interleaved group.
pub(crate) const GROUP: usize = 4;

/// Where a matrix's rows lie among its blocks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    rows: usize,
    row_blocks: usize,
    /// Rows per group: `GROUP`, or 1 where rows stay row after row.
    group: usize,
}

impl Layout {
    /// The layout of a `[rows][cols]` matrix for kernels that multiply `rows_per_pass` rows
    /// with a token at once (`GROUP` or 1).
    pub(crate) fn of(format: QuantFormat, rows: usize, cols: usize, rows_per_pass: usize) -> Self {
        // F32/F16 blocks are single values, read eight of one row at a time.
        let group = if format.block_elems() == 1 { 1 } else { rows_per_pass };
        Layout { rows, row_blocks: cols / format.block_elems(), group }
    }

    /// Row `r`'s block 0 (an index in blocks) and how many blocks apart its blocks lie.
    pub(crate) fn locate(&self, r: usize) -> (usize, usize) {
        let g = self.group;
        if r < self.rows / g * g {
            (r / g * g * self.row_blocks + r % g, g)
        } else {
            (r * self.row_blocks, 1)
        }
    }

    /// `R` rows from `r` as the kernels read them; `None` unless they are one whole group.
    pub(crate) fn group_at<'a, B, const R: usize>(&self, blocks: &'a [B], r: usize) -> Option<Rows<'a, B>> {
        let (start, stride) = self.locate(r);
        (stride == R && r % R == 0).then(|| Rows::new(&blocks[start..], stride, self.row_blocks))
    }

    /// Row `r` alone as the kernels read it.
    pub(crate) fn row<'a, B>(&self, blocks: &'a [B], r: usize) -> Rows<'a, B> {
        let (start, stride) = self.locate(r);
        Rows::new(&blocks[start..], stride, self.row_blocks)
    }

    /// Rearranges `data`, the matrix as the file has it (`block_bytes` a block), into this layout.
    pub(crate) fn interleave(&self, data: &mut [u8], block_bytes: usize) {
        let (g, rb) = (self.group, self.row_blocks);
        if g == 1 {
            return;
        }
        let group_bytes = g * rb * block_bytes;
        let mut plain = vec![0u8; group_bytes];
        for group in data[..self.rows / g * group_bytes].chunks_exact_mut(group_bytes) {
            plain.copy_from_slice(group);
            for (r, row) in plain.chunks_exact(rb * block_bytes).enumerate() {
                for (i, block) in row.chunks_exact(block_bytes).enumerate() {
                    group[(i * g + r) * block_bytes..][..block_bytes].copy_from_slice(block);
                }
            }
        }
    }
}

/// One or more rows of a matrix as the kernels read them: row `r`'s block `i` is
/// `blocks[i * stride + r]` (rows of one interleaved group: stride `GROUP`; a row stored whole:
/// stride 1).
#[derive(Debug)]
pub(crate) struct Rows<'a, B> {
    blocks: &'a [B],
    stride: usize,
    /// Blocks per row.
    pub len: usize,
}

impl<B> Clone for Rows<'_, B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B> Copy for Rows<'_, B> {}

impl<'a, B> Rows<'a, B> {
    fn new(blocks: &'a [B], stride: usize, len: usize) -> Self {
        let need = if len == 0 { 0 } else { (len - 1) * stride + 1 };
        assert!(blocks.len() >= need, "rows beyond the matrix");
        Rows { blocks, stride, len }
    }

    /// Block `i` of the first row.
    #[inline(always)]
    pub(crate) fn block(&self, i: usize) -> &'a B {
        &self.blocks[i * self.stride]
    }

    /// Block `i` of each of the first `R` rows.
    #[inline(always)]
    pub(crate) fn blocks<const R: usize>(&self, i: usize) -> &'a [B; R] {
        self.blocks[i * self.stride..][..R].try_into().unwrap()
    }

    /// Row `r` of these alone.
    #[inline(always)]
    pub(crate) fn row(&self, r: usize) -> Self {
        Rows { blocks: &self.blocks[r..], ..*self }
    }

    /// The first row's blocks, where they lie side by side.
    pub(crate) fn plain(&self) -> &'a [B] {
        assert_eq!(self.stride, 1, "an interleaved row read as a plain one");
        &self.blocks[..self.len]
    }
}
