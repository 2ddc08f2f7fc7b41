//! What differs between architectures that GGUF files call by different names. A new
//! architecture is a new row here (and, where its math differs, a new step in `forward`), not a
//! new model implementation.

/// How rotary embeddings pair the elements of a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeOrder {
    /// Adjacent pairs (2i, 2i+1): llama.cpp's "normal" mode, which llama-family GGUFs expect
    /// because their converter permuted the q/k weights for it.
    Normal,
    /// Halves (i, i + d/2): GPT-NeoX ordering, used by qwen2/qwen3/gemma3/phi3.
    Neox,
}

/// The gated feed-forward's activation: `act(gate) * up`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activation {
    /// SwiGLU (Llama, Qwen, Phi).
    Silu,
    /// GeGLU with GELU's tanh approximation (Gemma).
    GeluTanh,
}

/// Sliding-window attention on most layers, global attention on every `every`th.
#[derive(Debug, Clone, Copy)]
pub struct Sliding {
    pub every: usize,
    /// The rotary base of the sliding layers (the global ones use the file's).
    pub rope_base: f32,
}

/// Where a tensor's data goes in `Weights`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    TokenEmbd,
    OutputNorm,
    Output,
    /// Per-frequency rotary divisors (Llama 3's, Phi-3's short ones): read to the host, into
    /// the rope tables.
    RopeFactors,
    /// Phi-3's LongRoPE divisors for contexts past the original one.
    RopeFactorsLong,
    AttnNorm,
    Wq,
    Wk,
    Wv,
    Wo,
    Bq,
    Bk,
    Bv,
    QNorm,
    KNorm,
    PostAttnNorm,
    FfnNorm,
    Gate,
    Up,
    Down,
    PostFfnNorm,
}

/// How a slot's data is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// A 2-D weight in its GGUF blocks, on the backend.
    Matrix,
    /// A 1-D f32 weight on the backend (norm gains, biases).
    Vector,
    /// A 1-D f32 tensor the loader keeps on the host.
    Host,
}

impl Slot {
    pub fn holder(self) -> Holder {
        use Slot::*;
        match self {
            TokenEmbd | Output | Wq | Wk | Wv | Wo | Gate | Up | Down => Holder::Matrix,
            RopeFactors | RopeFactorsLong => Holder::Host,
            _ => Holder::Vector,
        }
    }
}

/// One tensor of an architecture: its name (after `blk.N.` for a layer's), the slots its rows
/// fill in order (more than one for a fused tensor, split by rows at load), and whether a file
/// must have it.
#[derive(Debug, Clone, Copy)]
pub struct TensorSpec {
    pub name: &'static str,
    pub slots: &'static [Slot],
    pub required: bool,
}

const fn req(name: &'static str, slots: &'static [Slot]) -> TensorSpec {
    TensorSpec { name, slots, required: true }
}

const fn opt(name: &'static str, slots: &'static [Slot]) -> TensorSpec {
    TensorSpec { name, slots, required: false }
}

#[derive(Debug, Clone, Copy)]
pub struct Architecture {
    /// `general.architecture`, also the prefix of its hyperparameter keys.
    pub name: &'static str,
    pub rope_order: RopeOrder,
    pub activation: Activation,
    /// Embeddings are multiplied by sqrt(width) (Gemma).
    pub scale_embeddings: bool,
    pub sliding: Option<Sliding>,
    /// Tensors outside the layers.
    pub globals: &'static [TensorSpec],
    /// Tensors of every layer.
    pub layer: &'static [TensorSpec],
}

use Slot::*;

const EMBEDDINGS: [TensorSpec; 3] =
    [req("token_embd.weight", &[TokenEmbd]), req("output_norm.weight", &[OutputNorm]), opt("output.weight", &[Output])];

/// The attention and feed-forward tensors every llama-shaped layer has.
const LLAMA_LAYER: [TensorSpec; 9] = [
    req("attn_norm.weight", &[AttnNorm]),
    req("attn_q.weight", &[Wq]),
    req("attn_k.weight", &[Wk]),
    req("attn_v.weight", &[Wv]),
    req("attn_output.weight", &[Wo]),
    req("ffn_norm.weight", &[FfnNorm]),
    req("ffn_gate.weight", &[Gate]),
    req("ffn_up.weight", &[Up]),
    req("ffn_down.weight", &[Down]),
];

