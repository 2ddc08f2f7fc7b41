use std::collections::HashMap;

use super::{Backend, Holder, ModelConfig, ModelError, Slot, READ_PIECE};
use crate::gguf::{ByteSource, GgufFile, TensorInfo};
use crate::quant::{dequantize_to_vec, QuantFormat};

pub struct LayerWeights<B: Backend> {
    pub attn_norm: B::Vector,
    pub wq: B::Matrix,
    pub wk: B::Matrix,
    pub wv: B::Matrix,
    pub wo: B::Matrix,
    /// Biases of the q, k and v projections (Qwen2).
    pub bq: Option<B::Vector>,
    pub bk: Option<B::Vector>,
    pub bv: Option<B::Vector>,
    /// Per-head RMSNorm gains of q and k, before the rotation (Qwen3, Gemma 3).
    pub q_norm: Option<B::Vector>,
    pub k_norm: Option<B::Vector>,
    /// RMSNorm of the attention's output before the residual add (Gemma 3).
    pub post_attn_norm: Option<B::Vector>,
    pub ffn_norm: B::Vector,
    pub ffn_gate: B::Matrix,
    pub ffn_up: B::Matrix,
    pub ffn_down: B::Matrix,
    /// RMSNorm of the feed-forward's output before the residual add (Gemma 3).
    pub post_ffn_norm: Option<B::Vector>,
}

pub struct Weights<B: Backend> {
    pub config: ModelConfig,
    pub token_embd: B::Matrix,
    pub output_norm: B::Vector,
    /// `None` when the model ties its output projection to the embedding table.
    pub output: Option<B::Matrix>,
    pub layers: Vec<LayerWeights<B>>,
}

impl<B: Backend> Weights<B> {
    pub fn output(&self) -> &B::Matrix {
        self.output.as_ref().unwrap_or(&self.token_embd)
    }

    /// Every matrix, the embedding table included.
    pub fn matrices(&self) -> impl Iterator<Item = &B::Matrix> {
        let layers = self.layers.iter().flat_map(|l| {
            [&l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_gate, &l.ffn_up, &l.ffn_down]
        });
        [&self.token_embd].into_iter().chain(&self.output).chain(layers)
    }

    /// Loads every tensor from `source`, reading the file front to back in pieces: the same
    /// streaming path the browser feeds with downloaded or cached chunks. `on_bytes` hears how
    /// many bytes each piece held.
    pub fn load(
        backend: &mut B,
        file: &GgufFile,
        source: &mut dyn ByteSource,
        config: ModelConfig,
        on_bytes: &mut dyn FnMut(u64),
    ) -> Result<Self, ModelError> {
        let mut stream = WeightStream::new(backend, file, config)?;
        let (mut at, end) = stream.range();
        let mut piece = vec![0u8; READ_PIECE.min((end - at) as usize)];
        while at < end {
            let len = piece.len().min((end - at) as usize);
            source.read_at(at, &mut piece[..len])?;
            stream.push(backend, at, &piece[..len])?;
            on_bytes(len as u64);
            at += len as u64;
        }
        stream.finish()
    }
}

/// One tensor of the file, or one row range of a fused one, and the slot it fills.
struct Piece {
    layer: Option<usize>,
    slot: Slot,
    /// The piece's own name, shape, offset and size.
    info: TensorInfo,
}

/// The shape a slot's tensor has in a file: `[cols, rows]` for a matrix, `[len]` for a vector.
fn slot_dims(slot: Slot, c: &ModelConfig) -> Vec<u64> {
    let matrix = |rows: usize, cols: usize| vec![cols as u64, rows as u64];
    match slot {
        Slot::TokenEmbd | Slot::Output => matrix(c.vocab_size, c.width),
        Slot::Wq => matrix(c.q_width(), c.width),
        Slot::Wk | Slot::Wv => matrix(c.kv_width(), c.width),
        Slot::Wo => matrix(c.width, c.q_width()),
        Slot::Gate | Slot::Up => matrix(c.ffn_width, c.width),
        Slot::Down => matrix(c.width, c.ffn_width),
        Slot::OutputNorm | Slot::AttnNorm | Slot::FfnNorm | Slot::PostAttnNorm | Slot::PostFfnNorm => vec![c.width as u64],
        Slot::Bq => vec![c.q_width() as u64],
        Slot::Bk | Slot::Bv => vec![c.kv_width() as u64],
        Slot::QNorm | Slot::KNorm => vec![c.head_dim as u64],
        Slot::RopeFactors | Slot::RopeFactorsLong => vec![(c.rope_dim / 2) as u64],
    }
}

