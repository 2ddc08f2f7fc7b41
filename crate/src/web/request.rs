//! The shapes of a chat request and its answer at the JS boundary, with the OpenAI field names.

use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;

use super::WebError;
use crate::chat::Message;
use crate::engine::{FinishReason, GenerateOptions, Generation};
use crate::reasoning::Split;
use crate::sample::SamplingParams;

/// What `chat.completions.create` takes, less what the JS layer handles itself (`stream`,
/// `signal`). Sampling fields left out keep their neutral values, as in the OpenAI API.
#[derive(Deserialize)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    /// Tokens to generate at most; absent means until the model stops or the context is full.
    #[serde(default)]
    max_tokens: Option<usize>,
    #[serde(default)]
    stop: Option<Stop>,
    /// Whether to reuse the cached keys and values of a prefix shared with the last request
    /// (default yes; llama.cpp's server takes the same field).
    #[serde(default = "yes")]
    cache_prompt: bool,
    /// Passed to the chat template (default yes, as in llama.cpp's server): Qwen3's answers at
    /// once, with no reasoning, when it is false.
    #[serde(default = "yes")]
    pub enable_thinking: bool,
    #[serde(flatten)]
    sampling: SamplingParams,
}

fn yes() -> bool {
    true
}

/// OpenAI accepts one stop string or a list.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

impl ChatRequest {
    pub fn from_js(value: JsValue) -> Result<Self, WebError> {
        serde_wasm_bindgen::from_value(value).map_err(|e| WebError::BadRequest(e.to_string()))
    }

    pub fn options(&self) -> GenerateOptions {
        GenerateOptions {
            max_tokens: self.max_tokens.unwrap_or(usize::MAX),
            sampling: self.sampling.clone(),
            stop: match &self.stop {
                None => Vec::new(),
                Some(Stop::One(s)) => vec![s.clone()],
                Some(Stop::Many(v)) => v.clone(),
            },
            ignore_eos: false,
            cache_prompt: self.cache_prompt,
        }
    }
}

/// A finished generation: the OpenAI `usage` counts, plus the token ids and timings.
#[derive(Serialize)]
pub struct Completion {
    content: String,
    /// The answer's think blocks, apart from its content; left out when there were none, as
    /// llama.cpp's server does.
    #[serde(skip_serializing_if = "String::is_empty")]
    reasoning_content: String,
    finish_reason: FinishReason,
    usage: Usage,
    tokens: Vec<u32>,
    timings: Timings,
}

#[derive(Serialize)]
struct Usage {
    prompt_tokens: usize,
    completion_tokens: usize,
    total_tokens: usize,
    prompt_tokens_details: PromptTokensDetails,
}

/// As OpenAI reports it: prompt tokens whose keys and values were already cached.
#[derive(Serialize)]
struct PromptTokensDetails {
    cached_tokens: usize,
}

/// Milliseconds: prefill ends when the first token is known (time to first token), decode
/// covers the rest.
#[derive(Serialize)]
struct Timings {
    prefill_ms: f64,
    decode_ms: f64,
}

impl Completion {
    /// `answer` is the generation's text, split into content and reasoning.
    pub fn new(g: Generation, answer: Split) -> Self {
        Self {
            usage: Usage {
                prompt_tokens: g.prompt_tokens,
                completion_tokens: g.tokens.len(),
                total_tokens: g.prompt_tokens + g.tokens.len(),
                prompt_tokens_details: PromptTokensDetails { cached_tokens: g.cached_tokens },
            },
            timings: Timings {
                prefill_ms: g.prefill_time.as_secs_f64() * 1e3,
                decode_ms: g.decode_time.as_secs_f64() * 1e3,
            },
            content: answer.content,
            reasoning_content: answer.reasoning,
            finish_reason: g.finish_reason,
            tokens: g.tokens,
        }
    }

    /// A plain JS object (not `Map`s), as JSON would give.
    pub fn to_js(&self) -> JsValue {
        self.serialize(&serde_wasm_bindgen::Serializer::json_compatible())
            .expect("a completion is plain data")
    }
}