const fn with<const A: usize, const B: usize, const N: usize>(a: [TensorSpec; A], b: [TensorSpec; B]) -> [TensorSpec; N] {
    assert!(A + B == N);
    let mut out = [a[0]; N];
    let mut i = 0;
    while i < N {
        out[i] = if i < A { a[i] } else { b[i - A] };
        i += 1;
    }
    out
}

const LLAMA_GLOBALS: [TensorSpec; 4] = with(EMBEDDINGS, [opt("rope_freqs.weight", &[RopeFactors])]);
const PHI3_GLOBALS: [TensorSpec; 5] = with(
    EMBEDDINGS,
    [opt("rope_factors_short.weight", &[RopeFactors]), opt("rope_factors_long.weight", &[RopeFactorsLong])],
);
/// Llama's layer, with the q/k/v biases some llama files and all Qwen2 ones carry.
const LLAMA_LAYERS: [TensorSpec; 12] = with(
    LLAMA_LAYER,
    [opt("attn_q.bias", &[Bq]), opt("attn_k.bias", &[Bk]), opt("attn_v.bias", &[Bv])],
);
const QWEN3_LAYERS: [TensorSpec; 11] =
    with(LLAMA_LAYER, [req("attn_q_norm.weight", &[QNorm]), req("attn_k_norm.weight", &[KNorm])]);
const GEMMA3_LAYERS: [TensorSpec; 13] = with(
    LLAMA_LAYER,
    [
        req("attn_q_norm.weight", &[QNorm]),
        req("attn_k_norm.weight", &[KNorm]),
        req("post_attention_norm.weight", &[PostAttnNorm]),
        req("post_ffw_norm.weight", &[PostFfnNorm]),
    ],
);
/// Phi-3's q, k and v are one matrix, and so are its gate and up (gate first).
const PHI3_LAYERS: [TensorSpec; 6] = [
    req("attn_norm.weight", &[AttnNorm]),
    req("attn_qkv.weight", &[Wq, Wk, Wv]),
    req("attn_output.weight", &[Wo]),
    req("ffn_norm.weight", &[FfnNorm]),
    req("ffn_up.weight", &[Gate, Up]),
    req("ffn_down.weight", &[Down]),
];

/// The architectures Torchlight runs. Mistral, TinyLlama, SmolLM and Llama 2/3 GGUFs all say
/// "llama".
const ARCHITECTURES: &[Architecture] = &[
    Architecture {
        name: "llama",
        rope_order: RopeOrder::Normal,
        activation: Activation::Silu,
        scale_embeddings: false,
        sliding: None,
        globals: &LLAMA_GLOBALS,
        layer: &LLAMA_LAYERS,
    },
    Architecture {
        name: "qwen2",
        rope_order: RopeOrder::Neox,
        activation: Activation::Silu,
        scale_embeddings: false,
        sliding: None,
        globals: &EMBEDDINGS,
        // Qwen2's q/k/v biases are optional in llama.cpp too; Qwen2.5 files all have them.
        layer: &LLAMA_LAYERS,
    },
    Architecture {
        name: "qwen3",
        rope_order: RopeOrder::Neox,
        activation: Activation::Silu,
        scale_embeddings: false,
        sliding: None,
        globals: &EMBEDDINGS,
        layer: &QWEN3_LAYERS,
    },
    Architecture {
        name: "gemma3",
        rope_order: RopeOrder::Neox,
        activation: Activation::GeluTanh,
        scale_embeddings: true,
        // llama.cpp's gemma3: five sliding layers in six, their rotary base fixed at 10,000.
        sliding: Some(Sliding { every: 6, rope_base: 10_000.0 }),
        globals: &EMBEDDINGS,
        layer: &GEMMA3_LAYERS,
    },
    Architecture {
        name: "phi3",
        rope_order: RopeOrder::Neox,
        activation: Activation::Silu,
        scale_embeddings: false,
        sliding: None,
        globals: &PHI3_GLOBALS,
        layer: &PHI3_LAYERS,
    },
];

impl Architecture {
    pub fn find(name: &str) -> Option<&'static Architecture> {
        ARCHITECTURES.iter().find(|a| a.name == name)
    }

    pub fn supported_names() -> Vec<&'static str> {
        ARCHITECTURES.iter().map(|a| a.name).collect()
    }

    /// The spec of the tensor called `name` (`blk.N.` already taken off a layer's).
    pub fn global(&self, name: &str) -> Option<&'static TensorSpec> {
        self.globals.iter().find(|s| s.name == name)
    }

    pub fn layer_tensor(&self, name: &str) -> Option<&'static TensorSpec> {
        self.layer.iter().find(|s| s.name == name)
    }
}
