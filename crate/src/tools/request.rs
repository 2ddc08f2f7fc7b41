//! The OpenAI shapes a request's tools come in, and the calls an answer makes.

use std::collections::HashSet;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Value};

use super::ToolError;

/// One tool a model may call: `{"type": "function", "function": {name, description?, parameters?}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    #[serde(rename = "type", default)]
    pub kind: ToolKind,
    pub function: FunctionDefinition,
}

/// What a tool is: OpenAI's chat API has only functions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolKind {
    #[default]
    Function,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionDefinition {
    /// Absent reads as empty, so that [`validate`] can name the tool that lacks one.
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A JSON schema for the arguments object; absent, any object.
    #[serde(default = "any_object")]
    pub parameters: Value,
}

fn any_object() -> Value {
    json!({})
}

impl Tool {
    /// A function tool.
    pub fn function(name: &str, description: Option<&str>, parameters: Value) -> Self {
        Tool {
            kind: ToolKind::Function,
            function: FunctionDefinition {
                name: name.to_string(),
                description: description.map(str::to_string),
                parameters,
            },
        }
    }

    pub fn name(&self) -> &str {
        &self.function.name
    }
}

/// Whether and which tool the model must call: `"auto"` (it decides), `"none"` (it answers in
/// text: the tools are not shown to it), `"required"` (at least one call), or
/// `{"type": "function", "function": {"name": ...}}` (that one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ToolChoice {
    #[default]
    Auto,
    None,
    Required,
    Function(String),
}

impl std::fmt::Display for ToolChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ToolChoice::Auto => f.write_str("\"auto\""),
            ToolChoice::None => f.write_str("\"none\""),
            ToolChoice::Required => f.write_str("\"required\""),
            ToolChoice::Function(name) => write!(f, "(function \"{name}\")"),
        }
    }
}

impl Serialize for ToolChoice {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ToolChoice::Auto => serializer.serialize_str("auto"),
            ToolChoice::None => serializer.serialize_str("none"),
            ToolChoice::Required => serializer.serialize_str("required"),
            ToolChoice::Function(name) => json!({"type": "function", "function": {"name": name}}).serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for ToolChoice {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Shape {
            Mode(String),
            Named {
                #[serde(rename = "type", default)]
                _kind: ToolKind,
                function: Named,
            },
        }
        #[derive(Deserialize)]
        struct Named {
            name: String,
        }
        match Shape::deserialize(deserializer).map_err(|_| {
            D::Error::custom(r#"tool_choice must be "auto", "none", "required" or {"type": "function", "function": {"name": ...}}"#)
        })? {
            Shape::Mode(mode) => match mode.as_str() {
                "auto" => Ok(ToolChoice::Auto),
                "none" => Ok(ToolChoice::None),
                "required" => Ok(ToolChoice::Required),
                other => Err(D::Error::custom(format!(
                    "tool_choice \"{other}\" is not one of \"auto\", \"none\" and \"required\""
                ))),
            },
            Shape::Named { function, .. } => Ok(ToolChoice::Function(function.name)),
        }
    }
}

/// Checks what a request's tools and choice must be for either to mean anything.
pub fn validate(tools: &[Tool], choice: &ToolChoice) -> Result<(), ToolError> {
    let mut names = HashSet::new();
    for (index, tool) in tools.iter().enumerate() {
        let name = tool.name();
        if name.is_empty() {
            return Err(ToolError::Unnamed { index });
        }
        if !names.insert(name) {
            return Err(ToolError::DuplicateName { name: name.to_string() });
        }
        if !tool.function.parameters.is_object() {
            return Err(ToolError::Parameters { name: name.to_string() });
        }
    }
    match choice {
        ToolChoice::Required | ToolChoice::Function(_) if tools.is_empty() => {
            Err(ToolError::ChoiceWithoutTools { choice: choice.to_string() })
        }
        ToolChoice::Function(name) if !names.contains(name.as_str()) => {
            Err(ToolError::UnknownChoice { name: name.clone() })
        }
        _ => Ok(()),
    }
}

/// A call the model made, or made in an earlier turn: `{id, type: "function", function: {name,
/// arguments}}`, the arguments a JSON object written as a string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// What the `role: "tool"` message answering this call gives as its `tool_call_id`.
    #[serde(default)]
    pub id: String,
    #[serde(rename = "type", default)]
    pub kind: ToolKind,
    pub function: FunctionCall,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionCall {
    pub name: String,
    /// JSON text. Given as an object instead (as Hugging Face's messages have it), it is kept
    /// as its JSON text.
    #[serde(deserialize_with = "arguments_text")]
    pub arguments: String,
}

fn arguments_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(text) => text,
        value => value.to_string(),
    })
}

impl ToolCall {
    pub fn new(id: String, name: String, arguments: String) -> Self {
        ToolCall { id, kind: ToolKind::Function, function: FunctionCall { name, arguments } }
    }

