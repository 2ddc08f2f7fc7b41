use std::cell::Cell;
use std::ops::ControlFlow;

use wasm_bindgen::prelude::*;

use super::device::{either, AnyEngine, Either};
use super::request::{ChatRequest, Completion};
use super::WebError;
use crate::engine::{self, FinishReason};
use crate::model::Backend;
use crate::reasoning::{ReasoningSplitter, Split};

/// A loaded model, on the GPU or the CPU, answering chat requests one at a time.
#[wasm_bindgen]
pub struct Engine {
    /// Taken out while a request runs, so a second one meanwhile finds it gone.
    inner: Cell<Option<AnyEngine>>,
    context_length: usize,
    backend: &'static str,
    model_bytes: u64,
}

impl Engine {
    pub(super) fn new(engine: AnyEngine) -> Self {
        let (backend, model_bytes) = match &engine {
            Either::Gpu(e) => ("gpu", e.backend.allocated),
            Either::Cpu(e) => ("cpu", e.backend.allocated),
        };
        let context_length = either!(&engine, e => e.context());
        Self { context_length, backend, model_bytes, inner: Cell::new(Some(engine)) }
    }
}

#[wasm_bindgen]
impl Engine {
    /// Answers an OpenAI-style chat request (`messages`, `max_tokens`, `temperature`, `top_p`,
    /// `top_k`, `min_p`, `repetition_penalty`, `presence_penalty`, `frequency_penalty`, `seed`,
    /// `stop`, `cache_prompt`, `enable_thinking`). `on_delta(content, reasoning)` hears each new
    /// piece of the answer, its think blocks apart (once per token, either or both possibly
    /// empty); returning `false` from it stops the generation, which then fails with code
    /// `aborted`. Resolves to `{content, reasoning_content?, finish_reason, usage, tokens,
    /// timings}`. Requests take turns: one made while another runs fails with code `busy`.
    pub async fn generate(&self, request: JsValue, on_delta: js_sys::Function) -> Result<JsValue, WebError> {
        let request = ChatRequest::from_js(request)?;
        let mut engine = self.inner.take().ok_or(WebError::Busy)?;
        let answer = either!(&mut engine, e => answer(e, &request, &on_delta).await);
        self.inner.set(Some(engine));
        answer
    }

    /// Bytes the model holds on its backend (GPU buffers, or wasm memory on the CPU):
    /// weights, KV cache and activations.
    #[wasm_bindgen(getter, js_name = modelBytes)]
    pub fn model_bytes(&self) -> f64 {
        self.model_bytes as f64
    }

    /// Where the model runs: "gpu" or "cpu".
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.backend.to_string()
    }

    /// The KV cache size in tokens: prompt plus answer must fit in it.
    #[wasm_bindgen(getter, js_name = contextLength)]
    pub fn context_length(&self) -> usize {
        self.context_length
    }
}

async fn answer<B: Backend>(
    engine: &mut engine::Engine<B>,
    request: &ChatRequest,
    on_delta: &js_sys::Function,
) -> Result<JsValue, WebError> {
    let prompt = engine.chat_prompt(&request.messages, request.enable_thinking)?;
    let mut splitter = ReasoningSplitter::new(prompt.reasoning);
    let mut deltas = Deltas { on_delta, answer: Split::default(), thrown: None };
    let generation =
        engine.generate(&prompt.tokens, &request.options(), &mut |piece| deltas.send(splitter.push(piece))).await?;
    if generation.finish_reason != FinishReason::Aborted {
        let last = splitter.finish();
        if !last.is_empty() {
            let _ = deltas.send(last);
        }
    }
    if let Some(e) = deltas.thrown {
        return Err(WebError::Callback(e));
    }
    if generation.finish_reason == FinishReason::Aborted {
        return Err(WebError::Aborted);
    }
    Ok(Completion::new(generation, deltas.answer).to_js())
}

/// Passes each piece of the answer on to the page's `on_delta(content, reasoning)`, and keeps
/// the whole.
struct Deltas<'a> {
    on_delta: &'a js_sys::Function,
    answer: Split,
    /// What `on_delta` threw: the generation stops, and the request fails with it.
    thrown: Option<JsValue>,
}

impl Deltas<'_> {
    fn send(&mut self, piece: Split) -> ControlFlow<()> {
        self.answer.extend(&piece);
        match self.on_delta.call2(&JsValue::NULL, &piece.content.into(), &piece.reasoning.into()) {
            Ok(keep_going) if keep_going == JsValue::FALSE => ControlFlow::Break(()),
            Ok(_) => ControlFlow::Continue(()),
            Err(e) => {
                self.thrown = Some(e);
                ControlFlow::Break(())
            }
        }
    }
}
