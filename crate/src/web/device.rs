//! The two places a page's model can run: WebGPU, or the CPU in wasm (SIMD) where WebGPU has no
//! usable adapter. The model code is generic over the backend; this is the one place the web
//! face picks between the two concrete ones.

use crate::cpu::{CpuBackend, Kernels, SingleThread, Workers};
#[cfg(target_feature = "atomics")]
use crate::cpu::ThreadPool;
use crate::engine::{self, LoadOptions};
use crate::gpu::{Gpu, GpuBackend};
use crate::model::{ModelConfig, ModelError, WeightStream};
use crate::gguf::GgufFile;
use crate::chat::ChatTemplate;
use crate::tokenizer::Tokenizer;

use super::WebError;

/// Runs `$body` with `$x` bound to the inner value of either variant.
macro_rules! either {
    ($value:expr, $x:ident => $body:expr) => {
        match $value {
            Either::Gpu($x) => $body,
            Either::Cpu($x) => $body,
        }
    };
}
pub(super) use either;

/// One thing in its GPU or CPU form.
pub(super) enum Either<G, C> {
    Gpu(G),
    Cpu(C),
}

/// The largest model (weights, KV cache and activations) the CPU backend takes: a wasm32
/// memory holds at most 4 GiB, and the rest of the engine and the loader's chunks need room.
pub(super) const CPU_MEMORY_LIMIT: u64 = 3 << 30;

/// A model on its way in: its backend and the weight stream being filled.
pub(super) struct Stage<B: crate::model::Backend> {
    pub backend: B,
    pub stream: WeightStream<B>,
}

pub(super) type Loading = Either<Stage<GpuBackend>, Stage<CpuBackend>>;
pub(super) type AnyEngine = Either<engine::Engine<GpuBackend>, engine::Engine<CpuBackend>>;

impl Loading {
    /// Opens the backend `name` ("gpu" or "cpu", on `threads` threads) and allocates every
    /// weight of `file` on it. Also gives the id of the CPU thread pool the page is to lend
    /// `threads - 1` Web Workers to, if there is one.
    pub async fn open(
        name: &str,
        file: &GgufFile,
        config: ModelConfig,
        needed: u64,
        threads: usize,
    ) -> Result<(Self, Option<u32>), WebError> {
        let mut pool = None;
        let loading = match name {
            "gpu" => {
                let mut backend = GpuBackend::new(Gpu::new().await.map_err(ModelError::from)?);
                let stream = WeightStream::new(&mut backend, file, config)?;
                Either::Gpu(Stage { backend, stream })
            }
            "cpu" => {
                if needed > CPU_MEMORY_LIMIT {
                    return Err(WebError::DoesNotFit { needed, limit: CPU_MEMORY_LIMIT });
                }
                let workers;
                (workers, pool) = cpu_workers(threads);
                let mut backend = CpuBackend::with_workers(workers, Kernels::best());
                let stream = WeightStream::new(&mut backend, file, config)?;
                Either::Cpu(Stage { backend, stream })
            }
            other => return Err(WebError::BadRequest(format!("backend must be \"gpu\" or \"cpu\", not {other:?}"))),
        };
        Ok((loading, pool))
    }

    /// The engine, once every weight byte has been pushed.
    pub fn finish(self, tokenizer: Tokenizer, chat: ChatTemplate, options: &LoadOptions) -> Result<AnyEngine, WebError> {
        Ok(match self {
            Either::Gpu(s) => Either::Gpu(engine::Engine::new(s.backend, s.stream.finish()?, tokenizer, chat, options)?),
            Either::Cpu(s) => Either::Cpu(engine::Engine::new(s.backend, s.stream.finish()?, tokenizer, chat, options)?),
        })
    }
}

/// The CPU backend's threads: where this build has wasm atomics (a cross-origin isolated page),
/// a pool of `threads` with its id, else the calling thread alone.
fn cpu_workers(threads: usize) -> (Box<dyn Workers>, Option<u32>) {
    #[cfg(target_feature = "atomics")]
    if threads > 1 {
        let pool = ThreadPool::new(threads);
        let id = pool.id();
        return (Box::new(pool), Some(id));
    }
    let _ = threads;
    (Box::new(SingleThread), None)
}
