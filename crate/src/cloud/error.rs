use thiserror::Error;

/// Why a cloud request gave no answer.
#[derive(Debug, Error)]
pub enum CloudError {
    /// HTTP 401 or 403: the key is wrong, expired, or not allowed this model.
    #[error("the cloud endpoint refused the credentials (HTTP {status}){}", because(.message))]
    Auth { status: u16, message: Option<String> },
    /// HTTP 429. `retry_after_seconds` is the endpoint's `Retry-After`, when it gave one in
    /// seconds.
    #[error("the cloud endpoint is rate limiting requests (HTTP 429){}{}", retry_hint(.retry_after_seconds), because(.message))]
    RateLimited { retry_after_seconds: Option<f64>, message: Option<String> },
    /// Any other failed HTTP status: a request the endpoint rejected (400, 404) or could not
    /// serve (5xx).
    #[error("the cloud request failed with HTTP {status}{}", because(.message))]
    Server { status: u16, message: Option<String> },
    /// An `{"error": ...}` in place of an answer, after a successful status: mid-stream, or
    /// as the whole body.
    #[error("the cloud endpoint reported an error{}", because(.message))]
    Reported { message: Option<String> },
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

/// The endpoint's answer does not follow the protocol, so nothing it said can be trusted as
/// an answer.
///
/// No message here quotes what was received: a JSON syntax error names only a line and column,
/// and a JSON of the wrong shape is described by the field at fault, never its value (it could
/// be the answer's text, or the prompt echoed).
#[derive(Debug, Error)]
pub enum ProtocolError {
    #[error("the cloud endpoint sent a stream that is not valid UTF-8")]
    InvalidUtf8,
    #[error("the cloud endpoint sent malformed JSON in its stream: {0}")]
    StreamJson(serde_json::Error),
    #[error("the cloud endpoint sent a malformed JSON body: {0}")]
    BodyJson(serde_json::Error),
    #[error("the cloud endpoint's answer is not an OpenAI chat completion: {0}")]
    NotCompletion(&'static str),
    #[error("the cloud endpoint's stream is not of OpenAI chat completion chunks: {0}")]
    NotChunk(&'static str),
    /// `field` is a path into the answer, as `choices[0].message.tool_calls[1].function.name`.
    #[error("the cloud endpoint sent a malformed tool call: {field} {problem}")]
    ToolCall { field: String, problem: &'static str },
    #[error("the cloud stream ended before the answer was complete")]
    Cut,
    #[error("the cloud stream ended in the middle of an event, before the answer was complete")]
    CutMidEvent,
    #[error("the cloud endpoint sent data after [DONE]")]
    AfterDone,
}

/// ": <message>" when the server said why, nothing when it did not.
fn because(message: &Option<String>) -> String {
    message.as_ref().map(|m| format!(": {m}")).unwrap_or_default()
}

fn retry_hint(seconds: &Option<f64>) -> String {
    seconds.map(|s| format!(", retry in {s} s")).unwrap_or_default()
}
