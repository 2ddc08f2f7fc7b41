//! The byte layout of one block of each `QuantFormat`, exactly as GGUF stores it.
//!
//! Every field is a byte array (f16 values as `[u8; 2]`, little-endian), so each block has
//! alignment 1 and no padding: a tensor's bytes can be viewed as `&[BlockX]` straight out of a
//! memory-mapped or unaligned buffer with `bytemuck::try_cast_slice`, with no copy.

use bytemuck::{Pod, Zeroable};
use half::f16;

use super::QuantFormat;

/// Elements in a K-quant super-block.
pub const QK_K: usize = 256;

/// A block type: plain bytes in the layout of `FORMAT`, one block of `FORMAT.block_elems()`.
pub trait Block: Pod {
    const FORMAT: QuantFormat;
}

/// A little-endian IEEE half, widened exactly.
#[inline]
pub fn f16_le(bytes: [u8; 2]) -> f32 {
    f16::from_le_bytes(bytes).to_f32()
}

macro_rules! block {
    ($(#[$doc:meta])* $name:ident, $format:ident, $size:expr, { $($(#[$fdoc:meta])* $field:ident: $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[repr(C)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
        pub struct $name {
            $($(#[$fdoc])* pub $field: $ty),*
        }

        impl Block for $name {
            const FORMAT: QuantFormat = QuantFormat::$format;
        }

        const _: () = assert!(std::mem::size_of::<$name>() == $size);
        const _: () = assert!(std::mem::align_of::<$name>() == 1);
    };
}

block!(
    /// One f32 element (the "block" of an unquantized tensor).
    BlockF32, F32, 4, { v: [u8; 4] }
);

block!(
    /// One f16 element.
    BlockF16, F16, 2, { v: [u8; 2] }
);

block!(
    /// 32 elements: `d * q`, q a signed byte.
    BlockQ8_0, Q8_0, 34, {
        /// f16 scale.
        d: [u8; 2],
        qs: [i8; 32],
    }
);

block!(
    /// 32 elements: `d * (q - 8)`, q a 4-bit nibble. Byte j holds element j (low nibble) and
    /// element j + 16 (high nibble).
    BlockQ4_0, Q4_0, 18, {
        /// f16 scale.
        d: [u8; 2],
        qs: [u8; 16],
    }
);

block!(
    /// 32 elements: `d * q + m`, q a 4-bit nibble, packed as in `BlockQ4_0`.
    BlockQ4_1, Q4_1, 20, {
        /// f16 scale.
        d: [u8; 2],
        /// f16 offset (the block minimum).
        m: [u8; 2],
        qs: [u8; 16],
    }
);

block!(
    /// 32 elements: `d * (q - 16)`, q 5 bits: the low 4 packed as in `BlockQ4_0`, the fifth bit of
    /// element j is bit j of `qh` (a little-endian u32).
    BlockQ5_0, Q5_0, 22, {
        /// f16 scale.
        d: [u8; 2],
        qh: [u8; 4],
        qs: [u8; 16],
    }
);

block!(
    /// 32 elements: `d * q + m`, q 5 bits packed as in `BlockQ5_0`.
    BlockQ5_1, Q5_1, 24, {
        /// f16 scale.
        d: [u8; 2],
        /// f16 offset (the block minimum).
        m: [u8; 2],
        qh: [u8; 4],
        qs: [u8; 16],
    }
);

block!(
    /// 256 elements in 8 sub-blocks of 32: `d * sc[i] * q - dmin * mn[i]`, q a 4-bit nibble.
    /// `scales` packs the eight 6-bit `sc` and eight 6-bit `mn` (see `scale_min`). Each 32-byte
    /// run of `qs` holds two sub-blocks: low nibbles the first, high nibbles the second.
    BlockQ4_K, Q4_K, 144, {
        /// f16 super-block scale for the sub-block scales.
        d: [u8; 2],
        /// f16 super-block scale for the sub-block mins.
        dmin: [u8; 2],
        scales: [u8; 12],
        qs: [u8; 128],
    }
);

block!(
    /// 256 elements as in `BlockQ4_K`, with a fifth bit per element: bit i of `qh[l]` is the high
    /// bit of element 32 * i + l.
    BlockQ5_K, Q5_K, 176, {
        /// f16 super-block scale for the sub-block scales.
        d: [u8; 2],
        /// f16 super-block scale for the sub-block mins.
        dmin: [u8; 2],
        scales: [u8; 12],
        qh: [u8; 32],
        qs: [u8; 128],
    }
);

block!(
    /// 256 elements in 16 sub-blocks of 16: `d * scales[i] * (q - 32)`, q 6 bits: low 4 in `ql`,
    /// high 2 in `qh`. Unlike the other formats the f16 scale comes last.
    BlockQ6_K, Q6_K, 210, {
        ql: [u8; 128],
        qh: [u8; 64],
        /// Signed 8-bit sub-block scales.
        scales: [i8; 16],
        /// f16 super-block scale.
        d: [u8; 2],
    }
);

block!(
    /// 256 elements in 16 sub-blocks of 16: `d * (sc[i] & 15) * q - dmin * (sc[i] >> 4)`, q 2
    /// bits. Each 32-byte half of `qs` holds 128 elements: element 32 k + l of a half is bits
    /// 2k..2k+2 of byte l.
    BlockQ2_K, Q2_K, 84, {
        /// Per sub-block: the scale in the low nibble, the min in the high one.
        scales: [u8; 16],
        qs: [u8; 64],
        /// f16 super-block scale for the sub-block scales.
        d: [u8; 2],
        /// f16 super-block scale for the sub-block mins.
        dmin: [u8; 2],
    }
);

block!(
    /// 256 elements in 16 sub-blocks of 16: `d * (sc[i] - 32) * (q - 4)`, q 3 bits: the low 2
    /// laid out as in `BlockQ2_K`'s `qs`, the third is bit 4h + k of `hmask[l]` for element
    /// 32 k + l of half h. `scales` packs the sixteen 6-bit `sc` (see `scale_k3`).
    BlockQ3_K, Q3_K, 110, {
        hmask: [u8; 32],
        qs: [u8; 64],
        scales: [u8; 12],
        /// f16 super-block scale.
        d: [u8; 2],
    }
);

/// The signed scale of sub-block `j` (0..16) from the 12 packed bytes of a Q3_K block: its low 4
/// bits are the low (j < 8) or high nibble of byte `j % 8`, its top 2 bits are bits
/// `2 (j / 4)..2 (j / 4) + 2` of byte `8 + j % 4`; stored with a bias of 32.
#[inline]
pub fn scale_k3(scales: &[u8; 12], j: usize) -> i8 {
    let low = (scales[j % 8] >> (4 * (j / 8))) & 0x0f;
    let high = (scales[8 + j % 4] >> (2 * (j / 4))) & 0x03;
    (low | high << 4) as i8 - 32
}

/// The 6-bit scale and min of sub-block `j` (0..8) from the 12 packed bytes of a Q4_K/Q5_K block.
///
/// Bytes 0..4 hold the low 6 bits of scales 0..4, bytes 4..8 the low 6 bits of mins 0..4. Scales
/// and mins 4..8 take their low 4 bits from the nibbles of bytes 8..12 and their top 2 bits from
/// the otherwise unused top 2 bits of bytes 0..4 (scales) and 4..8 (mins).
#[inline]
pub fn scale_min(scales: &[u8; 12], j: usize) -> (u8, u8) {
    if j < 4 {
        (scales[j] & 0x3f, scales[j + 4] & 0x3f)
    } else {
        let sc = (scales[j + 4] & 0x0f) | ((scales[j - 4] >> 6) << 4);
        let mn = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
        (sc, mn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<B: Block>() {
        assert_eq!(
            std::mem::size_of::<B>(),
            B::FORMAT.block_bytes(),
            "{}",
            B::FORMAT
        );
    }

    #[test]
    fn block_sizes_match_the_format_table() {
        check::<BlockF32>();
        check::<BlockF16>();
        check::<BlockQ8_0>();
        check::<BlockQ4_0>();
        check::<BlockQ4_1>();
        check::<BlockQ5_0>();
        check::<BlockQ5_1>();
        check::<BlockQ4_K>();
        check::<BlockQ5_K>();
        check::<BlockQ6_K>();
        check::<BlockQ2_K>();
        check::<BlockQ3_K>();
    }

    #[test]
    fn blocks_cast_from_unaligned_bytes() {
        let bytes = [0u8; 1 + 2 * 18];
        let blocks: &[BlockQ4_0] = bytemuck::try_cast_slice(&bytes[1..]).unwrap();
        assert_eq!(blocks.len(), 2);
    }

    #[test]
    fn scale_min_unpacks_the_6_bit_fields() {
        // Distinct 6-bit values whose top two bits vary, packed by hand.
        let (sc, mn): (Vec<u8>, Vec<u8>) = (0..8).map(|j| (8 * j + 5, 61 - 7 * j)).unzip();
        let mut packed = [0u8; 12];
        for j in 0..4 {
            packed[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
            packed[j + 4] = mn[j] | ((mn[j + 4] >> 4) << 6);
            packed[j + 8] = (sc[j + 4] & 0x0f) | ((mn[j + 4] & 0x0f) << 4);
        }
        for j in 0..8 {
            assert_eq!(scale_min(&packed, j), (sc[j], mn[j]), "sub-block {j}");
        }
    }
}
