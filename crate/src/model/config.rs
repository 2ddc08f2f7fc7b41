use std::collections::BTreeSet;

use super::arch::Architecture;
use super::ModelError;
use crate::gguf::GgufFile;

/// Most positions a context may have: the GPU kernels take positions as u32.
const MAX_CONTEXT: usize = u32::MAX as usize;

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
    /// Linear rotary scaling: positions are multiplied by this (1 / the file's factor).
    pub rope_scale: f32,
    /// Per-frequency divisors, filled in when the weights load: Llama 3's `rope_freqs.weight`,
    /// Phi-3's `rope_factors_short.weight`.
    pub rope_factors: Option<Vec<f32>>,
    /// Phi-3's `rope_factors_long.weight`, for contexts past `rope_original_context`.
    pub rope_factors_long: Option<Vec<f32>>,
    pub rope_original_context: usize,
    /// LongRoPE's attention factor (`rope.scaling.attn_factor`), else 1.
    pub rope_mscale: f32,
    /// Multiplies attention scores: 1 / sqrt(head size) unless the model says otherwise.
    pub attn_scale: f32,
    /// Keys a sliding layer's query sees, itself included (Gemma 3).
    pub sliding_window: Option<usize>,
    /// Multiplies the embeddings: sqrt(width) for Gemma, else 1.
    pub embed_scale: f32,
}

/// How one layer attends: which rotary table it uses and how far back it looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerAttention {
    pub layer: usize,
    /// Index into `rope::rope_tables`: 0 the global table, 1 the sliding layers'.
    pub table: usize,
    /// Keys a query sees, itself included; `None` for all of them.
    pub window: Option<usize>,
}

