//! The CPU backend: the model's ops in Rust on the machine's cores, for machines without a
//! usable GPU.
//!
//! Weights stay in their GGUF blocks, the file's bytes, with the rows of each group of four
//! interleaved block by block so that decode reads several rows in one stream (`layout`). A matrix product quantizes the
//! activations once, to 16-bit integers per block held as two byte planes (`activations`; f32
//! for F32/F16 weights), then each output row is a fused dequantize-and-dot over the packed
//! blocks with integer byte products (`dot`), for up to four tokens per pass, the rows split
//! among threads (`pool`). Attention splits a decode step's keys among threads and merges the
//! parts (`ops`). Every kernel is written once over a small vector interface (`simd`) and
//! compiled for AVX2, NEON, wasm simd128 and plain Rust.

mod activations;
mod backend;
mod dot;
mod layout;
mod matmul;
mod ops;
mod pool;
mod simd;

pub use activations::quantized_activations;
pub use backend::{default_threads, CpuBackend, CpuBuffer, CpuCache, CpuMatrix};
#[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
pub use pool::ThreadPool;
#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
pub use pool::{lend_thread, thread_failed};
pub use pool::{SingleThread, Workers};
pub use simd::Kernels;
