use super::{Activation, LayerAttention, ModelConfig, ModelError};
use crate::gguf::{ByteSource, TensorInfo};
use crate::quant::QuantFormat;

/// Bytes read from a source at a time while loading: the loader never holds more of the file.
/// A multiple of 4, as `write_matrix` wants.
pub const READ_PIECE: usize = 8 << 20;

/// Head layout for attention and rotary embeddings.
#[derive(Debug, Clone, Copy)]
pub struct AttentionShape {
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub rope_dim: usize,
    pub rope_order: super::RopeOrder,
    /// Multiplies the attention scores.
    pub scale: f32,
}

impl AttentionShape {
    pub fn of(config: &ModelConfig) -> Self {
        Self {
            n_heads: config.n_heads,
            n_kv_heads: config.n_kv_heads,
            head_dim: config.head_dim,
            rope_dim: config.rope_dim,
            rope_order: config.arch.rope_order,
            scale: config.attn_scale,
        }
    }
}

/// The operations a forward pass is made of. A backend records or runs them; activations are
/// f32 row-major `[rows][width]` buffers, `n` is how many rows (tokens) an op covers.
///
/// Ops are infallible to call: a GPU backend only records them, and device failures surface
/// at the next read.
#[allow(async_fn_in_trait)]
pub trait Backend {
    /// A weight matrix `[rows][cols]`, in whatever form this backend computes with.
    type Matrix;
    /// A 1-D f32 weight (norm gains).
    type Vector;
    type Buffer;
    /// Keys and values of every layer for `context` positions, plus the rotary angle tables
    /// (`rope::rope_tables`).
    type Cache;

    /// Room for a 2-D tensor whose bytes then arrive through `write_matrix`.
    fn alloc_matrix(&mut self, info: &TensorInfo, format: QuantFormat) -> Result<Self::Matrix, ModelError>;
    /// Copies `bytes` to `offset` bytes into the matrix's data. `offset` is a multiple of 4, and
    /// so is `bytes.len()` unless the write ends the tensor.
    fn write_matrix(&mut self, m: &mut Self::Matrix, offset: u64, bytes: &[u8]);
    /// Called once every byte of the matrix is written.
    fn finish_matrix(&mut self, m: &mut Self::Matrix) -> Result<(), ModelError>;
    /// A 1-D weight; these are small (norm gains), so they arrive whole, as f32.
    fn vector(&mut self, name: &str, values: &[f32]) -> Result<Self::Vector, ModelError>;

    /// A whole matrix from `source`, read in pieces.
    fn load_matrix(
        &mut self,
        info: &TensorInfo,
        format: QuantFormat,
        source: &mut dyn ByteSource,
    ) -> Result<Self::Matrix, ModelError> {
        let mut m = self.alloc_matrix(info, format)?;
        let mut piece = vec![0u8; READ_PIECE.min(info.n_bytes as usize)];
        let mut done = 0u64;
        while done < info.n_bytes {
            let len = piece.len().min((info.n_bytes - done) as usize);
            source.read_at(info.offset + done, &mut piece[..len])?;
            self.write_matrix(&mut m, done, &piece[..len]);
            done += len as u64;
        }
        self.finish_matrix(&mut m)?;
        Ok(m)
    }

    /// A whole 1-D tensor from `source`.
    fn load_vector(
        &mut self,
        info: &TensorInfo,
        format: QuantFormat,
        source: &mut dyn ByteSource,
    ) -> Result<Self::Vector, ModelError> {
        let mut bytes = vec![0u8; info.n_bytes as usize];
        source.read_at(info.offset, &mut bytes)?;
        let values = crate::quant::dequantize_to_vec(format, &bytes, info.n_elems() as usize)?;
        self.vector(&info.name, &values)
    }

    /// Gets ready to run `weights`, building what the forward pass will use (GPU pipelines) so
    /// that the first request does not pay for it. Backends with nothing to build keep this.
    fn prepare(&mut self, _weights: &super::Weights<Self>)
    where
        Self: Sized,
    {
    }

