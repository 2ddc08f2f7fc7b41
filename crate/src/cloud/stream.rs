use serde::Serialize;
use serde_json::Value;

use super::openai::{self, Usage};
use super::tool_call::{self, JoinedCalls, ToolCall, ToolCallPiece};
use super::{CloudError, ProtocolError, SseParser};

/// A streamed chat completion (`"stream": true`), read as it arrives: the SSE bytes in, what
/// each chunk adds to the answer out, and at the end whether the answer was whole.
#[derive(Debug, Default)]
pub struct ChatStream {
    sse: SseParser,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    calls: JoinedCalls,
    /// Every `choices[0].logprobs.content` entry so far; none until a chunk carried logprobs.
    logprobs: Option<Vec<Value>>,
    /// `[DONE]` arrived: the server says the stream is over.
    done: bool,
}

/// What one chunk adds to the answer: never all three empty.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Delta {
    /// The next piece of text, never empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallPiece>,
    /// The chunk's `choices[0].logprobs.content`: an entry per token.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logprobs: Vec<Value>,
}

/// Token log probabilities in OpenAI's shape: an entry per token (`token`, `logprob`, `bytes`,
/// `top_logprobs`), passed on as the endpoint sent it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Logprobs {
    pub content: Vec<Value>,
}

/// How a stream that ended whole finished.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StreamEnd {
    /// None only when the server sent `[DONE]` without ever giving a finish reason.
    pub finish_reason: Option<String>,
    /// The streamed pieces joined: each call's arguments are its fragments in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// Every chunk's entries in order, when the endpoint sent logprobs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Logprobs>,
    pub usage: Option<Usage>,
}

impl ChatStream {
    /// Reads the next bytes of the response body; gives what the chunks they complete add to
    /// the answer, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Delta>, CloudError> {
        let mut deltas = Vec::new();
        for data in self.sse.push(bytes)? {
            deltas.extend(self.data(&data)?);
        }
        Ok(deltas)
    }

    /// Reads one event's data, for a caller that parses the SSE itself: a
    /// `chat.completion.chunk` (what it adds, if anything), `[DONE]`, or an error the server
    /// reports mid-stream.
    pub fn data(&mut self, data: &str) -> Result<Option<Delta>, CloudError> {
        if self.done {
            return Err(ProtocolError::AfterDone.into());
        }
        if data == "[DONE]" {
            self.done = true;
            return Ok(None);
        }
        let chunk: Value = serde_json::from_str(data).map_err(ProtocolError::StreamJson)?;
        openai::check_reported(&chunk)?;
        let shape = |problem| CloudError::from(ProtocolError::NotChunk(problem));
        if let Some(usage) = openai::usage(&chunk).map_err(shape)? {
            self.usage = Some(usage);
        }
        // No choice at all is a chunk that only counts usage.
        let Some(choice) = openai::first_choice(&chunk).map_err(shape)? else {
            return Ok(None);
        };
        let reason =
            openai::optional_str(choice, "finish_reason", "choices[0].finish_reason is not a string").map_err(shape)?;
        if let Some(reason) = reason {
            self.finish_reason = Some(reason.to_owned());
        }
        let delta = choice.get("delta").filter(|d| d.is_object()).ok_or_else(|| shape("choices[0] has no delta"))?;
        let content =
            openai::optional_str(delta, "content", "choices[0].delta.content is not a string").map_err(shape)?;
        let tool_calls = tool_call::pieces(delta)?;
        for piece in &tool_calls {
            self.calls.add(piece)?;
        }
        let logprobs = match openai::logprobs(choice).map_err(shape)? {
            Some(logprobs) => {
                let entries = token_entries(logprobs).map_err(shape)?;
                self.logprobs.get_or_insert_with(Vec::new).extend_from_slice(&entries);
                entries
            }
            None => Vec::new(),
        };
        let delta = Delta { content: content.filter(|c| !c.is_empty()).map(str::to_owned), tool_calls, logprobs };
        Ok(Some(delta).filter(|d| *d != Delta::default()))
    }

    /// Called when the response body has ended: how the answer finished, with its tool calls
    /// joined, or a [`ProtocolError`] when the server never said it was done (a finish reason
    /// or `[DONE]`), so the text so far may be only the start of the answer, or when a call
    /// never got its id or name.
    ///
    /// An event left unfinished after the answer was done is let go: at worst it held the
    /// usage count or a `[DONE]` whose empty line never came.
    pub fn end(&self) -> Result<StreamEnd, CloudError> {
        if self.finish_reason.is_none() && !self.done {
            let cut = if self.sse.pending() { ProtocolError::CutMidEvent } else { ProtocolError::Cut };
            return Err(cut.into());
        }
        Ok(StreamEnd {
            finish_reason: self.finish_reason.clone(),
            tool_calls: self.calls.finish()?,
            logprobs: self.logprobs.clone().map(|content| Logprobs { content }),
            usage: self.usage,
        })
    }
}

/// A chunk's `logprobs.content`, an entry per token; null is none.
fn token_entries(logprobs: &Value) -> Result<Vec<Value>, &'static str> {
    match logprobs.get("content") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(entries)) => Ok(entries.clone()),
        Some(_) => Err("choices[0].logprobs.content is not a list"),
    }
}
