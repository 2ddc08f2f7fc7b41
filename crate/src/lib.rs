//! Torchlight: quantized open-weight language models on WebGPU compute shaders.

pub mod gguf;
pub mod quant;