    fn buffer(&mut self, rows: usize, width: usize) -> Result<Self::Buffer, ModelError>;
    /// A buffer holding `data`, `width` values per row.
    fn buffer_from(&mut self, width: usize, data: &[f32]) -> Result<Self::Buffer, ModelError>;
    fn cache(&mut self, config: &ModelConfig, context: usize) -> Result<Self::Cache, ModelError>;

    /// `out[t] = table[tokens[t]] * scale`.
    fn embed(&mut self, table: &Self::Matrix, tokens: &[u32], out: &Self::Buffer, scale: f32);
    /// RMSNorm of each of the `groups` runs of `weight.len()` values that begin each of the n
    /// rows (one run: the whole row; one per head: a per-head norm). `out` is not `x`.
    fn rms_norm(&mut self, x: &Self::Buffer, weight: &Self::Vector, out: &Self::Buffer, n: usize, groups: usize, eps: f32);
    /// `out[t] = w · x[x_row0 + t]` for t in 0..n.
    fn matmul(&mut self, w: &Self::Matrix, x: &Self::Buffer, x_row0: usize, out: &Self::Buffer, n: usize);
    /// `x[t] += bias` for each of the n rows.
    fn add_bias(&mut self, x: &Self::Buffer, bias: &Self::Vector, n: usize);
    /// Rotates `heads` heads of every row in place with the layer's table, row t sitting at
    /// position `pos0 + t`.
    fn rope(&mut self, x: &Self::Buffer, cache: &Self::Cache, layer: LayerAttention, heads: usize, n: usize, pos0: usize);
    /// Writes rows 0..n of `k` and `v` to positions `pos0..pos0 + n` of the layer's cache.
    fn store_kv(&mut self, cache: &Self::Cache, layer: usize, k: &Self::Buffer, v: &Self::Buffer, n: usize, pos0: usize);
    /// Causal attention of the n queries (positions `pos0..`) over the layer's cache, each
    /// seeing the keys `layer.first_key(pos)..=pos`.
    fn attention(&mut self, q: &Self::Buffer, cache: &Self::Cache, layer: LayerAttention, out: &Self::Buffer, n: usize, pos0: usize);
    /// `gate = act(gate) * up`.
    fn glu(&mut self, gate: &Self::Buffer, up: &Self::Buffer, n: usize, act: Activation);
    /// `x += y`.
    fn add(&mut self, x: &Self::Buffer, y: &Self::Buffer, n: usize);

    /// The index of the largest value in row `row` (lowest index among equals); with `allowed`,
    /// among the indices whose bit is set (bit `i % 32` of word `i / 32`), which must be some.
    async fn argmax(&mut self, logits: &Self::Buffer, row: usize, allowed: Option<&[u32]>) -> Result<u32, ModelError>;
    /// Rows 0..rows of a buffer.
    async fn read(&mut self, x: &Self::Buffer, rows: usize) -> Result<Vec<f32>, ModelError>;
    /// Waits until every op called so far has run. A backend that computes as it is called
    /// has nothing to wait for.
    async fn finish(&mut self) -> Result<(), ModelError> {
        Ok(())
    }
}

/// [`Backend::argmax`] in plain Rust: the first largest value of `row` among the indices
/// `allowed` sets (all when `None`), 0 when it sets none.
pub fn first_max(row: &[f32], allowed: Option<&[u32]>) -> u32 {
    let may_win = |i: usize| allowed.is_none_or(|bits| bits.get(i / 32).is_some_and(|w| w >> (i % 32) & 1 == 1));
    let best = (0..row.len()).filter(|&i| may_win(i)).fold(None, |b: Option<usize>, i| match b {
        Some(b) if row[i] > row[b] => Some(i),
        Some(b) => Some(b),
        None => Some(i),
    });
    best.unwrap_or(0) as u32
}
