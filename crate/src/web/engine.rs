use std::cell::RefCell;
use std::ops::ControlFlow;

use wasm_bindgen::prelude::*;

use super::request::{ChatRequest, Completion};
use super::WebError;
use crate::engine::{self, FinishReason};
use crate::gpu::GpuBackend;

/// A loaded model on the GPU, answering chat requests one at a time.
#[wasm_bindgen]
pub struct Engine {
    inner: RefCell<engine::Engine<GpuBackend>>,
    context_length: usize,
}

impl Engine {
    pub(super) fn new(engine: engine::Engine<GpuBackend>) -> Self {
        Self { context_length: engine.context(), inner: RefCell::new(engine) }
    }
}

#[wasm_bindgen]
impl Engine {
    /// Answers an OpenAI-style chat request (`messages`, `max_tokens`, `temperature`, `top_p`,
    /// `top_k`, `min_p`, `repetition_penalty`, `presence_penalty`, `frequency_penalty`, `seed`,
    /// `stop`). `on_delta` hears each new piece of text (once per token, possibly empty);
    /// returning `false` from it stops the generation, which then fails with code `aborted`.
    /// Resolves to `{content, finish_reason, usage, tokens, timings}`.
    pub async fn generate(&self, request: JsValue, on_delta: js_sys::Function) -> Result<JsValue, WebError> {
        let request = ChatRequest::from_js(request)?;
        // The borrow lasts across the awaits of generation on purpose: a second request while
        // one runs is refused here instead of interleaving with it.
        let mut engine = self.inner.try_borrow_mut().map_err(|_| WebError::Busy)?;
        let prompt = engine.chat_prompt(&request.messages)?;
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

    /// The KV cache size in tokens: prompt plus answer must fit in it.
    #[wasm_bindgen(getter, js_name = contextLength)]
    pub fn context_length(&self) -> usize {
        self.context_length
    }
}