/// Every tensor of the file placed in the slot the architecture's table gives it, fused ones
/// split into their row ranges. A tensor the table does not name, or a required one the file
/// lacks, refuses the file: running without a tensor the model was trained with, or
/// ignoring one it has, gives fluent nonsense rather than an error.
fn place(c: &ModelConfig, file: &GgufFile) -> Result<Vec<Piece>, ModelError> {
    let arch = c.arch;
    let unexpected = |name: &str| ModelError::UnexpectedTensor { name: name.to_string(), arch: arch.name };
    let mut seen = std::collections::HashSet::new();
    let mut pieces = Vec::new();
    for info in &file.tensors {
        let (layer, spec) = match info.name.strip_prefix("blk.").and_then(|rest| rest.split_once('.')) {
            Some((i, rest)) => {
                let i: usize = i.parse().map_err(|_| unexpected(&info.name))?;
                let spec = arch.layer_tensor(rest).filter(|_| i < c.n_layers).ok_or_else(|| unexpected(&info.name))?;
                (Some(i), spec)
            }
            None => (None, arch.global(&info.name).ok_or_else(|| unexpected(&info.name))?),
        };
        seen.insert((layer, spec.name));
        let parts: Vec<Vec<u64>> = spec.slots.iter().map(|&slot| slot_dims(slot, c)).collect();
        let mut expected = parts[0].clone();
        if let [_, rows] = expected.as_mut_slice() {
            *rows = parts.iter().map(|d| d[1]).sum();
        }
        if info.dims != expected {
            return Err(ModelError::TensorShape { name: info.name.clone(), expected, found: info.dims.clone() });
        }
        let format = info
            .ggml_type
            .format()
            .ok_or_else(|| ModelError::UnsupportedTensorType { name: info.name.clone(), ty: info.ggml_type })?;
        if let [slot] = *spec.slots {
            pieces.push(Piece { layer, slot, info: info.clone() });
            continue;
        }
        // A fused matrix: its rows are whole blocks, so each part is a byte range of it.
        let cols = info.dims[0] as usize;
        if cols % format.block_elems() != 0 {
            return Err(ModelError::BadConfig(format!("tensor {}: rows of {cols} values are not whole {format} blocks", info.name)));
        }
        let row_bytes = (cols / format.block_elems() * format.block_bytes()) as u64;
        if row_bytes * expected[1] != info.n_bytes {
            return Err(ModelError::BadConfig(format!("tensor {}: {} bytes for its shape", info.name, info.n_bytes)));
        }
        let mut offset = info.offset;
        for (&slot, dims) in spec.slots.iter().zip(parts) {
            let n_bytes = row_bytes * dims[1];
            pieces.push(Piece { layer, slot, info: TensorInfo { dims, offset, n_bytes, ..info.clone() } });
            offset += n_bytes;
        }
    }
    let missing = |name: String| ModelError::MissingTensor { name, arch: arch.name };
    if let Some(spec) = arch.globals.iter().find(|s| s.required && !seen.contains(&(None, s.name))) {
        return Err(missing(spec.name.to_string()));
    }
    for i in 0..c.n_layers {
        if let Some(spec) = arch.layer.iter().find(|s| s.required && !seen.contains(&(Some(i), s.name))) {
            return Err(missing(format!("blk.{i}.{}", spec.name)));
        }
    }
    Ok(pieces)
}

enum Content<B: Backend> {
    Matrix(B::Matrix),
    /// 1-D tensors are small: their bytes are gathered, then converted to f32 once complete.
    Gather(QuantFormat, Vec<u8>),
    Vector(B::Vector),
    Host(Vec<f32>),
}

