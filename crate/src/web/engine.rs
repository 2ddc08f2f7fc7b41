use std::cell::Cell;
use std::ops::ControlFlow;

use serde::Serialize;
use wasm_bindgen::prelude::*;

use super::device::{either, AnyEngine, Either};
use super::request::{Answer, ChatRequest, Completion, Input};
use super::{to_js, WebError};
use crate::chat::ChatError;
use crate::engine::{self, EngineError, FinishReason};
use crate::model::Backend;
use crate::reasoning::{Reasoning, ReasoningSplitter, Split};
use crate::tools::{ParsedAnswer, ToolCall, ToolCallStream, ToolStep};

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
    /// Answers an OpenAI-style chat request (`messages`, or a raw `prompt` for a completion,
    /// `max_tokens`, `temperature`, `top_p`, `top_k`, `min_p`, `repetition_penalty`,
    /// `presence_penalty`, `frequency_penalty`, `seed`, `stop`, `cache_prompt`,
    /// `enable_thinking`, and one of `response_format`, `grammar` (Lark) or `regex`, which the
    /// answer then matches). `on_delta(delta)` hears each new
    /// piece of the answer as an OpenAI delta (`content`, `reasoning_content`: its think blocks
    /// apart), once per token, with nothing in it when the token added nothing; returning `false` from it stops the generation, which then fails with code
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
    // A bad option, schema or grammar is refused before the prompt runs.
    let options = request.options()?;
    let grammar = request.grammar()?;
    let mut constraint = grammar.as_ref().map(|grammar| engine.constraint(grammar)).transpose().map_err(EngineError::from)?;
    let (tokens, reasoning, tool_format) = match request.input()? {
        Input::Chat(messages) => {
            let constrained = constraint.is_some() || request.requires_call();
            let prompt = engine.chat_prompt(messages, &request.prompt_options(constrained))?;
            (prompt.tokens, prompt.reasoning, prompt.tool_format)
        }
        Input::Text(text) => (engine.tokenizer.encode(text, true, true).map_err(EngineError::from)?, Reasoning::None, None),
    };
    // A required call is held to the model's call syntax, its arguments to the tool's schema.
    if let Some(format) = tool_format {
        if let Some(call) = format.grammar(request.tools(), request.tool_choice(), request.parallel_tool_calls()).map_err(ChatError::from).map_err(EngineError::from)? {
            let compiled = engine.constraint(&call.grammar).map_err(|e| EngineError::from(ChatError::from(call.explain(e))))?;
            constraint = Some(compiled);
        }
    }
    let mut splitter = ReasoningSplitter::new(reasoning);
    let mut deltas = Deltas::new(on_delta, tool_format.map(ToolCallStream::new));
    let generation = engine
        .generate_constrained(&tokens, &options, constraint, &mut |piece| deltas.send(splitter.push(piece)))
        .await?;
    let answer = (generation.finish_reason != FinishReason::Aborted).then(|| deltas.finish(splitter.finish()));
    if let Some(e) = deltas.thrown {
        return Err(WebError::Callback(e));
    }
    match answer {
        Some(answer) => Ok(to_js(&Completion::new(generation, answer, &engine.tokenizer, request.logprobs()))),
        None => Err(WebError::Aborted),
    }
}

/// Passes each piece of the answer on to the page's `on_delta(delta)`, as an OpenAI delta with
/// only the parts it has (the calls read out of its content when it may make any), and keeps
/// the whole.
struct Deltas<'a> {
    on_delta: &'a js_sys::Function,
    calls: Option<ToolCallStream>,
    content: String,
    reasoning: String,
    tool_calls: Vec<ToolCall>,
    /// What `on_delta` threw: the generation stops, and the request fails with it.
    thrown: Option<JsValue>,
}

/// One piece of an answer, as JS sees it. One goes out for every token, empty or not: the
/// answer stops at the first whose `on_delta` returns `false`.
#[derive(Serialize)]
struct Delta<'p> {
    #[serde(skip_serializing_if = "str::is_empty")]
    content: &'p str,
    #[serde(skip_serializing_if = "str::is_empty")]
    reasoning_content: &'p str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tool_calls: &'p [CallDelta<'p>],
}

/// OpenAI's streamed call: here always whole, in one piece, numbered by `index` in the answer.
#[derive(Serialize)]
struct CallDelta<'p> {
    index: usize,
    #[serde(flatten)]
    call: &'p ToolCall,
}

impl<'a> Deltas<'a> {
    fn new(on_delta: &'a js_sys::Function, calls: Option<ToolCallStream>) -> Self {
        Self { on_delta, calls, content: String::new(), reasoning: String::new(), tool_calls: Vec::new(), thrown: None }
    }

    fn send(&mut self, piece: Split) -> ControlFlow<()> {
        let step = match &mut self.calls {
            Some(calls) => calls.push(&piece.content),
            None => ToolStep { content: piece.content, calls: Vec::new() },
        };
        self.emit(&piece.reasoning, step)
    }

    /// Sends what the answer held back at its end, and gives the whole answer.
    fn finish(&mut self, last: Split) -> Answer {
        let _ = self.send(last);
        if let Some(calls) = self.calls.take() {
            let (step, parsed) = calls.finish();
            let _ = self.emit("", step);
            debug_assert_eq!(parsed.content, self.content);
        }
        let parsed = ParsedAnswer { content: std::mem::take(&mut self.content), tool_calls: std::mem::take(&mut self.tool_calls) };
        Answer { parsed, reasoning: std::mem::take(&mut self.reasoning) }
    }

    fn emit(&mut self, reasoning: &str, step: ToolStep) -> ControlFlow<()> {
        let first = self.tool_calls.len();
        let calls: Vec<CallDelta> = step.calls.iter().enumerate().map(|(i, call)| CallDelta { index: first + i, call }).collect();
        let delta = Delta { content: &step.content, reasoning_content: reasoning, tool_calls: &calls };
        let sent = self.on_delta.call1(&JsValue::NULL, &to_js(&delta));
        self.content.push_str(&step.content);
        self.reasoning.push_str(reasoning);
        self.tool_calls.extend(step.calls);
        match sent {
            Ok(keep_going) if keep_going == JsValue::FALSE => ControlFlow::Break(()),
            Ok(_) => ControlFlow::Continue(()),
            Err(e) => {
                self.thrown.get_or_insert(e);
                ControlFlow::Break(())
            }
        }
    }
}
