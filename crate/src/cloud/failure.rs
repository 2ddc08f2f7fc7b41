use serde_json::Value;

use super::openai;
use super::CloudError;

impl CloudError {
    /// The error for a response whose HTTP `status` is not a success, from its `Retry-After`
    /// header when it had one and its body. Of the body only an OpenAI-style
    /// `{"error": {"message": ...}}` is kept, shortened: any other body could be anything,
    /// the prompt included.
    pub fn from_response(status: u16, retry_after: Option<&str>, body: &str) -> Self {
        let message = serde_json::from_str::<Value>(body).ok().and_then(|body| openai::error_message(&body));
        match status {
            401 | 403 => Self::Auth { status, message },
            429 => Self::RateLimited { retry_after_seconds: retry_after.and_then(delay_seconds), message },
            _ => Self::Server { status, message },
        }
    }
}

/// `Retry-After` as delta-seconds ("120"; a fraction is taken too, as some APIs send one).
/// The other form, an HTTP-date, gives None: turning it into a delay needs the clock, and a
/// caller without a delay backs off on its own.
fn delay_seconds(value: &str) -> Option<f64> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    value.parse().ok()
}
