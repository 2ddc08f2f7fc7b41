//! Reading an answer's tool calls as it streams: the text outside calls goes out as content as
//! soon as it cannot be the start of a call, and each call as soon as it closes.

use serde_json::Value;

use super::{ToolCall, ToolFormat};
use crate::engine::FinishReason;

const OPEN: &str = "<tool_call>";
const CLOSE: &str = "</tool_call>";

/// What one piece of an answer gave: content to show now, and the calls it completed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolStep {
    pub content: String,
    pub calls: Vec<ToolCall>,
}

/// A whole answer read: the streamed steps' content joined, and their calls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedAnswer {
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
}

impl ParsedAnswer {
    /// OpenAI's `finish_reason` for the answer: `"tool_calls"` when it ended by itself having
    /// made calls.
    pub fn finish_reason(&self, reason: FinishReason) -> &'static str {
        match reason {
            FinishReason::Stop if !self.tool_calls.is_empty() => "tool_calls",
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::Aborted => "aborted",
        }
    }
}

/// The whole of `text` read at once.
pub fn parse(format: ToolFormat, text: &str) -> ParsedAnswer {
    let mut stream = ToolCallStream::new(format);
    stream.push(text);
    stream.finish().1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Hermes: text, where a call may open. Llama: nothing but whitespace yet, or only calls.
    Start,
    /// Inside a `<tool_call>` block (Hermes) or a JSON object that may be a call (Llama).
    Call,
    /// Llama: the answer is text, not calls.
    Text,
}

/// Feeds an answer's text through, piece by piece, and tells content from calls. Whitespace
/// next to a call is not content (the model writes a newline between calls), as llama.cpp trims
/// it; an answer without calls comes out exactly as it went in.
pub struct ToolCallStream {
    format: ToolFormat,
    state: State,
    /// Text whose part is not yet known: the possible start of a marker, or a call so far.
    pending: String,
    /// Whitespace after the content given out, held until it is known whether a call follows.
    space: String,
    answer: ParsedAnswer,
}

impl ToolCallStream {
    pub fn new(format: ToolFormat) -> Self {
        Self { format, state: State::Start, pending: String::new(), space: String::new(), answer: ParsedAnswer::default() }
    }

    /// Takes the next piece of the answer.
    pub fn push(&mut self, text: &str) -> ToolStep {
        self.pending.push_str(text);
        let mut step = ToolStep::default();
        match self.format {
            ToolFormat::Hermes => self.hermes(&mut step),
            ToolFormat::LlamaJson => self.llama(&mut step),
        }
        step
    }

    /// Ends the answer: what was held back is content, unless it completes a call (a block the
    /// answer ended before closing); whitespace at the end is not content when there were calls.
    /// Returns the last step and the whole answer.
    pub fn finish(mut self) -> (ToolStep, ParsedAnswer) {
        let mut step = ToolStep::default();
        let rest = std::mem::take(&mut self.pending);
        match (self.format, self.state) {
            (ToolFormat::Hermes, State::Call) => match call_in(&rest, false) {
                Some((name, arguments)) => self.call(&mut step, name, arguments),
                None => self.text(&mut step, &format!("{OPEN}{rest}")),
            },
            (ToolFormat::LlamaJson, State::Call) => match call_in(&rest, true) {
                Some((name, arguments)) => self.call(&mut step, name, arguments),
                None => self.text(&mut step, &rest),
            },
            _ => self.text(&mut step, &rest),
        }
        if self.answer.tool_calls.is_empty() {
            let space = std::mem::take(&mut self.space);
            step.content.push_str(&space);
            self.answer.content.push_str(&space);
        }
        (step, self.answer)
    }

    fn hermes(&mut self, step: &mut ToolStep) {
        loop {
            match self.state {
                State::Start | State::Text => {
                    if let Some(at) = self.pending.find(OPEN) {
                        let before = self.pending[..at].to_string();
                        self.text(step, &before);
                        self.pending.drain(..at + OPEN.len());
                        self.state = State::Call;
                    } else {
                        let keep = marker_start(&self.pending, OPEN);
                        let ready = self.pending[..keep].to_string();
                        self.text(step, &ready);
                        self.pending.drain(..keep);
                        return;
                    }
                }
                State::Call => {
                    let Some(at) = self.pending.find(CLOSE) else { return };
                    let body = self.pending[..at].to_string();
                    match call_in(&body, false) {
                        Some((name, arguments)) => self.call(step, name, arguments),
                        None => self.text(step, &format!("{OPEN}{body}{CLOSE}")),
                    }
                    self.pending.drain(..at + CLOSE.len());
                    self.state = State::Start;
                }
            }
        }
    }

