use serde::Serialize;
use serde_json::Value;

use super::openai::{self, Usage};
use super::{CloudError, ProtocolError, SseParser};

/// A streamed chat completion (`"stream": true`), read as it arrives: the SSE bytes in, the
/// answer's pieces of text out, and at the end whether the answer was whole.
#[derive(Debug, Default)]
pub struct ChatStream {
    sse: SseParser,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    /// `[DONE]` arrived: the server says the stream is over.
    done: bool,
}

/// How a stream that ended whole finished.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StreamEnd {
    /// None only when the server sent `[DONE]` without ever giving a finish reason.
    pub finish_reason: Option<String>,
    pub usage: Option<Usage>,
}

impl ChatStream {
    /// Reads the next bytes of the response body; gives the new pieces of the answer's text,
    /// none of them empty.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<String>, CloudError> {
        let mut pieces = Vec::new();
        for data in self.sse.push(bytes)? {
            pieces.extend(self.data(&data)?);
        }
        Ok(pieces)
    }

    /// Reads one event's data, for a caller that parses the SSE itself: a
    /// `chat.completion.chunk` (its piece of text, if it has one), `[DONE]`, or an error the
    /// server reports mid-stream.
    pub fn data(&mut self, data: &str) -> Result<Option<String>, CloudError> {
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
        Ok(content.filter(|c| !c.is_empty()).map(str::to_owned))
    }

    /// Called when the response body has ended: how the answer finished, or a
    /// [`ProtocolError`] when the server never said it was done (a finish reason or
    /// `[DONE]`), so the text so far may be only the start of the answer.
    ///
    /// An event left unfinished after the answer was done is let go: at worst it held the
    /// usage count or a `[DONE]` whose empty line never came.
    pub fn end(&self) -> Result<StreamEnd, CloudError> {
        if self.finish_reason.is_none() && !self.done {
            let cut = if self.sse.pending() { ProtocolError::CutMidEvent } else { ProtocolError::Cut };
            return Err(cut.into());
        }
        Ok(StreamEnd { finish_reason: self.finish_reason.clone(), usage: self.usage })
    }
}
