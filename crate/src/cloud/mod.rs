//! The cloud fallback's protocol: what an OpenAI-compatible endpoint (a hosted API, llama.cpp's
//! server, vLLM, Ollama) sends back for a chat completion (text, tool calls, log
//! probabilities), read into an answer or an error.
//!
//! The caller owns the network and the user's consent; this owns what the bytes mean, so that
//! a stream cut short never passes for a whole answer. Errors carry at most the server's own
//! error message, never the prompt, the answer or a key: all three can sit in what the
//! endpoint sends.

mod completion;
mod error;
mod failure;
mod openai;
mod sse;
mod stream;
#[cfg(test)]
mod tests;
mod tool_call;

pub use completion::Completion;
pub use error::{CloudError, ProtocolError};
pub use openai::Usage;
pub use sse::SseParser;
pub use stream::{ChatStream, Delta, Logprobs, StreamEnd};
pub use tool_call::{FunctionCall, FunctionPiece, ToolCall, ToolCallPiece, ToolKind};
