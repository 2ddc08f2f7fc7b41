//! CPU reference dequantizers: GGUF block bytes to f32, computed as ggml computes them.
//!
//! These are the ground truth for the GPU kernels, so they favour plainness over speed. Every
//! value is formed with the same f32 operations in the same order as ggml's `dequantize_row_*`
//! (e.g. `(d * sc) * q - dmin * m`, never fused), so results match ggml and gguf-py bit for bit.

use thiserror::Error;

use super::blocks::{
    f16_le, scale_k3, scale_min, Block, BlockF16, BlockF32, BlockQ2_K, BlockQ3_K, BlockQ4_0, BlockQ4_1,
    BlockQ4_K, BlockQ5_0, BlockQ5_1, BlockQ5_K, BlockQ6_K, BlockQ8_0, QK_K,
};
use super::QuantFormat;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QuantError {
    #[error("{format} data is {len} bytes, not a whole number of {block_bytes}-byte blocks")]
    PartialBlock {
        format: QuantFormat,
        len: usize,
        block_bytes: usize,
    },
    #[error("{format} data holds {expected} elements but {actual} were asked for")]
    LengthMismatch {
        format: QuantFormat,
        expected: usize,
        actual: usize,
    },
}

/// Dequantizes `bytes`, a run of whole `format` blocks, into `out`, which must hold exactly the
/// blocks' elements.
pub fn dequantize(format: QuantFormat, bytes: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
    check_lengths(format, bytes.len(), out.len())?;
    match format {
        QuantFormat::F32 => each(bytes, out, f32_elem),
        QuantFormat::F16 => each(bytes, out, f16_elem),
        QuantFormat::Q8_0 => each(bytes, out, q8_0),
        QuantFormat::Q4_0 => each(bytes, out, q4_0),
        QuantFormat::Q4_1 => each(bytes, out, q4_1),
        QuantFormat::Q5_0 => each(bytes, out, q5_0),
        QuantFormat::Q5_1 => each(bytes, out, q5_1),
        QuantFormat::Q4_K => each(bytes, out, q4_k),
        QuantFormat::Q5_K => each(bytes, out, q5_k),
        QuantFormat::Q6_K => each(bytes, out, q6_k),
        QuantFormat::Q2_K => each(bytes, out, q2_k),
        QuantFormat::Q3_K => each(bytes, out, q3_k),
    }
    Ok(())
}

/// Dequantizes `bytes` into a new vector of `n_elems` values, which must be exactly the number
/// of elements the blocks hold.
pub fn dequantize_to_vec(
    format: QuantFormat,
    bytes: &[u8],
    n_elems: usize,
) -> Result<Vec<f32>, QuantError> {
    // Checked before allocating: `n_elems` often comes from a file header and may be absurd.
    check_lengths(format, bytes.len(), n_elems)?;
    let mut out = vec![0.0; n_elems];
    dequantize(format, bytes, &mut out)?;
    Ok(out)
}

fn check_lengths(format: QuantFormat, n_bytes: usize, n_elems: usize) -> Result<(), QuantError> {
    let block_bytes = format.block_bytes();
    if !n_bytes.is_multiple_of(block_bytes) {
        return Err(QuantError::PartialBlock {
            format,
            len: n_bytes,
            block_bytes,
        });
    }
    // Cannot overflow: every format has fewer elements per block than bytes per block times two.
    let expected = n_bytes / block_bytes * format.block_elems();
    if n_elems != expected {
        return Err(QuantError::LengthMismatch {
            format,
            expected,
            actual: n_elems,
        });
    }
    Ok(())
}

/// Decodes each block of `bytes` into its run of `out`. Lengths were checked by the caller, and
/// blocks have alignment 1, so the cast cannot fail.
fn each<B: Block>(bytes: &[u8], out: &mut [f32], decode: fn(&B, &mut [f32])) {
    let blocks: &[B] = bytemuck::cast_slice(bytes);
    for (block, out) in blocks
        .iter()
        .zip(out.chunks_exact_mut(B::FORMAT.block_elems()))
    {
        decode(block, out);
    }
}

fn f32_elem(b: &BlockF32, out: &mut [f32]) {
    out[0] = f32::from_le_bytes(b.v);
}

fn f16_elem(b: &BlockF16, out: &mut [f32]) {
    out[0] = f16_le(b.v);
}

