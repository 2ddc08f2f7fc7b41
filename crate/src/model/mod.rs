//! The transformer: hyperparameters, weights, and one forward pass written against the
//! [`Backend`] seam so that the GPU and the CPU reference run the very same steps.

mod arch;
mod backend;
mod config;
mod forward;
mod reference;
mod rope;
mod weights;

pub use arch::{Activation, Architecture, Holder, RopeOrder, Slot, TensorSpec};
pub use backend::{first_max, AttentionShape, Backend, READ_PIECE};
pub use config::{LayerAttention, ModelConfig};
pub use forward::{activation_buffers, forward, Activations, Logits};
pub use reference::{Buffer as ReferenceBuffer, Cache as ReferenceCache, Matrix as ReferenceMatrix, ReferenceBackend};
pub use rope::{rope_table, rope_tables, Rotation};
pub use weights::{LayerWeights, WeightStream, Weights};

use crate::gguf::GgufError;
use crate::quant::GgmlType;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error("architecture {name:?} is not supported (supported: {supported})")]
    UnsupportedArchitecture { name: String, supported: String },
    #[error("tensor {name}: type {ty} is not supported (supported: F32, F16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)")]
    UnsupportedTensorType { name: String, ty: GgmlType },
    #[error("the model has no tensor {name}, which {arch} needs")]
    MissingTensor { name: String, arch: &'static str },
    #[error("the model has a tensor {name} that {arch} does not use: it is another architecture, or a variant Torchlight does not run")]
    UnexpectedTensor { name: String, arch: &'static str },
    #[error("tensor {name}: shape {found:?}, expected {expected:?}")]
    TensorShape { name: String, expected: Vec<u64>, found: Vec<u64> },
    #[error("the model data ended before tensor {0} was complete")]
    Incomplete(String),
    #[error("unusable model: {0}")]
    BadConfig(String),
    #[error("the prompt needs {needed} tokens of context but the context holds {context}")]
    ContextOverflow { needed: usize, context: usize },
    #[error(transparent)]
    Quant(#[from] crate::quant::QuantError),
    #[error("cannot read tensor data: {0}")]
    Io(#[from] std::io::Error),
    /// A backend's own failure (a lost GPU device, a buffer past the device's limits). The
    /// model does not know the backends: each converts its errors into this one.
    #[error(transparent)]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}
