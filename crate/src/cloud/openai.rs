//! Pieces of the OpenAI chat completion format that a whole answer, a stream chunk and an
//! error body share.

use serde::Serialize;
use serde_json::Value;

use super::CloudError;

/// Token counts as the endpoint reports them. (A count past `u32` is no token count, and
/// every `u32` is exact as a JS number.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
}

/// The longest server message an error carries, in characters: enough for "maximum context
/// length is …", short of quoting back a whole prompt.
const MESSAGE_CHARS: usize = 200;

/// `usage`, absent or null when the endpoint did not count (OpenAI streams count only when
/// asked, in a last chunk of their own).
pub(super) fn usage(object: &Value) -> Result<Option<Usage>, &'static str> {
    let usage = match object.get("usage") {
        None | Some(Value::Null) => return Ok(None),
        Some(usage) => usage,
    };
    let count = |key| {
        usage
            .get(key)
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or("usage does not have prompt_tokens, completion_tokens and total_tokens as token counts")
    };
    Ok(Some(Usage {
        prompt_tokens: count("prompt_tokens")?,
        completion_tokens: count("completion_tokens")?,
        total_tokens: count("total_tokens")?,
    }))
}

/// `choices[0]`, or none when `choices` is empty.
pub(super) fn first_choice(object: &Value) -> Result<Option<&Value>, &'static str> {
    Ok(object.get("choices").and_then(Value::as_array).ok_or("it has no choices list")?.first())
}

/// `choices[0].logprobs`, none when absent or null: an object whose `content` has an entry per
/// token (`token`, `logprob`, `bytes`, `top_logprobs`), passed on as the endpoint sent it.
pub(super) fn logprobs(choice: &Value) -> Result<Option<&Value>, &'static str> {
    match choice.get("logprobs") {
        None | Some(Value::Null) => Ok(None),
        Some(logprobs) if logprobs.is_object() => Ok(Some(logprobs)),
        Some(_) => Err("choices[0].logprobs is not an object"),
    }
}

/// A string field that may be absent or null; `wrong_type` says which field it was when it is
/// something else.
pub(super) fn optional_str<'a>(
    object: &'a Value,
    key: &str,
    wrong_type: &'static str,
) -> Result<Option<&'a str>, &'static str> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(wrong_type),
    }
}

/// Fails with [`CloudError::Reported`] when `object` is an `{"error": ...}` rather than an
/// answer.
pub(super) fn check_reported(object: &Value) -> Result<(), CloudError> {
    match object.get("error") {
        None | Some(Value::Null) => Ok(()),
        Some(_) => Err(CloudError::Reported { message: error_message(object) }),
    }
}

/// The message of an OpenAI-style `{"error": {"message": ...}}`, cut to [`MESSAGE_CHARS`].
pub(super) fn error_message(object: &Value) -> Option<String> {
    let message = object.get("error")?.get("message")?.as_str()?.trim();
    if message.is_empty() {
        return None;
    }
    Some(match message.char_indices().nth(MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message.to_owned(),
    })
}
