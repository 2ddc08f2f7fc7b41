use serde::Serialize;
use serde_json::Value;

use super::openai::{self, Usage};
use super::tool_call::{self, ToolCall};
use super::{CloudError, ProtocolError};

/// A chat completion answered in one JSON body (a request without `stream`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Completion {
    pub content: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// `choices[0].logprobs` as the endpoint sent it (an object), when it sent one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Value>,
    pub finish_reason: String,
    pub usage: Option<Usage>,
}

impl Completion {
    /// Reads a `chat.completion` body: `choices[0]`'s message (its content and tool calls),
    /// log probabilities and finish reason, and the usage when counted. A null content (as
    /// with tool calls) is the empty answer. An `{"error": ...}` body, which some servers send
    /// with a successful status, fails as [`CloudError::Reported`].
    pub fn parse(body: &str) -> Result<Self, CloudError> {
        let body: Value = serde_json::from_str(body).map_err(ProtocolError::BodyJson)?;
        openai::check_reported(&body)?;
        let shape = |problem| CloudError::from(ProtocolError::NotCompletion(problem));
        let choice = openai::first_choice(&body).map_err(shape)?.ok_or_else(|| shape("its choices list is empty"))?;
        let message =
            choice.get("message").filter(|m| m.is_object()).ok_or_else(|| shape("choices[0] has no message"))?;
        let content =
            openai::optional_str(message, "content", "choices[0].message.content is not a string").map_err(shape)?;
        let finish_reason = openai::optional_str(choice, "finish_reason", "choices[0].finish_reason is not a string")
            .map_err(shape)?
            .ok_or_else(|| shape("choices[0] has no finish_reason"))?;
        Ok(Self {
            content: content.unwrap_or_default().to_owned(),
            tool_calls: tool_call::whole(message)?,
            logprobs: openai::logprobs(choice).map_err(shape)?.cloned(),
            finish_reason: finish_reason.to_owned(),
            usage: openai::usage(&body).map_err(shape)?,
        })
    }
}