struct Part<B: Backend> {
    layer: Option<usize>,
    slot: Slot,
    info: TensorInfo,
    content: Content<B>,
    /// Bytes handed to the backend so far (a multiple of 4 until the tensor is complete).
    written: u64,
    /// Bytes received after `written`, fewer than 4, waiting to complete a word.
    carry: Vec<u8>,
}

/// Loads a model's weights from its bytes as they arrive, in file order and in chunks of any
/// size: from a file natively, from the network or IndexedDB in the browser. Each tensor's GPU
/// buffers exist from the start and are filled as its bytes come in, so no more of the file
/// than one chunk is ever held in memory.
pub struct WeightStream<B: Backend> {
    config: ModelConfig,
    /// By file offset.
    parts: Vec<Part<B>>,
    /// The first part not yet complete.
    next: usize,
    /// File offset of the next byte expected.
    cursor: u64,
}

impl<B: Backend> WeightStream<B> {
    /// Checks every tensor of the file against the architecture (used, present, shape,
    /// supported type) and allocates it.
    pub fn new(backend: &mut B, file: &GgufFile, config: ModelConfig) -> Result<Self, ModelError> {
        let mut parts = Vec::new();
        for Piece { layer, slot, info } in place(&config, file)? {
            let format = info.ggml_type.format().expect("place checked the type");
            let content = match slot.holder() {
                Holder::Matrix => Content::Matrix(backend.alloc_matrix(&info, format)?),
                Holder::Vector | Holder::Host => Content::Gather(format, Vec::with_capacity(info.n_bytes as usize)),
            };
            parts.push(Part { layer, slot, info, content, written: 0, carry: Vec::new() });
        }
        parts.sort_by_key(|p| p.info.offset);
        for pair in parts.windows(2) {
            if pair[0].info.offset + pair[0].info.n_bytes > pair[1].info.offset {
                return Err(ModelError::BadConfig(format!("tensors {} and {} overlap", pair[0].info.name, pair[1].info.name)));
            }
        }
        let cursor = parts.first().map_or(0, |p| p.info.offset);
        Ok(Self { config, parts, next: 0, cursor })
    }

    /// The file range `[start, end)` that holds every needed tensor.
    pub fn range(&self) -> (u64, u64) {
        let end = self.parts.last().map_or(0, |p| p.info.offset + p.info.n_bytes);
        (self.cursor.min(end), end)
    }

    /// The file's bytes at `offset..offset + bytes.len()`. Chunks come in file order; a chunk
    /// may repeat bytes already seen, but may not skip any.
    pub fn push(&mut self, backend: &mut B, offset: u64, bytes: &[u8]) -> Result<(), ModelError> {
        if offset > self.cursor {
            return Err(ModelError::BadConfig(format!(
                "model bytes out of order: got offset {offset}, expected {}",
                self.cursor
            )));
        }
        let end = offset + bytes.len() as u64;
        if end <= self.cursor {
            return Ok(());
        }
        let chunk_start = self.cursor;
        let chunk = &bytes[(chunk_start - offset) as usize..];
        while let Some(part) = self.parts.get_mut(self.next) {
            let (p_start, p_end) = (part.info.offset, part.info.offset + part.info.n_bytes);
            if p_start >= end {
                break;
            }
            let (s, e) = (p_start.max(chunk_start), p_end.min(end));
            if s < e {
                part.feed(backend, &chunk[(s - chunk_start) as usize..(e - chunk_start) as usize])?;
            }
            if e < p_end {
                break;
            }
            self.next += 1;
        }
        self.cursor = end;
        Ok(())
    }

    /// Bytes of tensor data still expected.
    pub fn remaining(&self) -> u64 {
        self.range().1 - self.cursor.min(self.range().1)
    }

