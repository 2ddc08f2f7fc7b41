//! Tensor element types as GGUF names them, and the block formats Torchlight can run.
//!
//! `GgmlType` knows every type id a GGUF file may carry (so the reader can size and validate any
//! tensor, and name an unsupported one), while `QuantFormat` is the subset this engine computes
//! with: CPU reference dequantizers here, fused GPU kernels in `shaders/`.

use std::fmt;

/// Every tensor type id ggml has assigned. Ids that ggml retired are absent: a file that uses one
/// is rejected as an unknown type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    Q8_K,
    IQ2_XXS,
    IQ2_XS,
    IQ3_XXS,
    IQ1_S,
    IQ4_NL,
    IQ3_S,
    IQ2_S,
    IQ4_XS,
    I8,
    I16,
    I32,
    I64,
    F64,
    IQ1_M,
    BF16,
    TQ1_0,
    TQ2_0,
    MXFP4,
}

/// (type, ggml id, elements per block, bytes per block), as in ggml's type traits.
const TYPES: &[(GgmlType, u32, usize, usize)] = &[
    (GgmlType::F32, 0, 1, 4),
    (GgmlType::F16, 1, 1, 2),
    (GgmlType::Q4_0, 2, 32, 18),
    (GgmlType::Q4_1, 3, 32, 20),
    (GgmlType::Q5_0, 6, 32, 22),
    (GgmlType::Q5_1, 7, 32, 24),
    (GgmlType::Q8_0, 8, 32, 34),
    (GgmlType::Q8_1, 9, 32, 36),
    (GgmlType::Q2_K, 10, 256, 84),
    (GgmlType::Q3_K, 11, 256, 110),
    (GgmlType::Q4_K, 12, 256, 144),
    (GgmlType::Q5_K, 13, 256, 176),
    (GgmlType::Q6_K, 14, 256, 210),
    (GgmlType::Q8_K, 15, 256, 292),
    (GgmlType::IQ2_XXS, 16, 256, 66),
    (GgmlType::IQ2_XS, 17, 256, 74),
    (GgmlType::IQ3_XXS, 18, 256, 98),
    (GgmlType::IQ1_S, 19, 256, 50),
    (GgmlType::IQ4_NL, 20, 32, 18),
    (GgmlType::IQ3_S, 21, 256, 110),
    (GgmlType::IQ2_S, 22, 256, 82),
    (GgmlType::IQ4_XS, 23, 256, 136),
    (GgmlType::I8, 24, 1, 1),
    (GgmlType::I16, 25, 1, 2),
    (GgmlType::I32, 26, 1, 4),
    (GgmlType::I64, 27, 1, 8),
    (GgmlType::F64, 28, 1, 8),
    (GgmlType::IQ1_M, 29, 256, 56),
    (GgmlType::BF16, 30, 1, 2),
    (GgmlType::TQ1_0, 34, 256, 54),
    (GgmlType::TQ2_0, 35, 256, 66),
    (GgmlType::MXFP4, 39, 32, 17),
];

impl GgmlType {
    pub fn from_id(id: u32) -> Option<Self> {
        TYPES.iter().find(|t| t.1 == id).map(|t| t.0)
    }

    fn traits(self) -> &'static (GgmlType, u32, usize, usize) {
        TYPES.iter().find(|t| t.0 == self).expect("every GgmlType has a row in TYPES")
    }

    pub fn id(self) -> u32 {
        self.traits().1
    }

    /// Elements per block.
    pub fn block_elems(self) -> usize {
        self.traits().2
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        self.traits().3
    }

    /// Bytes that `n_elems` elements occupy, or `None` when `n_elems` is not a whole number of
    /// blocks (ggml requires rows to be) or the size overflows.
    pub fn bytes_for(self, n_elems: u64) -> Option<u64> {
        let be = self.block_elems() as u64;
        if n_elems % be != 0 {
            return None;
        }
        (n_elems / be).checked_mul(self.block_bytes() as u64)
    }

    /// The computable format for this type, if Torchlight supports it.
    pub fn format(self) -> Option<QuantFormat> {
        QuantFormat::ALL.iter().copied().find(|f| f.ggml_type() == self)
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The weight formats Torchlight computes with, on the CPU and the GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum QuantFormat {
    F32,
    F16,
    Q8_0,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q4_K,
    Q5_K,
    Q6_K,
    Q2_K,
    Q3_K,
}

impl QuantFormat {
    pub const ALL: [QuantFormat; 12] = [
        QuantFormat::F32,
        QuantFormat::F16,
        QuantFormat::Q8_0,
        QuantFormat::Q4_0,
        QuantFormat::Q4_1,
        QuantFormat::Q5_0,
        QuantFormat::Q5_1,
        QuantFormat::Q4_K,
        QuantFormat::Q5_K,
        QuantFormat::Q6_K,
        QuantFormat::Q2_K,
        QuantFormat::Q3_K,
    ];

    pub fn ggml_type(self) -> GgmlType {
        match self {
            QuantFormat::F32 => GgmlType::F32,
            QuantFormat::F16 => GgmlType::F16,
            QuantFormat::Q8_0 => GgmlType::Q8_0,
            QuantFormat::Q4_0 => GgmlType::Q4_0,
            QuantFormat::Q4_1 => GgmlType::Q4_1,
            QuantFormat::Q5_0 => GgmlType::Q5_0,
            QuantFormat::Q5_1 => GgmlType::Q5_1,
            QuantFormat::Q4_K => GgmlType::Q4_K,
            QuantFormat::Q5_K => GgmlType::Q5_K,
            QuantFormat::Q6_K => GgmlType::Q6_K,
            QuantFormat::Q2_K => GgmlType::Q2_K,
            QuantFormat::Q3_K => GgmlType::Q3_K,
        }
    }

    pub fn block_elems(self) -> usize {
        self.ggml_type().block_elems()
    }

    pub fn block_bytes(self) -> usize {
        self.ggml_type().block_bytes()
    }
}

impl fmt::Display for QuantFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

pub mod blocks;
pub mod dequant;

pub use dequant::{dequantize, dequantize_to_vec, QuantError};