fn q8_0(b: &BlockQ8_0, out: &mut [f32]) {
    let d = f16_le(b.d);
    for (o, &q) in out.iter_mut().zip(&b.qs) {
        *o = f32::from(q) * d;
    }
}

fn q4_0(b: &BlockQ4_0, out: &mut [f32]) {
    let d = f16_le(b.d);
    for (o, q) in out.iter_mut().zip(unpack_q4(&b.qs)) {
        *o = (f32::from(q) - 8.0) * d;
    }
}

fn q4_1(b: &BlockQ4_1, out: &mut [f32]) {
    let (d, m) = (f16_le(b.d), f16_le(b.m));
    for (o, q) in out.iter_mut().zip(unpack_q4(&b.qs)) {
        *o = f32::from(q) * d + m;
    }
}

fn q5_0(b: &BlockQ5_0, out: &mut [f32]) {
    let d = f16_le(b.d);
    for (o, q) in out.iter_mut().zip(unpack_q5(b.qh, &b.qs)) {
        *o = (f32::from(q) - 16.0) * d;
    }
}

fn q5_1(b: &BlockQ5_1, out: &mut [f32]) {
    let (d, m) = (f16_le(b.d), f16_le(b.m));
    for (o, q) in out.iter_mut().zip(unpack_q5(b.qh, &b.qs)) {
        *o = f32::from(q) * d + m;
    }
}

fn q4_k(b: &BlockQ4_K, out: &mut [f32]) {
    apply_k_scales(b.d, b.dmin, &b.scales, &unpack_k4(&b.qs), out);
}

fn q5_k(b: &BlockQ5_K, out: &mut [f32]) {
    let mut q = unpack_k4(&b.qs);
    // Bit i of qh[l] is the fifth bit of element 32 * i + l.
    for (i, v) in q.iter_mut().enumerate() {
        *v |= ((b.qh[i % 32] >> (i / 32)) & 1) << 4;
    }
    apply_k_scales(b.d, b.dmin, &b.scales, &q, out);
}

fn q6_k(b: &BlockQ6_K, out: &mut [f32]) {
    let d = f16_le(b.d);
    // Two halves of 128 elements, each drawn from 64 bytes of ql and 32 of qh: element i of a half
    // has its low 4 bits in nibble i / 64 of ql[i % 64] and its high 2 bits in field i / 32 of
    // qh[i % 32]. Each run of 16 elements has its own signed scale.
    for (h, out) in out.chunks_exact_mut(128).enumerate() {
        let (ql, qh) = (&b.ql[64 * h..64 * (h + 1)], &b.qh[32 * h..32 * (h + 1)]);
        for (i, o) in out.iter_mut().enumerate() {
            let low = (ql[i % 64] >> (4 * (i / 64))) & 0x0f;
            let high = (qh[i % 32] >> (2 * (i / 32))) & 0x03;
            let q = i32::from(low | high << 4) - 32;
            let scale = d * f32::from(b.scales[(128 * h + i) / 16]);
            *o = scale * q as f32;
        }
    }
}

/// The 256 2-bit values of a Q2_K/Q3_K block in element order: element 32 k + l of half h is
/// bits 2k..2k+2 of `qs[32 h + l]`.
fn unpack_k2(qs: &[u8; 64]) -> [u8; QK_K] {
    let mut q = [0; QK_K];
    for (i, v) in q.iter_mut().enumerate() {
        let (h, k, l) = (i / 128, i / 32 % 4, i % 32);
        *v = (qs[32 * h + l] >> (2 * k)) & 0x03;
    }
    q
}

fn q2_k(b: &BlockQ2_K, out: &mut [f32]) {
    let (d, dmin) = (f16_le(b.d), f16_le(b.dmin));
    let q = unpack_k2(&b.qs);
    for (j, (q, out)) in q.chunks_exact(16).zip(out.chunks_exact_mut(16)).enumerate() {
        let (scale, offset) = (d * f32::from(b.scales[j] & 0x0f), dmin * f32::from(b.scales[j] >> 4));
        for (o, &q) in out.iter_mut().zip(q) {
            *o = scale * f32::from(q) - offset;
        }
    }
}

fn q3_k(b: &BlockQ3_K, out: &mut [f32]) {
    let d = f16_le(b.d);
    let low = unpack_k2(&b.qs);
    for (j, out) in out.chunks_exact_mut(16).enumerate() {
        let scale = d * f32::from(scale_k3(&b.scales, j));
        for (i, o) in (16 * j..).zip(out.iter_mut()) {
            let (h, k, l) = (i / 128, i / 32 % 4, i % 32);
            let high = (b.hmask[l] >> (4 * h + k)) & 1;
            *o = scale * f32::from((low[i] | high << 2) as i8 - 4);
        }
    }
}

