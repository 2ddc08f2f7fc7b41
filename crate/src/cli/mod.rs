mod bench;
mod generate;
mod grammar;
mod info;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use torchlight::constraint::ConstraintError;
use torchlight::cpu::{CpuBackend, Kernels};
use torchlight::engine::{Engine, EngineError, LoadOptions};
use torchlight::gguf::{FileSource, GgufError, GgufFile};
use torchlight::gpu::{Gpu, GpuBackend};
use torchlight::model::{Backend, ModelError};

#[derive(Parser)]
#[command(name = "torchlight", version, about = "Run quantized GGUF language models on WebGPU compute shaders or the CPU")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Architecture, sizes, quantization mix and memory needs of a model file.
    Info { model: PathBuf },
    /// Generate text from a prompt, streaming it to stdout.
    Generate(generate::Args),
    /// Measure prefill and decode speed (a benchmark, not a test).
    Bench(bench::Args),
}

/// A failure the CLI reports in one line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{path}: {source}")]
    Open { path: String, source: std::io::Error },
    #[error("{path}: {source}")]
    Gguf { path: String, source: GgufError },
    #[error("{path}: not a JSON schema: {source}")]
    Schema { path: String, source: serde_json::Error },
    #[error(transparent)]
    Constraint(#[from] ConstraintError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

impl Cli {
    pub fn run(self) -> Result<(), CliError> {
        match self.command {
            Command::Info { model } => info::run(&model),
            Command::Generate(args) => generate::run(args),
            Command::Bench(args) => bench::run(args),
        }
    }
}

fn open(path: &Path) -> Result<(FileSource, GgufFile), CliError> {
    let shown = path.display().to_string();
    let mut source = FileSource::open(path).map_err(|source| CliError::Open { path: shown.clone(), source })?;
    let file = GgufFile::read(&mut source).map_err(|source| CliError::Gguf { path: shown, source })?;
    Ok((source, file))
}

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BackendChoice {
    /// The GPU when wgpu finds a hardware adapter; the CPU when it finds none, or only a
    /// software one (lavapipe, llvmpipe, SwiftShader), which the CPU backend outruns.
    Auto,
    /// wgpu's best adapter, software ones included.
    Gpu,
    /// The CPU's vector units on `--threads` threads.
    Cpu,
}

#[derive(Clone, clap::Args)]
struct BackendArgs {
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    backend: BackendChoice,
    /// Threads for the CPU backend (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// The CPU backend's instruction set (default: the fastest this machine runs), to compare
    /// them: scalar, avx2, avx512-vnni, neon or simd128.
    #[arg(long, value_parser = parse_kernels)]
    kernels: Option<Kernels>,
}

fn parse_kernels(name: &str) -> Result<Kernels, String> {
    let slug = |k: Kernels| k.to_string().to_lowercase().replace('-', "").replace(' ', "-");
    let kernels = Kernels::ALL.into_iter().find(|&k| slug(k) == name.to_lowercase());
    match kernels {
        Some(k) if k.is_available() => Ok(k),
        Some(k) => Err(format!("this machine cannot run the {k} kernels")),
        None => Err(format!("no kernels named {name:?} (scalar, avx2, avx512-vnni, neon, simd128)")),
    }
}

/// What the CLI tells about the backend that ran.
trait Report {
    /// e.g. "gpu: llvmpipe (Vulkan, Cpu)" or "cpu: AVX2 kernels, 2 threads".
    fn describe(&self) -> String;
    /// Bytes of weights, caches and activations it holds.
    fn memory_bytes(&self) -> u64;
    /// GPU dispatches and queue submits so far, on a GPU.
    fn counters(&self) -> Option<(u64, u64)>;
}

impl Report for GpuBackend {
    fn describe(&self) -> String {
        let info = &self.gpu.info;
        format!("gpu: {} ({:?}, {:?})", info.name, info.backend, info.device_type)
    }
    fn memory_bytes(&self) -> u64 {
        self.allocated
    }
    fn counters(&self) -> Option<(u64, u64)> {
        let s = self.stats();
        Some((s.dispatches, s.submits))
    }
}

impl Report for CpuBackend {
    fn describe(&self) -> String {
        let threads = self.threads();
        format!("cpu: {} kernels, {threads} thread{}", self.kernels(), if threads == 1 { "" } else { "s" })
    }
    fn memory_bytes(&self) -> u64 {
        self.allocated
    }
    fn counters(&self) -> Option<(u64, u64)> {
        None
    }
}

/// A command's work with a loaded engine, whichever backend it runs on.
trait WithEngine {
    fn run<B: Backend + Report>(self, engine: Engine<B>) -> Result<(), CliError>;
}

/// Picks the backend, loads the model onto it with a `context`-token cache, and hands the
/// engine to `work`.
fn with_engine(path: &Path, context: usize, backend: &BackendArgs, work: impl WithEngine) -> Result<(), CliError> {
    let (mut source, file) = open(path)?;
    let options = LoadOptions { context, ..LoadOptions::default() };
    let threads = backend.threads.unwrap_or(0);
    let gpu = match backend.backend {
        BackendChoice::Cpu => None,
        BackendChoice::Gpu => Some(pollster::block_on(Gpu::new()).map_err(ModelError::from)?),
        BackendChoice::Auto => pollster::block_on(Gpu::new()).ok().filter(|g| g.info.device_type != wgpu::DeviceType::Cpu),
    };
    match gpu {
        Some(gpu) => work.run(Engine::load(GpuBackend::new(gpu), &file, &mut source, &options, &mut |_| {})?),
        None => {
            let cpu = CpuBackend::with_kernels(threads, backend.kernels.unwrap_or_else(Kernels::best));
            work.run(Engine::load(cpu, &file, &mut source, &options, &mut |_| {})?)
        }
    }
}
