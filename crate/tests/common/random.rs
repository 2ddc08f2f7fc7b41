//! Random inputs for kernel tests: activations, and weight blocks of any format with sane scales.
//! Free of file and GPU helpers, so that wasm32 test builds can include it (`#[path]`) alone.

use rand::rngs::SmallRng;
use rand::Rng;
use torchlight::gguf::TensorInfo;
use torchlight::quant::QuantFormat;

pub fn random_f32(rng: &mut SmallRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

pub fn f16_bytes(v: f32) -> [u8; 2] {
    half::f16::from_f32(v).to_le_bytes()
}

/// Random blocks of `format` whose f16 scale fields hold sane values (random bytes there could
/// be NaN or infinity).
pub fn random_blocks(rng: &mut SmallRng, format: QuantFormat, n_elems: usize) -> Vec<u8> {
    let n_blocks = n_elems / format.block_elems();
    let bb = format.block_bytes();
    let mut bytes: Vec<u8> = (0..n_blocks * bb).map(|_| rng.random()).collect();
    let scale_fields: &[usize] = match format {
        QuantFormat::F32 => {
            return random_f32(rng, n_elems).iter().flat_map(|v| v.to_le_bytes()).collect();
        }
        QuantFormat::F16 => {
            return random_f32(rng, n_elems).iter().flat_map(|&v| f16_bytes(v)).collect();
        }
        QuantFormat::Q8_0 | QuantFormat::Q4_0 | QuantFormat::Q5_0 => &[0],
        QuantFormat::Q4_1 | QuantFormat::Q5_1 | QuantFormat::Q4_K | QuantFormat::Q5_K => &[0, 2],
        QuantFormat::Q6_K => &[208],
        QuantFormat::Q2_K => &[80, 82],
        QuantFormat::Q3_K => &[108],
    };
    for block in bytes.chunks_mut(bb) {
        for &at in scale_fields {
            block[at..at + 2].copy_from_slice(&f16_bytes(rng.random_range(-0.05f32..0.05)));
        }
    }
    bytes
}

/// A `rows` x `cols` matrix of `format` holding `bytes`.
pub fn matrix_info(name: &str, format: QuantFormat, cols: usize, rows: usize, bytes: &[u8]) -> TensorInfo {
    TensorInfo {
        name: name.into(),
        dims: vec![cols as u64, rows as u64],
        ggml_type: format.ggml_type(),
        offset: 0,
        n_bytes: bytes.len() as u64,
    }
}
