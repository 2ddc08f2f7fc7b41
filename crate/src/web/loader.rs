use wasm_bindgen::prelude::*;

use super::device::{either, Either, Loading};
use super::{trap, Engine, WebError};
use crate::chat::{ChatError, ChatTemplate};
use crate::engine::{EngineError, LoadOptions};
use crate::footprint::Footprint;
use crate::gguf::{GgufError, GgufFile, SliceSource};
use crate::model::{ModelConfig, ModelError};
use crate::tokenizer::Tokenizer;

/// A model on its way onto the GPU or into wasm memory: the header read, every weight buffer
/// allocated, the tensor data arriving in file order.
#[wasm_bindgen]
pub struct Loader {
    loading: Loading,
    tokenizer: Tokenizer,
    chat: ChatTemplate,
    options: LoadOptions,
    thread_pool: Option<u32>,
}

#[wasm_bindgen]
impl Loader {
    /// Reads the header from `header`, the first bytes of a file `file_len` bytes long, and
    /// checks that Torchlight runs the model before opening `backend` ("gpu": WebGPU, or
    /// "cpu": wasm memory) and allocating its weights. A header longer than `header` fails with
    /// code `truncated_header` and `needed`, the prefix length to fetch before calling again.
    /// `context_length` caps the KV cache (default 2048, and never more than the model was
    /// trained for). A model too large for wasm memory fails with code `does_not_fit`.
    /// `threads` (default 1) is how many threads the CPU backend is to use; see `threadPool`.
    /// `chat_template`, a Jinja template's source, replaces the file's own (one that does not
    /// parse fails with code `invalid_request`).
    pub async fn create(
        header: Vec<u8>,
        file_len: f64,
        context_length: Option<u32>,
        backend: String,
        threads: Option<u32>,
        chat_template: Option<String>,
    ) -> Result<Loader, WebError> {
        let options = load_options(context_length);
        // Everything that can refuse the file is checked before the backend is opened.
        let (file, config, tokenizer, chat, needed) = trap::reading_header(|| -> Result<_, WebError> {
            let file = read_header(&header, file_len as u64)?;
            let config = ModelConfig::from_gguf(&file)?;
            let tokenizer = Tokenizer::from_gguf(&file).map_err(EngineError::from)?;
            let chat = match &chat_template {
                None => ChatTemplate::from_gguf(&file).map_err(EngineError::from)?,
                Some(source) => ChatTemplate::from_gguf_with_source(&file, source).map_err(|e| match e {
                    ChatError::Syntax(e) => WebError::BadRequest(format!("the chatTemplate option does not parse: {e}")),
                    e => EngineError::from(e).into(),
                })?,
            };
            let needed = Footprint::measure(&file, &options).gpu_bytes();
            Ok((file, config, tokenizer, chat, needed))
        })?;
        let threads = threads.unwrap_or(1) as usize;
        let (loading, thread_pool) = Loading::open(&backend, &file, config, needed, threads).await?;
        Ok(Self { loading, tokenizer, chat, options, thread_pool })
    }

    /// The CPU thread pool the page is to lend `threads - 1` Web Workers to, each calling
    /// `lendThread` with this id in this module's shared memory; undefined where the backend
    /// runs on the calling thread alone (the GPU, one thread, or a build without atomics).
    #[wasm_bindgen(getter, js_name = threadPool)]
    pub fn thread_pool(&self) -> Option<u32> {
        self.thread_pool
    }

    /// `[start, end)`: the file bytes still to push, in order.
    pub fn range(&self) -> Vec<f64> {
        let (start, end) = either!(&self.loading, s => s.stream.range());
        vec![start as f64, end as f64]
    }

    /// The file's bytes at `offset..offset + bytes.len()`. Chunks come in file order and may
    /// overlap bytes already pushed, but may not skip any.
    pub fn push(&mut self, offset: f64, bytes: &[u8]) -> Result<(), WebError> {
        Ok(either!(&mut self.loading, s => s.stream.push(&mut s.backend, offset as u64, bytes))?)
    }

    /// Resolves once the GPU holds every byte pushed so far (writes are queued, not waited
    /// for); fails as the device does, say when it was lost meanwhile. On the CPU the bytes
    /// are in place already.
    pub async fn flush(&self) -> Result<(), WebError> {
        match &self.loading {
            Either::Gpu(s) => Ok(s.backend.gpu.idle().await.map_err(ModelError::from)?),
            Either::Cpu(_) => Ok(()),
        }
    }

    /// The engine, once every byte of `range()` has been pushed; builds the GPU pipelines.
    pub fn finish(self) -> Result<Engine, WebError> {
        Ok(Engine::new(self.loading.finish(self.tokenizer, self.chat, &self.options)?))
    }
}

/// The engine's options with the page's `contextLength`, when it gave one.
pub(super) fn load_options(context_length: Option<u32>) -> LoadOptions {
    let mut options = LoadOptions::default();
    if let Some(context) = context_length {
        options.context = context as usize;
    }
    options
}

/// The header from a prefix of the file. A read past the prefix (but inside the file) asks
/// for more bytes; a header that runs past the end of the file is truncated.
pub(super) fn read_header(prefix: &[u8], file_len: u64) -> Result<GgufFile, WebError> {
    let have = prefix.len() as u64;
    match GgufFile::read(&mut SliceSource::prefix(prefix, file_len)) {
        Err(GgufError::Truncated { what, needed, len }) if needed <= len && needed > have => {
            Err(WebError::HeaderIncomplete { what, have, needed })
        }
        result => Ok(result?),
    }
}
