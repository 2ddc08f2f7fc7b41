use super::{Backend, ModelConfig, ModelError};
use crate::gguf::{ByteSource, GgufFile};
use crate::quant::QuantFormat;

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

    /// Loads every tensor the config calls for, checking names, shapes and types first.
    pub fn load(
        backend: &mut B,
        file: &GgufFile,
        source: &mut dyn ByteSource,
        config: ModelConfig,
        on_tensor: &mut dyn FnMut(u64),
    ) -> Result<Self, ModelError> {
        let c = &config;
        let mut loader = Loader { backend, file, source, on_tensor };
        let token_embd = loader.matrix("token_embd.weight", c.vocab_size, c.width)?;
        let output_norm = loader.vector("output_norm.weight", c.width)?;
        let output = match file.tensor("output.weight") {
            Some(_) => Some(loader.matrix("output.weight", c.vocab_size, c.width)?),
            None => None,
        };
        let mut layers = Vec::with_capacity(c.n_layers);
        for i in 0..c.n_layers {
            let name = |t: &str| format!("blk.{i}.{t}.weight");
            layers.push(LayerWeights {
                attn_norm: loader.vector(&name("attn_norm"), c.width)?,
                wq: loader.matrix(&name("attn_q"), c.q_width(), c.width)?,
                wk: loader.matrix(&name("attn_k"), c.kv_width(), c.width)?,
                wv: loader.matrix(&name("attn_v"), c.kv_width(), c.width)?,
                wo: loader.matrix(&name("attn_output"), c.width, c.q_width())?,
                ffn_norm: loader.vector(&name("ffn_norm"), c.width)?,
                ffn_gate: loader.matrix(&name("ffn_gate"), c.ffn_width, c.width)?,
                ffn_up: loader.matrix(&name("ffn_up"), c.ffn_width, c.width)?,
                ffn_down: loader.matrix(&name("ffn_down"), c.width, c.ffn_width)?,
            });
        }
        Ok(Self { config, token_embd, output_norm, output, layers })
    }
}

/// Checks every tensor against the config before handing it to the backend, so a wrong file is
/// refused with the tensor's name rather than failing inside a kernel.
struct Loader<'a, B: Backend> {
    backend: &'a mut B,
    file: &'a GgufFile,
    source: &'a mut dyn ByteSource,
    on_tensor: &'a mut dyn FnMut(u64),
}

impl<B: Backend> Loader<'_, B> {
    fn checked(&self, name: &str, dims: &[u64]) -> Result<(crate::gguf::TensorInfo, QuantFormat), ModelError> {
        let info = self.file.tensor(name).ok_or_else(|| ModelError::MissingTensor(name.to_string()))?;
        if info.dims != dims {
            return Err(ModelError::TensorShape { name: name.to_string(), expected: dims.to_vec(), found: info.dims.clone() });
        }
        let format = info
            .ggml_type
            .format()
            .ok_or_else(|| ModelError::UnsupportedTensorType { name: name.to_string(), ty: info.ggml_type })?;
        Ok((info.clone(), format))
    }

    fn matrix(&mut self, name: &str, rows: usize, cols: usize) -> Result<B::Matrix, ModelError> {
        let (info, format) = self.checked(name, &[cols as u64, rows as u64])?;
        let m = self.backend.load_matrix(&info, format, self.source)?;
        (self.on_tensor)(info.n_bytes);
        Ok(m)
    }

    fn vector(&mut self, name: &str, len: usize) -> Result<B::Vector, ModelError> {
        let (info, format) = self.checked(name, &[len as u64])?;
        let v = self.backend.load_vector(&info, format, self.source)?;
        (self.on_tensor)(info.n_bytes);
        Ok(v)
    }
}
