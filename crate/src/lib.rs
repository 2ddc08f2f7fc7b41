//! Torchlight: quantized open-weight language models on WebGPU compute shaders.

pub mod chat;
pub mod cloud;
pub mod constraint;
pub mod gguf;
pub mod quant;
pub mod reasoning;
pub mod sample;
pub mod tokenizer;
pub mod tools;
pub mod gpu;
pub mod cpu;
pub mod model;
pub mod engine;
#[cfg(target_arch = "wasm32")]
pub mod event_loop;
pub mod footprint;
#[cfg(target_arch = "wasm32")]
pub mod web;
