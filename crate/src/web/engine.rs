use std::cell::Cell;
use std::ops::ControlFlow;

use wasm_bindgen::prelude::*;

use super::device::{either, AnyEngine, Either};
use super::request::{ChatRequest, Completion};
use super::WebError;
use crate::engine::{self, FinishReason};
use crate::model::Backend;

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
    /// `stop`). `on_delta` hears each new piece of text (once per token, possibly empty);
    /// returning `false` from it stops the generation, which then fails with code `aborted`.
    /// Resolves to `{content, finish_reason, usage, tokens, timings}`. Requests take turns: one
    /// made while another runs fails with code `busy`.
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
    let prompt = engine.chat_prompt(&request.messages, true)?.tokens;
    let mut thrown = None;
    let mut on_text = |piece: &str| match on_delta.call1(&JsValue::NULL, &piece.into()) {
        Ok(keep_going) if keep_going == JsValue::FALSE => ControlFlow::Break(()),
        Ok(_) => ControlFlow::Continue(()),
        Err(e) => {
            thrown = Some(e);
            ControlFlow::Break(())
        }
    };
    let generation = engine.generate(&prompt, &request.options(), &mut on_text).await?;
    if let Some(e) = thrown {
        return Err(WebError::Callback(e));
    }
    if generation.finish_reason == FinishReason::Aborted {
        return Err(WebError::Aborted);
    }
    Ok(Completion::new(generation).to_js())
}
