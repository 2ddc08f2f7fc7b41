//! The cloud fallback at the JS boundary. JS asks for consent and does the `fetch`; these read
//! what came back, so that the protocol's rules (a cut stream is no answer, an error body is
//! never echoed) hold on one side only.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::{to_js, WebError};
use crate::cloud::{ChatStream, CloudError, Completion};

/// Reads the body of a successful non-streamed chat completion into
/// `{content, tool_calls?, logprobs?, finish_reason, usage}`: `tool_calls` (each
/// `{id, type: "function", function: {name, arguments}}`) only when the model called tools,
/// `logprobs` (the endpoint's `choices[0].logprobs`) only when it sent them, and `usage` null
/// when the endpoint did not count.
#[wasm_bindgen(js_name = cloudCompletion)]
pub fn cloud_completion(body: &str) -> Result<JsValue, WebError> {
    Ok(to_js(&Completion::parse(body)?))
}

/// The JS `Error` (not thrown) for a response whose status is not a success: code
/// `cloud_auth`, `cloud_rate_limited` (with `retryAfter` in seconds when the endpoint said) or
/// `cloud_error`. `retryAfter` is the response's `Retry-After` header.
#[wasm_bindgen(js_name = cloudFailure)]
pub fn cloud_failure(status: u16, retry_after: Option<String>, body: &str) -> js_sys::Error {
    JsValue::from(WebError::from(CloudError::from_response(status, retry_after.as_deref(), body))).unchecked_into()
}

/// A streamed chat completion read as its body arrives.
#[wasm_bindgen(js_name = CloudStream)]
#[derive(Default)]
pub struct CloudStream(ChatStream);

#[wasm_bindgen(js_class = CloudStream)]
impl CloudStream {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Self {
        Self::default()
    }

    /// The next bytes of the body; gives an array of what each chunk they complete adds:
    /// `{content?, tool_calls?, logprobs?}`, never all absent. `content` is a non-empty piece
    /// of text; `tool_calls` are pieces `{index, id?, type?, function?: {name?, arguments?}}`
    /// as the endpoint sent them; `logprobs` is the chunk's `logprobs.content`, an entry per
    /// token.
    pub fn push(&mut self, bytes: &[u8]) -> Result<JsValue, WebError> {
        Ok(to_js(&self.0.push(bytes)?))
    }

    /// Called when the body has ended: `{finish_reason, tool_calls?, logprobs?, usage}`, with
    /// the tool call pieces joined as a non-streamed answer has them and every chunk's
    /// logprobs in one `{content: [...]}`; or an error with code `cloud_protocol` when the
    /// stream was cut before the answer was complete, or a call never got its id or name.
    pub fn end(&self) -> Result<JsValue, WebError> {
        Ok(to_js(&self.0.end()?))
    }
}
