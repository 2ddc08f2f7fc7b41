use std::collections::HashMap;

use super::{Backend, ModelConfig, ModelError, READ_PIECE};
use crate::gguf::{ByteSource, GgufFile, TensorInfo};
use crate::quant::{dequantize_to_vec, QuantFormat};

pub struct LayerWeights<B: Backend> {
    pub attn_norm: B::Vector,
    pub wq: B::Matrix,
    pub wk: B::Matrix,
    pub wv: B::Matrix,
    pub wo: B::Matrix,
    pub ffn_norm: B::Vector,
    pub ffn_gate: B::Matrix,
    pub ffn_up: B::Matrix,
    pub ffn_down: B::Matrix,
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

/// The tensors a config calls for, as (name, rows, columns); rows = 0 marks a 1-D tensor.
fn wanted(config: &ModelConfig, file: &GgufFile) -> Vec<(String, usize, usize)> {
    let c = config;
    let mut v = vec![
        ("token_embd.weight".to_string(), c.vocab_size, c.width),
        ("output_norm.weight".to_string(), 0, c.width),
    ];
    if file.tensor("output.weight").is_some() {
        v.push(("output.weight".to_string(), c.vocab_size, c.width));
    }
    for i in 0..c.n_layers {
        let name = |t: &str| format!("blk.{i}.{t}.weight");
        v.extend([
            (name("attn_norm"), 0, c.width),
            (name("attn_q"), c.q_width(), c.width),
            (name("attn_k"), c.kv_width(), c.width),
            (name("attn_v"), c.kv_width(), c.width),
            (name("attn_output"), c.width, c.q_width()),
            (name("ffn_norm"), 0, c.width),
            (name("ffn_gate"), c.ffn_width, c.width),
            (name("ffn_up"), c.ffn_width, c.width),
            (name("ffn_down"), c.width, c.ffn_width),
        ]);
    }
    v
}

enum Content<B: Backend> {
    Matrix(B::Matrix),
    /// 1-D tensors are small: their bytes are gathered, then converted to f32 once complete.
    Vector(QuantFormat, Vec<u8>),
    Done(B::Vector),
}

struct Part<B: Backend> {
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
    /// Checks every tensor the config needs (present, shape, supported type) and allocates it.
    pub fn new(backend: &mut B, file: &GgufFile, config: ModelConfig) -> Result<Self, ModelError> {
        let mut parts = Vec::new();
        for (name, rows, cols) in wanted(&config, file) {
            let info = file.tensor(&name).ok_or_else(|| ModelError::MissingTensor(name.clone()))?;
            let dims: Vec<u64> = if rows == 0 { vec![cols as u64] } else { vec![cols as u64, rows as u64] };
            if info.dims != dims {
                return Err(ModelError::TensorShape { name, expected: dims, found: info.dims.clone() });
            }
            let format = info
                .ggml_type
                .format()
                .ok_or_else(|| ModelError::UnsupportedTensorType { name: name.clone(), ty: info.ggml_type })?;
            let content = if rows == 0 {
                Content::Vector(format, Vec::with_capacity(info.n_bytes as usize))
            } else {
                Content::Matrix(backend.alloc_matrix(info, format)?)
            };
            parts.push(Part { info: info.clone(), content, written: 0, carry: Vec::new() });
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
        let mut by_name: HashMap<String, Content<B>> =
            self.parts.into_iter().map(|p| (p.info.name, p.content)).collect();
        let has_output = by_name.contains_key("output.weight");
        let mut matrix = |name: &str| match by_name.remove(name) {
            Some(Content::Matrix(m)) => m,
            _ => unreachable!("{name} was allocated as a matrix"),
        };
        let token_embd = matrix("token_embd.weight");
        let output = has_output.then(|| matrix("output.weight"));
        let mut layers_m = Vec::with_capacity(self.config.n_layers);
        for i in 0..self.config.n_layers {
            let name = |t: &str| format!("blk.{i}.{t}.weight");
            layers_m.push([
                matrix(&name("attn_q")),
                matrix(&name("attn_k")),
                matrix(&name("attn_v")),
                matrix(&name("attn_output")),
                matrix(&name("ffn_gate")),
                matrix(&name("ffn_up")),
                matrix(&name("ffn_down")),
            ]);
        }
        let mut vector = |name: &str| match by_name.remove(name) {
            Some(Content::Done(v)) => v,
            _ => unreachable!("{name} was completed as a vector"),
        };
        let output_norm = vector("output_norm.weight");
        let layers = layers_m
            .into_iter()
            .enumerate()
            .map(|(i, [wq, wk, wv, wo, ffn_gate, ffn_up, ffn_down])| LayerWeights {
                attn_norm: vector(&format!("blk.{i}.attn_norm.weight")),
                ffn_norm: vector(&format!("blk.{i}.ffn_norm.weight")),
                wq,
                wk,
                wv,
                wo,
                ffn_gate,
                ffn_up,
                ffn_down,
            })
            .collect();
        Ok(Weights { config: self.config, token_embd, output_norm, output, layers })
    }
}

impl<B: Backend> Part<B> {
    /// Takes the tensor's next bytes.
    fn feed(&mut self, backend: &mut B, mut bytes: &[u8]) -> Result<(), ModelError> {
        let n_bytes = self.info.n_bytes;
        match &mut self.content {
            Content::Vector(format, gathered) => {
                gathered.extend_from_slice(bytes);
                if gathered.len() as u64 == n_bytes {
                    let values = dequantize_to_vec(*format, gathered, self.info.n_elems() as usize)?;
                    self.content = Content::Done(backend.vector(&self.info.name, &values)?);
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
            Content::Done(_) => {}
        }
        Ok(())
    }
}
