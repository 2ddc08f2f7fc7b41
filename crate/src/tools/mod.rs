//! Tool calling in OpenAI's shape: a request's `tools` and `tool_choice` are handed to the
//! model's chat template, which knows how its model was taught to see them; the answer's calls
//! are read back out of its text in the syntax that template uses ([`ToolFormat`]), as they
//! stream ([`ToolCallStream`]). When a call is required, a grammar holds the answer to that
//! syntax with arguments that validate against the tool's schema ([`ToolFormat::grammar`]).
//! A template that shows no tools cannot take them: the request fails rather than inventing a
//! format the model never saw.

mod error;
mod format;
mod parse;
mod request;

pub use error::ToolError;
pub use format::{CallGrammar, ToolFormat};
pub use parse::{parse, ParsedAnswer, ToolCallStream, ToolStep};
pub use request::{validate, FunctionCall, FunctionDefinition, Tool, ToolCall, ToolChoice, ToolKind};
