//! The WebGPU backend: a device, the WGSL kernels of `shaders/` compiled once per
//! specialization, and the model's ops recorded into one compute pass per forward step.

mod backend;
mod context;
mod kernels;
mod recorder;

pub use backend::{GpuBackend, GpuCache, GpuMatrix, GpuTensor};
pub use context::{Gpu, GpuError};
pub use kernels::Kernel;
pub use recorder::GpuStats;