    /// The call as chat templates read it: Hugging Face and llama.cpp give them the arguments
    /// as an object (Qwen2.5's writes `arguments | tojson`), so JSON text is parsed; text that
    /// is not JSON stays text.
    pub(crate) fn for_template(&self) -> Value {
        let arguments = serde_json::from_str(&self.function.arguments)
            .unwrap_or_else(|_| Value::String(self.function.arguments.clone()));
        json!({
            "id": self.id,
            "type": "function",
            "function": {"name": self.function.name, "arguments": arguments},
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str) -> Tool {
        Tool::function(name, None, json!({"type": "object"}))
    }

    #[test]
    fn reads_openai_tools() {
        let tool: Tool = serde_json::from_value(json!({
            "type": "function",
            "function": {"name": "f", "description": "does f", "parameters": {"type": "object"}}
        }))
        .unwrap();
        assert_eq!(tool, Tool::function("f", Some("does f"), json!({"type": "object"})));
        let bare: Tool = serde_json::from_value(json!({"function": {"name": "g"}})).unwrap();
        assert_eq!(bare, Tool::function("g", None, json!({})));
        assert_eq!(
            serde_json::to_value(&bare).unwrap(),
            json!({"type": "function", "function": {"name": "g", "parameters": {}}})
        );
        let err = serde_json::from_value::<Tool>(json!({"type": "retrieval", "function": {"name": "g"}})).unwrap_err();
        assert!(err.to_string().contains("unknown variant `retrieval`"), "{err}");
    }

    #[test]
    fn reads_every_tool_choice() {
        let read = |v: Value| serde_json::from_value::<ToolChoice>(v);
        assert_eq!(read(json!("auto")).unwrap(), ToolChoice::Auto);
        assert_eq!(read(json!("none")).unwrap(), ToolChoice::None);
        assert_eq!(read(json!("required")).unwrap(), ToolChoice::Required);
        let named = json!({"type": "function", "function": {"name": "f"}});
        assert_eq!(read(named.clone()).unwrap(), ToolChoice::Function("f".into()));
        assert_eq!(serde_json::to_value(ToolChoice::Function("f".into())).unwrap(), named);
        assert_eq!(serde_json::to_value(ToolChoice::Required).unwrap(), json!("required"));
        let err = read(json!("always")).unwrap_err().to_string();
        assert!(err.contains("tool_choice \"always\" is not one of"), "{err}");
        let err = read(json!({"type": "function"})).unwrap_err().to_string();
        assert!(err.starts_with("tool_choice must be"), "{err}");
    }

    #[test]
    fn validation_names_the_problem() {
        assert_eq!(validate(&[tool("a"), tool("b")], &ToolChoice::Required), Ok(()));
        assert_eq!(validate(&[], &ToolChoice::Auto), Ok(()));
        assert_eq!(validate(&[], &ToolChoice::None), Ok(()));
        assert_eq!(validate(&[tool("a"), tool("")], &ToolChoice::Auto), Err(ToolError::Unnamed { index: 1 }));
        let err = validate(&[tool("a"), tool("a")], &ToolChoice::Auto).unwrap_err();
        assert_eq!(err.to_string(), "two tools are named \"a\": function names must be unique");
        let err = validate(&[tool("a")], &ToolChoice::Function("b".into())).unwrap_err();
        assert_eq!(err.to_string(), "tool_choice names the function \"b\", which is not one of the tools");
        let err = validate(&[], &ToolChoice::Required).unwrap_err();
        assert_eq!(err.to_string(), "tool_choice \"required\" needs tools, and none were given");
        let err = validate(&[], &ToolChoice::Function("b".into())).unwrap_err();
        assert_eq!(err.to_string(), "tool_choice (function \"b\") needs tools, and none were given");
        let err = validate(&[Tool::function("a", None, json!("object"))], &ToolChoice::Auto).unwrap_err();
        assert_eq!(err, ToolError::Parameters { name: "a".into() });
    }

    #[test]
    fn arguments_are_text_and_objects_for_templates() {
        let call: ToolCall = serde_json::from_value(json!({
            "id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"x\": 1}"}
        }))
        .unwrap();
        assert_eq!(call, ToolCall::new("call_1".into(), "f".into(), "{\"x\": 1}".into()));
        assert_eq!(call.for_template()["function"]["arguments"], json!({"x": 1}));
        let given_as_object: ToolCall =
            serde_json::from_value(json!({"function": {"name": "f", "arguments": {"x": 1}}})).unwrap();
        assert_eq!(given_as_object.function.arguments, "{\"x\":1}");
        let not_json = ToolCall::new(String::new(), "f".into(), "x=1".into());
        assert_eq!(not_json.for_template()["function"]["arguments"], json!("x=1"));
    }
}