    fn llama(&mut self, step: &mut ToolStep) {
        loop {
            match self.state {
                State::Start => {
                    let body = self.pending.trim_start();
                    let space = self.pending[..self.pending.len() - body.len()].to_string();
                    self.text(step, &space);
                    self.pending.drain(..space.len());
                    match self.pending.chars().next() {
                        None => return,
                        Some('{') => self.state = State::Call,
                        Some(_) => self.state = State::Text,
                    }
                }
                State::Call => {
                    let mut values = serde_json::Deserializer::from_str(&self.pending).into_iter::<Value>();
                    let (first, end) = (values.next(), values.byte_offset());
                    match first {
                        Some(Ok(value)) => {
                            match call_from(value, true) {
                                Some((name, arguments)) => {
                                    self.call(step, name, arguments);
                                    self.state = State::Start;
                                }
                                None => {
                                    let object = self.pending[..end].to_string();
                                    self.text(step, &object);
                                    self.state = State::Text;
                                }
                            }
                            self.pending.drain(..end);
                        }
                        // The object is not finished yet.
                        Some(Err(e)) if e.is_eof() => return,
                        _ => self.state = State::Text,
                    }
                }
                State::Text => {
                    let text = std::mem::take(&mut self.pending);
                    self.text(step, &text);
                    return;
                }
            }
        }
    }

    /// Gives out `text` as content, holding its trailing whitespace back.
    fn text(&mut self, step: &mut ToolStep, text: &str) {
        let body = text.trim_end();
        if !body.is_empty() {
            let mut out = std::mem::take(&mut self.space);
            out.push_str(body);
            // Content that starts after a call starts at its first word.
            let out = if self.answer.content.is_empty() && !self.answer.tool_calls.is_empty() { out.trim_start() } else { &out };
            step.content.push_str(out);
            self.answer.content.push_str(out);
        }
        self.space.push_str(&text[body.len()..]);
    }

    fn call(&mut self, step: &mut ToolStep, name: String, arguments: String) {
        self.space.clear();
        let call = ToolCall::new(format!("call_{}", self.answer.tool_calls.len()), name, arguments);
        step.calls.push(call.clone());
        self.answer.tool_calls.push(call);
    }
}

/// Where the longest end of `text` that could be the start of `marker` begins.
fn marker_start(text: &str, marker: &str) -> usize {
    let from = text.len().saturating_sub(marker.len() - 1);
    (from..text.len())
        .find(|&at| text.is_char_boundary(at) && marker.starts_with(&text[at..]))
        .unwrap_or(text.len())
}

/// The call a block's JSON makes: its name and arguments (compact JSON text).
fn call_in(body: &str, arguments_required: bool) -> Option<(String, String)> {
    call_from(serde_json::from_str(body.trim()).ok()?, arguments_required)
}

