mod bench;
mod generate;
mod info;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use torchlight::engine::{Engine, EngineError, LoadOptions};
use torchlight::gguf::{FileSource, GgufError, GgufFile};
use torchlight::gpu::{Gpu, GpuBackend};
use torchlight::model::ModelError;

#[derive(Parser)]
#[command(name = "torchlight", version, about = "Run quantized GGUF language models on WebGPU compute shaders")]
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

/// Opens the GPU and loads the model onto it.
fn load(path: &Path, context: usize) -> Result<Engine<GpuBackend>, CliError> {
    let (mut source, file) = open(path)?;
    let gpu = pollster::block_on(Gpu::new()).map_err(ModelError::from)?;
    let options = LoadOptions { context, ..LoadOptions::default() };
    Ok(Engine::load(GpuBackend::new(gpu), &file, &mut source, &options, &mut |_| {})?)
}