impl LayerAttention {
    /// The first key position a query at `pos` sees.
    pub fn first_key(&self, pos: usize) -> usize {
        self.window.map_or(0, |w| (pos + 1).saturating_sub(w))
    }
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
        let (vocab_key, vocab_size) = match file.get(&key("vocab_size")) {
            Some(_) => (key("vocab_size"), file.usize(&key("vocab_size"))?),
            None => ("tokenizer.ggml.tokens".to_string(), file.array("tokenizer.ggml.tokens")?.len()),
        };
        let rope_scale = match file.get(&key("rope.scaling.type")) {
            None => 1.0,
            Some(_) => match file.str(&key("rope.scaling.type"))? {
                "none" => 1.0,
                "linear" => match file.get(&key("rope.scaling.factor")) {
                    Some(_) => 1.0 / file.f32(&key("rope.scaling.factor"))?,
                    None => 1.0,
                },
                other => {
                    return Err(ModelError::BadConfig(format!(
                        "rotary scaling {other:?} is not supported (supported: none, linear)"
                    )))
                }
            },
        };
        let sliding_window = match (arch.sliding, file.get(&key("attention.sliding_window"))) {
            (Some(_), Some(_)) => Some(file.usize(&key("attention.sliding_window"))?),
            (Some(_), None) => return Err(ModelError::BadConfig(format!("{} needs {}", arch.name, key("attention.sliding_window")))),
            (None, _) => None,
        };
        let n_layers = file.usize(&key("block_count"))?;
        // Gemma 3 scales queries by 1/sqrt(query_pre_attn_scalar): the head size, except in
        // the 27B (62 layers), where it is width / heads, as llama.cpp's gemma3 has it.
        let attn_scale = if arch.name == "gemma3" && n_layers == 62 && n_heads > 0 {
            1.0 / ((width / n_heads) as f32).sqrt()
        } else {
            1.0 / (head_dim.max(1) as f32).sqrt()
        };
        let config = ModelConfig {
            arch,
            n_layers,
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
            rope_scale,
            rope_factors: None,
            rope_factors_long: None,
            rope_original_context: match file.get(&key("rope.scaling.original_context_length")) {
                Some(_) => file.usize(&key("rope.scaling.original_context_length"))?,
                None => usize::MAX,
            },
            rope_mscale: match file.get(&key("rope.scaling.attn_factor")) {
                Some(_) => file.f32(&key("rope.scaling.attn_factor"))?,
                None => 1.0,
            },
            attn_scale,
            sliding_window,
            embed_scale: if arch.scale_embeddings { (width as f32).sqrt() } else { 1.0 },
        };
        config.check_against_tensors(file, &key, &vocab_key)?;
        config.validate()?;
        Ok(config)
    }

    /// The header's sizes, against its tensors, before anything is sized by them: the embedding
    /// table's shape is the width and the vocabulary, no other width exceeds every tensor's
    /// dimensions, and there are as many layers as `blk.N` tensors say.
    fn check_against_tensors(&self, file: &GgufFile, key: impl Fn(&str) -> String, vocab_key: &str) -> Result<(), ModelError> {
        let bad = |why: String| Err(ModelError::BadConfig(why));
        let width = format!("{} = {}", key("embedding_length"), self.width);
        let vocab = format!("{vocab_key} = {}", self.vocab_size);
        if let Some(table) = file.tensor("token_embd.weight") {
            if table.dims != [self.width as u64, self.vocab_size as u64] {
                return bad(format!("{width} and {vocab} do not match the embedding table token_embd.weight, {:?}", table.dims));
            }
        }
        let widest = file.tensors.iter().flat_map(|t| t.dims.iter().copied()).max().unwrap_or(0);
        let (heads, kv_heads, head_dim) = (self.n_heads, self.n_kv_heads, self.head_dim);
        let widths = [
            (width, Some(self.width)),
            (vocab, Some(self.vocab_size)),
            (format!("{} = {}", key("feed_forward_length"), self.ffn_width), Some(self.ffn_width)),
            (format!("{} = {heads} heads of {head_dim}", key("attention.head_count")), heads.checked_mul(head_dim)),
            (format!("{} = {kv_heads} heads of {head_dim}", key("attention.head_count_kv")), kv_heads.checked_mul(head_dim)),
        ];
        for (named, size) in widths {
            if size.is_none_or(|size| size as u64 > widest) {
                return bad(format!("{named}: wider than any tensor of the file (its largest dimension is {widest})"));
            }
        }
        if self.train_context > MAX_CONTEXT {
            let context = format!("{} = {}", key("context_length"), self.train_context);
            return bad(format!("{context}: more positions than Torchlight can address ({MAX_CONTEXT})"));
        }
        self.check_layers(file, &key("block_count"))
    }

    /// The layer count must be the number of layers the tensor table has, `blk.0` to
    /// `blk.{n - 1}`: loops and caches are sized by it.
    fn check_layers(&self, file: &GgufFile, key: &str) -> Result<(), ModelError> {
        let layers: BTreeSet<usize> = file
            .tensors
            .iter()
            .filter_map(|t| t.name.strip_prefix("blk.")?.split_once('.')?.0.parse().ok())
            .collect();
        let consecutive = layers.last().is_none_or(|&last| last + 1 == layers.len());
        if consecutive && layers.len() == self.n_layers {
            return Ok(());
        }
        let found = match (layers.first(), layers.last()) {
            (Some(first), Some(last)) => format!("{} layers, blk.{first} to blk.{last}", layers.len()),
            _ => "no layers".to_string(),
        };
        Err(ModelError::BadConfig(format!("{key} is {}, but the file's tensors are for {found}", self.n_layers)))
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
        if self.sliding_window == Some(0) {
            return bad("a sliding window of 0 keys".to_string());
        }
        if self.n_layers == 0 || self.vocab_size == 0 {
            return bad("no layers or no vocabulary".to_string());
        }
        Ok(())
    }

    /// How layer `i` attends.
    pub fn layer_attention(&self, i: usize) -> LayerAttention {
        match self.arch.sliding {
            Some(s) if (i + 1) % s.every != 0 => LayerAttention { layer: i, table: 1, window: self.sliding_window },
            _ => LayerAttention { layer: i, table: 0, window: None },
        }
    }

    pub fn q_width(&self) -> usize {
        self.n_heads * self.head_dim
    }

    pub fn kv_width(&self) -> usize {
        self.n_kv_heads * self.head_dim
    }

    /// Values in one layer's keys (or values) for `context` positions; an error when their
    /// bytes would not fit the address space.
    pub fn kv_layer_len(&self, context: usize) -> Result<usize, ModelError> {
        context.checked_mul(self.kv_width()).filter(|n| n.checked_mul(4).is_some()).ok_or_else(|| {
            ModelError::BadConfig(format!("a KV cache of {context} positions of {} values is too large", self.kv_width()))
        })
    }

    /// Bytes of one layer's keys (or values) for `context` positions, in f32.
    pub fn kv_layer_bytes(&self, context: usize) -> Result<u64, ModelError> {
        Ok(self.kv_layer_len(context)? as u64 * 4)
    }
}
