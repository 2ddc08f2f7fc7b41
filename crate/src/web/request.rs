//! The shapes of a chat request and its answer at the JS boundary, with the OpenAI field names.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;

use super::logprobs::{entries, LogprobEntry};
use super::WebError;
use crate::chat::{Message, PromptOptions};
use crate::constraint::{Grammar, ResponseFormat};
use crate::engine::{GenerateOptions, Generation};
use crate::sample::SamplingParams;
use crate::tokenizer::Tokenizer;
use crate::tools::{ParsedAnswer, Tool, ToolCall, ToolChoice};

/// What `chat.completions.create` (with `messages`) and `completions.create` (with a raw
/// `prompt`) take, less what the JS layer handles itself (`stream`, `signal`, `route`) and the
/// fields it refuses. Sampling fields left out keep their neutral values, as in the OpenAI API.
#[derive(Deserialize)]
pub struct ChatRequest {
    #[serde(default)]
    messages: Option<Vec<Message>>,
    /// Raw text, tokenized as it is with no chat template (base models; files without one).
    #[serde(default)]
    prompt: Option<String>,
    /// OpenAI's `text`, `json_object` or `json_schema`.
    #[serde(default)]
    response_format: Option<ResponseFormat>,
    /// A grammar in llguidance's Lark dialect the answer must match.
    #[serde(default)]
    grammar: Option<String>,
    /// A regular expression the whole answer must match.
    #[serde(default)]
    regex: Option<String>,
    /// Functions the model may call, shown to it by its chat template.
    #[serde(default)]
    tools: Vec<Tool>,
    #[serde(default)]
    tool_choice: ToolChoice,
    /// Whether a required answer may make several calls. Off unless asked for, as in llama.cpp's
    /// server: a small model held to "call, then maybe another" can call on and on.
    #[serde(default)]
    parallel_tool_calls: bool,
    /// Report each answer token's log probability, and `top_logprobs` alternatives.
    #[serde(default)]
    logprobs: bool,
    #[serde(default)]
    top_logprobs: Option<usize>,
    /// Token ids (as strings: JSON keys) to a bias added to their logits.
    #[serde(default)]
    logit_bias: Option<HashMap<String, f32>>,
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

/// What the model is asked to continue.
pub enum Input<'r> {
    Chat(&'r [Message]),
    Text(&'r str),
}

impl ChatRequest {
    pub fn from_js(value: JsValue) -> Result<Self, WebError> {
        serde_wasm_bindgen::from_value(value).map_err(|e| WebError::BadRequest(e.to_string()))
    }

    /// The conversation, or the raw prompt: one of them, never both.
    pub fn input(&self) -> Result<Input<'_>, WebError> {
        match (&self.messages, &self.prompt) {
            (Some(messages), None) => Ok(Input::Chat(messages)),
            (None, Some(prompt)) => Ok(Input::Text(prompt)),
            (Some(_), Some(_)) => Err(WebError::BadRequest("give `messages` or `prompt`, not both".into())),
            (None, None) => Err(WebError::BadRequest("`messages` is missing".into())),
        }
    }

    /// What the answer must match: at most one of `response_format`, `grammar` and `regex`, and
    /// none of them beside tools the model may call (a call is not the answer they shape).
    pub fn grammar(&self) -> Result<Option<Grammar>, WebError> {
        let given = [
            self.response_format.as_ref().and_then(ResponseFormat::grammar).map(|g| ("response_format", g)),
            self.grammar.clone().map(|g| ("grammar", Grammar::Lark(g))),
            self.regex.clone().map(|r| ("regex", Grammar::Regex(r))),
        ];
        let mut given = given.into_iter().flatten();
        let first = given.next();
        if let (Some((a, _)), Some((b, _))) = (&first, given.next()) {
            return Err(WebError::BadRequest(format!("give one of `{a}` and `{b}`: an answer follows one grammar")));
        }
        if let (Some((given, _)), true) = (&first, self.offers_tools()) {
            return Err(WebError::BadRequest(format!(
                "`{given}` with `tools` is not supported: give `tool_choice: \"none\"`, or leave one of them out"
            )));
        }
        Ok(first.map(|(_, grammar)| grammar))
    }

    /// How the conversation is rendered: with its tools, and without thinking when the answer
    /// is constrained (`constrained`) from its first token, where a thinking model would open
    /// its think block.
    pub fn prompt_options(&self, constrained: bool) -> PromptOptions {
        PromptOptions {
            enable_thinking: self.enable_thinking && !constrained,
            tools: self.tools.clone(),
            tool_choice: self.tool_choice.clone(),
        }
    }

    /// Whether the answer must be a call (`tool_choice` "required" or a named function).
    pub fn requires_call(&self) -> bool {
        matches!(self.tool_choice, ToolChoice::Required | ToolChoice::Function(_))
    }

    /// The tools the request gives the model, unless `tool_choice` is "none".
    pub fn offers_tools(&self) -> bool {
        !self.tools.is_empty() && self.tool_choice != ToolChoice::None
    }

    pub fn tools(&self) -> &[Tool] {
        &self.tools
    }

    pub fn tool_choice(&self) -> &ToolChoice {
        &self.tool_choice
    }

    pub fn parallel_tool_calls(&self) -> bool {
        self.parallel_tool_calls
    }

    /// Whether the answer reports its tokens' log probabilities.
    pub fn logprobs(&self) -> bool {
        self.logprobs
    }

    pub fn options(&self) -> Result<GenerateOptions, WebError> {
        let logprobs = match (self.logprobs, self.top_logprobs) {
            (false, None) => None,
            (false, Some(_)) => return Err(WebError::BadRequest("`top_logprobs` needs `logprobs: true`".into())),
            (true, top) => Some(top.unwrap_or(0)),
        };
        let logit_bias = self
            .logit_bias
            .iter()
            .flatten()
            .map(|(id, &bias)| match id.parse() {
                Ok(id) => Ok((id, bias)),
                Err(_) => Err(WebError::BadRequest(format!("`logit_bias` keys are token ids, not {id:?}"))),
            })
            .collect::<Result<_, _>>()?;
        Ok(GenerateOptions {
            max_tokens: self.max_tokens.unwrap_or(usize::MAX),
            sampling: self.sampling.clone(),
            stop: match &self.stop {
                None => Vec::new(),
                Some(Stop::One(s)) => vec![s.clone()],
                Some(Stop::Many(v)) => v.clone(),
            },
            cache_prompt: self.cache_prompt,
            logit_bias,
            logprobs,
            ..GenerateOptions::default()
        })
    }
}

/// An answer as the page saw it stream: its content and calls, and its reasoning apart.
pub struct Answer {
    pub parsed: ParsedAnswer,
    pub reasoning: String,
}

/// A finished generation: the OpenAI `usage` counts, plus the token ids and timings.
#[derive(Serialize)]
pub struct Completion {
    content: String,
    /// The answer's think blocks, apart from its content; left out when there were none, as
    /// llama.cpp's server does.
    #[serde(skip_serializing_if = "String::is_empty")]
    reasoning_content: String,
    /// The calls the answer made; left out when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCall>,
    /// OpenAI's: "stop", "length" or "tool_calls".
    finish_reason: &'static str,
    /// OpenAI's `{content: [...]}`, when the request asked for `logprobs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    logprobs: Option<Logprobs>,
    usage: Usage,
    tokens: Vec<u32>,
    timings: Timings,
}

#[derive(Serialize)]
struct Logprobs {
    content: Vec<LogprobEntry>,
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
    /// `answer` is the generation's text, split into content, reasoning and calls; `logprobs`
    /// whether the request asked for them.
    pub fn new(g: Generation, answer: Answer, tokenizer: &Tokenizer, logprobs: bool) -> Self {
        Self {
            logprobs: logprobs.then(|| Logprobs { content: entries(tokenizer, &g.logprobs) }),
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
            finish_reason: answer.parsed.finish_reason(g.finish_reason),
            content: answer.parsed.content,
            reasoning_content: answer.reasoning,
            tool_calls: answer.parsed.tool_calls,
            tokens: g.tokens,
        }
    }
}
