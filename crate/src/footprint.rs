//! What a model will need, read from its GGUF header alone: before a byte of its weights is
//! downloaded, a page (or `torchlight info`) can say whether Torchlight runs it and how much
//! memory it takes.

use std::collections::HashMap;

use serde::Serialize;

use crate::chat::ChatTemplate;
use crate::engine::LoadOptions;
use crate::gguf::GgufFile;
use crate::model::{activation_buffers, ModelConfig, ModelError};
use crate::quant::GgmlType;
use crate::tokenizer::Tokenizer;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Footprint {
    /// `general.architecture`, supported or not.
    pub architecture: String,
    /// The weight type holding the most bytes among the 2-D tensors ("Q4_1", "Q4_K", ...).
    pub quantization: String,
    /// KV cache positions the engine would allocate (0 when the model cannot run).
    pub context_length: usize,
    /// Weights as the GPU holds them: matrices in their GGUF blocks, norm gains as f32.
    pub weight_bytes: u64,
    /// Keys and values of every layer, in f32.
    pub kv_bytes: u64,
    /// Scratch activations for one forward step.
    pub activation_bytes: u64,
    /// The largest single GPU buffer: it must fit the device's binding limit.
    pub largest_buffer: u64,
    /// Why Torchlight cannot run the model, as sentences; empty when it can.
    pub problems: Vec<String>,
}

impl Footprint {
    /// The model's needs with `options`. Problems are collected rather than returned as
    /// errors, so one look at the header lists all of them, its vocabulary and chat template
    /// included.
    pub fn of(file: &GgufFile, options: &LoadOptions) -> Self {
        let mut footprint = Self::measure(file, options);
        if let Err(e) = Tokenizer::from_gguf(file) {
            footprint.problems.push(e.to_string());
        }
        if let Err(e) = ChatTemplate::from_gguf(file) {
            footprint.problems.push(e.to_string());
        }
        footprint
    }

    /// As `of`, without building the tokenizer and chat template to check them: for a loader
    /// that builds them anyway.
    pub fn measure(file: &GgufFile, options: &LoadOptions) -> Self {
        let mut problems = Vec::new();
        // Saturating: a header that claims more than 2^64 bytes needs more than any memory.
        let weight_bytes = file
            .tensors
            .iter()
            .map(|t| if t.dims.len() == 1 { t.n_elems().saturating_mul(4) } else { t.n_bytes })
            .fold(0, u64::saturating_add);
        let unsupported: Vec<_> = file.tensors.iter().filter(|t| t.ggml_type.format().is_none()).collect();
        if let Some(t) = unsupported.first() {
            let first = ModelError::UnsupportedTensorType { name: t.name.clone(), ty: t.ggml_type };
            problems.push(match unsupported.len() {
                1 => first.to_string(),
                n => format!("{first}; {} more tensors have unsupported types", n - 1),
            });
        }
        let mut footprint = Self {
            architecture: file.architecture().unwrap_or("(none)").to_string(),
            quantization: dominant_type(file).map_or_else(|| "(none)".to_string(), |t| t.to_string()),
            context_length: 0,
            weight_bytes,
            kv_bytes: 0,
            activation_bytes: 0,
            largest_buffer: 0,
            problems,
        };
        match ModelConfig::from_gguf(file) {
            Ok(config) => {
                let context = options.context_for(&config);
                footprint.context_length = context;
                match cache_and_activations(&config, options, context) {
                    Some((kv, activations, largest)) => {
                        footprint.kv_bytes = kv;
                        footprint.activation_bytes = activations;
                        footprint.largest_buffer = largest;
                    }
                    None => footprint.problems.push(format!(
                        "the KV cache and activations for a {context}-token context would need more than 2^64 bytes"
                    )),
                }
            }
            // The architecture's problem comes first: it is the one that matters most.
            Err(e) => footprint.problems.insert(0, e.to_string()),
        }
        footprint
    }

    /// Every GPU buffer the model needs, together.
    pub fn gpu_bytes(&self) -> u64 {
        self.weight_bytes.saturating_add(self.kv_bytes).saturating_add(self.activation_bytes)
    }

    /// `problems`, plus more memory than `limit` bytes, all the CPU backend has (in a browser,
    /// what wasm memory can hold).
    pub fn problems_in_memory(&self, limit: u64) -> Vec<String> {
        let mut problems = self.problems.clone();
        if self.gpu_bytes() > limit {
            problems.push(format!("the model needs {} bytes of memory on the CPU, more than the {limit} it can have", self.gpu_bytes()));
        }
        problems
    }

    /// `problems`, plus the buffer that would pass a device's binding limit of `limit` bytes.
    pub fn problems_on(&self, limit: u64) -> Vec<String> {
        let mut problems = self.problems.clone();
        if self.largest_buffer > limit {
            problems.push(format!(
                "one GPU buffer would need {} bytes but this device allows {limit}: use a shorter context",
                self.largest_buffer
            ));
        }
        problems
    }
}

/// Bytes of the KV cache and of the activations, and of the largest single buffer among them;
/// `None` when a size passes 2^64 bytes.
fn cache_and_activations(config: &ModelConfig, options: &LoadOptions, context: usize) -> Option<(u64, u64, u64)> {
    let layer = config.kv_layer_bytes(context).ok()?;
    let kv = layer.checked_mul(2)?.checked_mul(config.n_layers as u64)?;
    let buffers = activation_buffers(config, options.batch_for(context))?;
    let activations = buffers.iter().try_fold(0u64, |sum, &b| sum.checked_add(b))?;
    Some((kv, activations, buffers.into_iter().fold(layer, u64::max)))
}

fn dominant_type(file: &GgufFile) -> Option<GgmlType> {
    let mut bytes: HashMap<GgmlType, u64> = HashMap::new();
    for t in file.tensors.iter().filter(|t| t.dims.len() == 2) {
        *bytes.entry(t.ggml_type).or_default() += t.n_bytes;
    }
    bytes.into_iter().max_by_key(|&(_, n)| n).map(|(t, _)| t)
}