/// The 32 4-bit values of a Q4_0/Q4_1 block in element order: byte j holds element j in its low
/// nibble and element j + 16 in its high nibble.
fn unpack_q4(qs: &[u8; 16]) -> [u8; 32] {
    let mut q = [0; 32];
    for (j, &byte) in qs.iter().enumerate() {
        q[j] = byte & 0x0f;
        q[j + 16] = byte >> 4;
    }
    q
}

/// The 32 5-bit values of a Q5_0/Q5_1 block: the Q4 nibbles plus bit j of `qh` (a little-endian
/// u32) as the fifth bit of element j.
fn unpack_q5(qh: [u8; 4], qs: &[u8; 16]) -> [u8; 32] {
    let high = u32::from_le_bytes(qh);
    let mut q = unpack_q4(qs);
    for (j, v) in q.iter_mut().enumerate() {
        *v |= (((high >> j) & 1) as u8) << 4;
    }
    q
}

/// The 256 4-bit values of a Q4_K/Q5_K block in element order: each 32-byte run of `qs` holds
/// two 32-element sub-blocks, the first in the low nibbles and the second in the high nibbles.
/// (Not the Q4_0 order, where one byte's nibbles are 16 elements apart.)
fn unpack_k4(qs: &[u8; 128]) -> [u8; QK_K] {
    let mut q = [0; QK_K];
    for (i, v) in q.iter_mut().enumerate() {
        *v = (qs[32 * (i / 64) + i % 32] >> (4 * (i / 32 % 2))) & 0x0f;
    }
    q
}

/// `d * sc * q - dmin * mn` for each 32-element sub-block of a Q4_K/Q5_K block, with `sc` and
/// `mn` the sub-block's 6-bit scale and min.
fn apply_k_scales(d: [u8; 2], dmin: [u8; 2], scales: &[u8; 12], q: &[u8; QK_K], out: &mut [f32]) {
    let (d, dmin) = (f16_le(d), f16_le(dmin));
    for (j, (q, out)) in q.chunks_exact(32).zip(out.chunks_exact_mut(32)).enumerate() {
        let (sc, mn) = scale_min(scales, j);
        let (scale, offset) = (d * f32::from(sc), dmin * f32::from(mn));
        for (o, &q) in out.iter_mut().zip(q) {
            *o = scale * f32::from(q) - offset;
        }
    }
}

#[cfg(test)]
mod tests {
    //! Hand-built blocks that pin the element order of the packed layouts; the gguf-py
    //! comparison lives in tests/quant_dequant.rs.
    use super::*;
    use bytemuck::Zeroable;

    const ONE: [u8; 2] = [0x00, 0x3c]; // f16 1.0

    #[test]
    fn q4_0_nibbles_are_16_elements_apart() {
        let mut qs = [0x88; 16]; // every value 8, i.e. zero
        qs[3] = 0xa1; // element 3 = 1 - 8, element 19 = 10 - 8
        let bytes = bytemuck::bytes_of(&BlockQ4_0 { d: ONE, qs }).to_vec();
        let out = dequantize_to_vec(QuantFormat::Q4_0, &bytes, 32).unwrap();
        let nonzero: Vec<_> = out.iter().enumerate().filter(|(_, &v)| v != 0.0).collect();
        assert_eq!(nonzero, [(3, &-7.0), (19, &2.0)]);
    }

    #[test]
    fn q6_k_element_order() {
        let mut block = BlockQ6_K::zeroed();
        block.d = ONE;
        block.scales = [1; 16];
        // Element 128 + 64 + 32 + 5 = 229: second half, high nibble of ql[64 + 32 + 5], field 3
        // of qh[32 + 5]. q = 0b11_0110 = 54, so the value is 54 - 32.
        block.ql[64 + 37] = 0x60;
        block.qh[32 + 5] = 0b1100_0000;
        let out = dequantize_to_vec(QuantFormat::Q6_K, bytemuck::bytes_of(&block), QK_K).unwrap();
        for (i, &v) in out.iter().enumerate() {
            assert_eq!(v, if i == 229 { 22.0 } else { -32.0 }, "element {i}");
        }
    }
}
