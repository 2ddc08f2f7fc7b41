//! What differs between architectures that GGUF files call by different names. A new
//! architecture is a new row here (and, where its math differs, a new step in `forward`), not a
//! new model implementation.

/// How rotary embeddings pair the elements of a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeOrder {
    /// Adjacent pairs (2i, 2i+1): llama.cpp's "normal" mode, which llama-family GGUFs expect
    /// because their converter permuted the q/k weights for it.
    Normal,
    /// Halves (i, i + d/2): GPT-NeoX ordering, used by qwen2/qwen3/gemma3.
    Neox,
}

#[derive(Debug, Clone, Copy)]
pub struct Architecture {
    /// `general.architecture`, also the prefix of its hyperparameter keys.
    pub name: &'static str,
    pub rope_order: RopeOrder,
}

/// The architectures Torchlight runs. Mistral, TinyLlama, SmolLM and Llama 2/3 GGUFs all say
/// "llama".
const ARCHITECTURES: &[Architecture] = &[Architecture { name: "llama", rope_order: RopeOrder::Normal }];

impl Architecture {
    pub fn find(name: &str) -> Option<&'static Architecture> {
        ARCHITECTURES.iter().find(|a| a.name == name)
    }

    pub fn supported_names() -> Vec<&'static str> {
        ARCHITECTURES.iter().map(|a| a.name).collect()
    }
}