    /// The weights, once every tensor is complete.
    pub fn finish(self) -> Result<Weights<B>, ModelError> {
        if let Some(part) = self.parts.get(self.next) {
            return Err(ModelError::Incomplete(part.info.name.clone()));
        }
        let mut config = self.config;
        let mut by_slot: HashMap<(Option<usize>, Slot), Content<B>> =
            self.parts.into_iter().map(|p| ((p.layer, p.slot), p.content)).collect();
        // `place` has checked that every required slot is filled, so only optional ones are
        // ever absent below.
        let mut matrix = |layer, slot| match by_slot.remove(&(layer, slot)) {
            Some(Content::Matrix(m)) => Some(m),
            _ => None,
        };
        let token_embd = matrix(None, Slot::TokenEmbd).expect("required");
        let output = matrix(None, Slot::Output);
        let mut layer_matrices = Vec::with_capacity(config.n_layers);
        for i in (0..config.n_layers).map(Some) {
            let [wq, wk, wv, wo, gate, up, down] =
                [Slot::Wq, Slot::Wk, Slot::Wv, Slot::Wo, Slot::Gate, Slot::Up, Slot::Down].map(|s| matrix(i, s).expect("required"));
            layer_matrices.push((wq, wk, wv, wo, gate, up, down));
        }
        let mut vector = |layer, slot| match by_slot.remove(&(layer, slot)) {
            Some(Content::Vector(v)) => Some(v),
            _ => None,
        };
        let output_norm = vector(None, Slot::OutputNorm).expect("required");
        let layers = layer_matrices
            .into_iter()
            .enumerate()
            .map(|(i, (wq, wk, wv, wo, ffn_gate, ffn_up, ffn_down))| {
                let mut v = |slot| vector(Some(i), slot);
                LayerWeights {
                    attn_norm: v(Slot::AttnNorm).expect("required"),
                    wq,
                    wk,
                    wv,
                    wo,
                    bq: v(Slot::Bq),
                    bk: v(Slot::Bk),
                    bv: v(Slot::Bv),
                    q_norm: v(Slot::QNorm),
                    k_norm: v(Slot::KNorm),
                    post_attn_norm: v(Slot::PostAttnNorm),
                    ffn_norm: v(Slot::FfnNorm).expect("required"),
                    ffn_gate,
                    ffn_up,
                    ffn_down,
                    post_ffn_norm: v(Slot::PostFfnNorm),
                }
            })
            .collect();
        let mut host = |slot| match by_slot.remove(&(None, slot)) {
            Some(Content::Host(values)) => Some(values),
            _ => None,
        };
        config.rope_factors = host(Slot::RopeFactors);
        config.rope_factors_long = host(Slot::RopeFactorsLong);
        Ok(Weights { config, token_embd, output_norm, output, layers })
    }
}

impl<B: Backend> Part<B> {
    /// Takes the tensor's next bytes.
    fn feed(&mut self, backend: &mut B, mut bytes: &[u8]) -> Result<(), ModelError> {
        let n_bytes = self.info.n_bytes;
        match &mut self.content {
            Content::Gather(format, gathered) => {
                gathered.extend_from_slice(bytes);
                if gathered.len() as u64 == n_bytes {
                    let values = dequantize_to_vec(*format, gathered, self.info.n_elems() as usize)?;
                    self.content = match self.slot.holder() {
                        Holder::Host => Content::Host(values),
                        _ => Content::Vector(backend.vector(&self.info.name, &values)?),
                    };
                }
            }
            Content::Matrix(m) => {
                // Complete a word left over from the previous chunk first.
                if !self.carry.is_empty() {
                    let take = (4 - self.carry.len()).min(bytes.len());
                    self.carry.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    let at_end = self.written + self.carry.len() as u64 == n_bytes;
                    if self.carry.len() == 4 || at_end {
                        backend.write_matrix(m, self.written, &self.carry);
                        self.written += self.carry.len() as u64;
                        self.carry.clear();
                    }
                }
                let at_end = self.written + bytes.len() as u64 == n_bytes;
                let whole = if at_end { bytes.len() } else { bytes.len() - bytes.len() % 4 };
                if whole > 0 {
                    backend.write_matrix(m, self.written, &bytes[..whole]);
                    self.written += whole as u64;
                }
                self.carry.extend_from_slice(&bytes[whole..]);
                if self.written == n_bytes {
                    backend.finish_matrix(m)?;
                }
            }
            Content::Vector(_) | Content::Host(_) => {}
        }
        Ok(())
    }
}
