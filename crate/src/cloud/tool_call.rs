//! Tool calls as OpenAI gives them: whole in `message.tool_calls`, or streamed in
//! `delta.tool_calls` as pieces that join, by `index`, to the same.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::ProtocolError;

/// A function the model asks the page to call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ToolKind,
    pub function: FunctionCall,
}

/// A call's `type`: OpenAI's chat completions have only functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolKind {
    Function,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FunctionCall {
    pub name: String,
    /// JSON text as the model wrote it, unparsed: a model can write arguments that are not
    /// JSON, and the page is the one to say what then.
    pub arguments: String,
}

/// One streamed piece of a call. The first piece of a call brings its `id`, `type` and name
/// (some servers repeat them in every piece), the later ones fragments of its arguments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ToolCallPiece {
    /// Which call of the answer this is a piece of, from 0.
    pub index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<ToolKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionPiece>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FunctionPiece {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

fn malformed(field: impl Into<String>, problem: &'static str) -> ProtocolError {
    ProtocolError::ToolCall { field: field.into(), problem }
}

/// A whole answer's `choices[0].message.tool_calls`: none when absent or null.
pub(super) fn whole(message: &Value) -> Result<Vec<ToolCall>, ProtocolError> {
    let at = "choices[0].message.tool_calls";
    list(message, at)?.iter().enumerate().map(|(i, call)| ToolCall::parse(call, &format!("{at}[{i}]"))).collect()
}

/// A chunk's `choices[0].delta.tool_calls`: none when absent or null (llama-cpp-python sends a
/// null list in chunks without calls).
pub(super) fn pieces(delta: &Value) -> Result<Vec<ToolCallPiece>, ProtocolError> {
    let at = "choices[0].delta.tool_calls";
    list(delta, at)?.iter().enumerate().map(|(i, piece)| ToolCallPiece::parse(piece, &format!("{at}[{i}]"))).collect()
}

fn list<'a>(parent: &'a Value, at: &str) -> Result<&'a [Value], ProtocolError> {
    match parent.get("tool_calls") {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(malformed(at, "is not a list")),
    }
}

/// `object[key]` when it is a string, none when absent or null; `at` names `object`.
fn string(object: &Value, key: &str, at: &str) -> Result<Option<String>, ProtocolError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(malformed(format!("{at}.{key}"), "is not a string")),
    }
}

fn required_string(object: &Value, key: &str, at: &str) -> Result<String, ProtocolError> {
    string(object, key, at)?.ok_or_else(|| malformed(format!("{at}.{key}"), "is missing"))
}

fn kind(call: &Value, at: &str) -> Result<Option<ToolKind>, ProtocolError> {
    match string(call, "type", at)?.as_deref() {
        None => Ok(None),
        Some("function") => Ok(Some(ToolKind::Function)),
        Some(_) => Err(malformed(format!("{at}.type"), "is not \"function\"")),
    }
}

/// `call.function` as an object, none when absent or null.
fn function<'a>(call: &'a Value, at: &str) -> Result<Option<&'a Value>, ProtocolError> {
    match call.get("function") {
        None | Some(Value::Null) => Ok(None),
        Some(function) if function.is_object() => Ok(Some(function)),
        Some(_) => Err(malformed(format!("{at}.function"), "is not an object")),
    }
}

impl ToolCall {
    fn parse(call: &Value, at: &str) -> Result<Self, ProtocolError> {
        if !call.is_object() {
            return Err(malformed(at, "is not an object"));
        }
        let id = required_string(call, "id", at)?;
        let kind = kind(call, at)?.ok_or_else(|| malformed(format!("{at}.type"), "is missing"))?;
        let function = function(call, at)?.ok_or_else(|| malformed(format!("{at}.function"), "is missing"))?;
        let at = format!("{at}.function");
        let function = FunctionCall {
            name: required_string(function, "name", &at)?,
            arguments: required_string(function, "arguments", &at)?,
        };
        Ok(Self { id, kind, function })
    }
}

impl ToolCallPiece {
    fn parse(piece: &Value, at: &str) -> Result<Self, ProtocolError> {
        if !piece.is_object() {
            return Err(malformed(at, "is not an object"));
        }
        let index = piece
            .get("index")
            .and_then(Value::as_u64)
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| malformed(format!("{at}.index"), "is not a call's index"))?;
        let function = match function(piece, at)? {
            Some(function) => {
                let at = format!("{at}.function");
                Some(FunctionPiece {
                    name: string(function, "name", &at)?,
                    arguments: string(function, "arguments", &at)?,
                })
            }
            None => None,
        };
        Ok(Self { index, id: string(piece, "id", at)?, kind: kind(piece, at)?, function })
    }
}

/// The calls a stream's pieces have made so far, by index.
#[derive(Debug, Default)]
pub(super) struct JoinedCalls(BTreeMap<u32, Partial>);

#[derive(Debug, Default)]
struct Partial {
    id: Option<String>,
    name: Option<String>,
    arguments: String,
}

impl JoinedCalls {
    pub(super) fn add(&mut self, piece: &ToolCallPiece) -> Result<(), ProtocolError> {
        let call = self.0.entry(piece.index).or_default();
        let at = |field| format!("choices[0].delta.tool_calls[index {}].{field}", piece.index);
        settle(&mut call.id, &piece.id, || at("id"))?;
        if let Some(function) = &piece.function {
            settle(&mut call.name, &function.name, || at("function.name"))?;
            call.arguments.push_str(function.arguments.as_deref().unwrap_or_default());
        }
        Ok(())
    }

    /// The whole calls, in index order: each must have had its id and name by now.
    pub(super) fn finish(&self) -> Result<Vec<ToolCall>, ProtocolError> {
        self.0
            .iter()
            .map(|(index, call)| {
                let never =
                    |field| malformed(format!("choices[0].delta.tool_calls[index {index}].{field}"), "never came");
                Ok(ToolCall {
                    id: call.id.clone().ok_or_else(|| never("id"))?,
                    kind: ToolKind::Function,
                    function: FunctionCall {
                        name: call.name.clone().ok_or_else(|| never("function.name"))?,
                        arguments: call.arguments.clone(),
                    },
                })
            })
            .collect()
    }
}

/// Keeps a call's id or name from the first piece that has it. The same value again is a
/// repeat (llama-cpp-python sends both in every piece), a different one is not the same call.
fn settle(kept: &mut Option<String>, given: &Option<String>, at: impl Fn() -> String) -> Result<(), ProtocolError> {
    match (kept.as_ref(), given) {
        (_, None) => Ok(()),
        (None, Some(given)) => {
            *kept = Some(given.clone());
            Ok(())
        }
        (Some(kept), Some(given)) if kept == given => Ok(()),
        (Some(_), Some(_)) => Err(malformed(at(), "changed in the middle of the stream")),
    }
}
