use super::arch::Architecture;
use super::ModelError;
use crate::gguf::GgufFile;

/// Hyperparameters of one model, read from its GGUF metadata.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub arch: &'static Architecture,
    pub n_layers: usize,
    pub width: usize,
    pub ffn_width: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    /// Dimensions of each head that rotate (the rest pass through).
    pub rope_dim: usize,
    pub rope_base: f32,
    pub norm_eps: f32,
    pub vocab_size: usize,
    /// The context the model was trained for; the engine may run a shorter one.
    pub train_context: usize,
}

impl ModelConfig {
    pub fn from_gguf(file: &GgufFile) -> Result<Self, ModelError> {
        let name = file.architecture()?;
        let arch = Architecture::find(name).ok_or_else(|| ModelError::UnsupportedArchitecture {
            name: name.to_string(),
            supported: Architecture::supported_names().join(", "),
        })?;
        let key = |k: &str| format!("{}.{k}", arch.name);
        let width = file.usize(&key("embedding_length"))?;
        let n_heads = file.usize(&key("attention.head_count"))?;
        let n_kv_heads = match file.get(&key("attention.head_count_kv")) {
            Some(_) => file.usize(&key("attention.head_count_kv"))?,
            None => n_heads,
        };
        let head_dim = match file.get(&key("attention.key_length")) {
            Some(_) => file.usize(&key("attention.key_length"))?,
            None if n_heads > 0 => width / n_heads,
            None => 0,
        };
        let vocab_size = match file.get(&key("vocab_size")) {
            Some(_) => file.usize(&key("vocab_size"))?,
            None => file.array("tokenizer.ggml.tokens")?.len(),
        };
        let config = ModelConfig {
            arch,
            n_layers: file.usize(&key("block_count"))?,
            width,
            ffn_width: file.usize(&key("feed_forward_length"))?,
            n_heads,
            n_kv_heads,
            head_dim,
            rope_dim: match file.get(&key("rope.dimension_count")) {
                Some(_) => file.usize(&key("rope.dimension_count"))?,
                None => head_dim,
            },
            rope_base: match file.get(&key("rope.freq_base")) {
                Some(_) => file.f32(&key("rope.freq_base"))?,
                None => 10_000.0,
            },
            norm_eps: file.f32(&key("attention.layer_norm_rms_epsilon"))?,
            vocab_size,
            train_context: file.usize(&key("context_length"))?,
        };
        config.validate()?;
        Ok(config)
    }

    /// Shapes the kernels rely on; a file that breaks them is refused at load, not mid-forward.
    fn validate(&self) -> Result<(), ModelError> {
        let bad = |why: String| Err(ModelError::BadConfig(why));
        if self.n_heads == 0 || self.n_kv_heads == 0 || self.n_heads % self.n_kv_heads != 0 {
            return bad(format!("{} heads cannot share {} KV heads", self.n_heads, self.n_kv_heads));
        }
        if self.head_dim == 0 || self.head_dim > 256 || self.head_dim % 4 != 0 {
            return bad(format!("head size {} (supported: multiples of 4 up to 256)", self.head_dim));
        }
        if self.rope_dim > self.head_dim || self.rope_dim % 2 != 0 {
            return bad(format!("rotary dimension {} for head size {}", self.rope_dim, self.head_dim));
        }
        if self.width % 4 != 0 || self.ffn_width % 4 != 0 {
            return bad(format!("widths {} and {} must be multiples of 4", self.width, self.ffn_width));
        }
        if self.n_layers == 0 || self.vocab_size == 0 {
            return bad("no layers or no vocabulary".to_string());
        }
        Ok(())
    }

    pub fn q_width(&self) -> usize {
        self.n_heads * self.head_dim
    }

    pub fn kv_width(&self) -> usize {
        self.n_kv_heads * self.head_dim
    }

    /// Bytes of one layer's keys (or values) for `context` positions, in f32.
    pub fn kv_layer_bytes(&self, context: usize) -> u64 {
        (context * self.kv_width() * 4) as u64
    }
}