/// `{"name": ..., "arguments": {...}}`, or with `"parameters"` (Llama's word, which llama.cpp
/// takes from any model) and an optional `"type": "function"`. Arguments given as a string are
/// kept as they are; absent, they are `{}` unless required (a Llama answer that is JSON with a
/// `name` is not a call without them).
fn call_from(value: Value, arguments_required: bool) -> Option<(String, String)> {
    let Value::Object(mut object) = value else { return None };
    if object.get("type").is_some_and(|kind| kind != "function") {
        return None;
    }
    let Some(Value::String(name)) = object.remove("name") else { return None };
    if name.is_empty() {
        return None;
    }
    let arguments = match object.remove("arguments").or_else(|| object.remove("parameters")) {
        Some(Value::String(text)) => text,
        Some(value @ Value::Object(_)) => value.to_string(),
        None if !arguments_required => "{}".to_string(),
        _ => return None,
    };
    Some((name, arguments))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: usize, name: &str, arguments: &str) -> ToolCall {
        ToolCall::new(format!("call_{id}"), name.into(), arguments.into())
    }

    /// Feeds `text` a character at a time; checks the steps join to the answer.
    fn stream(format: ToolFormat, text: &str) -> ParsedAnswer {
        let mut stream = ToolCallStream::new(format);
        let mut joined = ToolStep::default();
        for c in text.chars() {
            let step = stream.push(&c.to_string());
            joined.content.push_str(&step.content);
            joined.calls.extend(step.calls);
        }
        let (last, answer) = stream.finish();
        joined.content.push_str(&last.content);
        joined.calls.extend(last.calls);
        assert_eq!((&joined.content, &joined.calls), (&answer.content, &answer.tool_calls), "{text:?}");
        assert_eq!(answer, parse(format, text), "{text:?}");
        answer
    }

    #[test]
    fn hermes_calls_and_content() {
        let one = stream(ToolFormat::Hermes, "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 1, \"y\": [2]}}\n</tool_call>");
        assert_eq!(one.tool_calls, [call(0, "f", r#"{"x":1,"y":[2]}"#)]);
        assert_eq!(one.content, "");
        assert_eq!(one.finish_reason(FinishReason::Stop), "tool_calls");
        assert_eq!(one.finish_reason(FinishReason::Length), "length");

        let many = stream(
            ToolFormat::Hermes,
            "Let me check.\n<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>\n\
             <tool_call>\n{\"name\": \"b\", \"arguments\": \"{\\\"k\\\": \\\"v\\\"}\"}\n</tool_call>\n",
        );
        assert_eq!(many.content, "Let me check.");
        assert_eq!(many.tool_calls, [call(0, "a", "{}"), call(1, "b", r#"{"k": "v"}"#)]);

        // An answer the model ended before closing its block still made its call.
        let unclosed = stream(ToolFormat::Hermes, "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 1}}\n");
        assert_eq!(unclosed.tool_calls, [call(0, "f", r#"{"x":1}"#)]);
    }

    #[test]
    fn hermes_text_that_is_not_a_call_stays_content() {
        for text in [
            "Hello <tool> and <tool_cal world\n",
            "<tool_call>\nnot json\n</tool_call> after",
            "<tool_call>\n{\"arguments\": {}}\n</tool_call>",
            "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 1",
            "  plain answer, 2 < 3 \n\n",
            "<tool_",
        ] {
            let answer = stream(ToolFormat::Hermes, text);
            assert_eq!(answer.content, text);
            assert!(answer.tool_calls.is_empty());
            assert_eq!(answer.finish_reason(FinishReason::Stop), "stop");
        }
        let after = stream(ToolFormat::Hermes, "<tool_call>{\"name\": \"f\"}</tool_call>\n\nDone. ");
        assert_eq!((after.content.as_str(), after.tool_calls.len()), ("Done.", 1));
    }

    #[test]
    fn hermes_holds_back_only_a_possible_marker() {
        let mut s = ToolCallStream::new(ToolFormat::Hermes);
        assert_eq!(s.push("It is <").content, "It is");
        assert_eq!(s.push("b> é <tool").content, " <b> é");
        let step = s.push("_call>{\"name\": \"f\"}</tool_call>");
        assert_eq!((step.content.as_str(), step.calls.as_slice()), ("", &[call(0, "f", "{}")][..]));
    }

    #[test]
    fn llama_json_calls() {
        let one = stream(ToolFormat::LlamaJson, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}");
        assert_eq!(one.tool_calls, [call(0, "get_weather", r#"{"city":"Paris"}"#)]);
        assert_eq!(one.content, "");
        let typed = stream(ToolFormat::LlamaJson, " \n{\"type\": \"function\", \"name\": \"f\", \"arguments\": {}}\n");
        assert_eq!((typed.content.as_str(), typed.tool_calls.as_slice()), ("", &[call(0, "f", "{}")][..]));
        let two = stream(ToolFormat::LlamaJson, "{\"name\": \"a\", \"parameters\": {}}\n{\"name\": \"b\", \"parameters\": {}}");
        assert_eq!(two.tool_calls.len(), 2);

        for text in [
            "The answer is {\"name\": \"f\", \"parameters\": {}}",
            "{\"name\": \"Ada\", \"age\": 36} is a person",
            "{\"name\": \"f\", \"parameters\": {",
            "{not json}",
            "\n  Hi. ",
        ] {
            let answer = stream(ToolFormat::LlamaJson, text);
            assert_eq!(answer.content, text);
            assert!(answer.tool_calls.is_empty(), "{text}");
        }
    }
}
