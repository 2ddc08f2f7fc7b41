//! How a model writes its tool calls, told from its chat template, and the grammar that holds
//! an answer to that syntax when a call is required.

use std::fmt::Write;

use llguidance::JsonCompileOptions;
use serde_json::Value;

use super::{validate, Tool, ToolChoice, ToolError};
use crate::constraint::{ConstraintError, Grammar};

/// The grammar's line with the first tool's call (then its arguments, then the next tool's).
const FIRST_TOOL_LINE: usize = 3;

/// The syntax of a model's tool calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolFormat {
    /// One block per call, `<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>`:
    /// Hermes 2 Pro, Qwen2.5, Qwen3.
    Hermes,
    /// The answer is the call, `{"name": ..., "parameters": {...}}`: Llama 3.1 to 3.3.
    LlamaJson,
}

impl ToolFormat {
    /// The syntax a template's own examples show: Hermes-style templates write past calls (and
    /// tell the model to write its own) in `<tool_call>` blocks; Llama 3.x's ask for
    /// `{"name": function name, "parameters": ...}`. None for any other.
    pub fn detect(template: &str) -> Option<Self> {
        if template.contains("<tool_call>") {
            Some(ToolFormat::Hermes)
        } else if template.contains(r#"{"name": function name, "parameters""#) {
            Some(ToolFormat::LlamaJson)
        } else {
            None
        }
    }

    /// For `"required"` or a named function, a Lark grammar that holds the answer to calls in
    /// this syntax, naming an allowed function, whose arguments validate against its
    /// `parameters`; none for `"auto"` and `"none"`. `parallel` lets a required answer make more
    /// than one call where the syntax can (OpenAI's `parallel_tool_calls`); a named function is
    /// called once. Llama's syntax has room for one call.
    pub fn grammar(self, tools: &[Tool], choice: &ToolChoice, parallel: bool) -> Result<Option<CallGrammar>, ToolError> {
        validate(tools, choice)?;
        let allowed: Vec<&Tool> = match choice {
            ToolChoice::Auto | ToolChoice::None => return Ok(None),
            ToolChoice::Required => tools.iter().collect(),
            ToolChoice::Function(name) => tools.iter().filter(|tool| tool.name() == name).collect(),
        };
        let several = parallel && *choice == ToolChoice::Required && self == ToolFormat::Hermes;
        let mut lark = String::from(if several { "start: call (\"\\n\" call)*\n" } else { "start: call\n" });
        let alternatives: Vec<String> = (0..allowed.len()).map(|i| format!("call_{i}")).collect();
        let _ = writeln!(lark, "call: {}", alternatives.join(" | "));
        for (i, tool) in allowed.iter().enumerate() {
            // The name as JSON writes it, quotes and all.
            let name = Value::String(tool.name().to_string()).to_string();
            let (head, tail) = match self {
                ToolFormat::Hermes => (format!("<tool_call>\n{{\"name\": {name}, \"arguments\": "), "}\n</tool_call>"),
                ToolFormat::LlamaJson => (format!("{{\"name\": {name}, \"parameters\": "), "}"),
            };
            let _ = writeln!(lark, "call_{i}: {} args_{i} {}", lark_string(&head), lark_string(tail));
            let _ = writeln!(lark, "args_{i}: %json {}", arguments_schema(&tool.function.parameters));
        }
        let tools = allowed.iter().map(|tool| tool.name().to_string()).collect();
        Ok(Some(CallGrammar { grammar: Grammar::Lark(lark), tools }))
    }
}

/// The grammar of a required call, and the tool whose arguments each of its lines holds.
#[derive(Debug, Clone, PartialEq)]
pub struct CallGrammar {
    pub grammar: Grammar,
    tools: Vec<String>,
}

impl CallGrammar {
    /// A failure to compile `grammar` in the request's words: a tool's parameters that the
    /// library cannot compile are named, rather than a line of a grammar the caller never wrote.
    pub fn explain(&self, error: ConstraintError) -> ToolError {
        if let ConstraintError::GrammarAt { line, message, .. } = &error {
            let arguments_of = line.checked_sub(FIRST_TOOL_LINE).filter(|offset| offset % 2 == 1).map(|offset| offset / 2);
            if let Some(name) = arguments_of.and_then(|i| self.tools.get(i)) {
                let message = message.strip_prefix("failed to compile JSON schema: ").unwrap_or(message);
                return ToolError::Schema { name: name.clone(), message: message.to_string() };
            }
        }
        ToolError::Constraint(error)
    }
}

/// A tool's parameters as the schema of its arguments: always an object, written as the
/// templates' `tojson` writes past calls (`{"a": 1, "b": 2}`), unless the schema sets
/// llguidance's own `x-guidance` options.
fn arguments_schema(parameters: &Value) -> Value {
    let mut schema = parameters.clone();
    if let Some(object) = schema.as_object_mut() {
        object.entry("type").or_insert_with(|| "object".into());
        if !object.contains_key("x-guidance") {
            let options = JsonCompileOptions {
                item_separator: ", ".into(),
                key_separator: ": ".into(),
                whitespace_flexible: false,
                ..JsonCompileOptions::default()
            };
            options.apply_to(&mut schema);
        }
    }
    schema
}

/// `text` as a Lark string literal, which takes JSON's string syntax but no raw DEL.
fn lark_string(text: &str) -> String {
    Value::String(text.to_string()).to_string().replace('\u{7f}', "\\u007f")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn detects_the_families_syntax() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/");
        let read = |name: &str| std::fs::read_to_string(format!("{dir}{name}_chat_template.jinja")).unwrap();
        assert_eq!(ToolFormat::detect(&read("qwen2.5")), Some(ToolFormat::Hermes));
        assert_eq!(ToolFormat::detect(&read("qwen3")), Some(ToolFormat::Hermes));
        assert_eq!(ToolFormat::detect(&read("llama3.2")), Some(ToolFormat::LlamaJson));
        assert_eq!(ToolFormat::detect(&read("gemma3")), None);
    }

    #[test]
    fn grammar_spells_each_allowed_call() {
        let tools = [
            Tool::function("get_weather", None, json!({"properties": {"city": {"type": "string"}}})),
            Tool::function("say \"hi\"", None, json!({})),
        ];
        assert_eq!(ToolFormat::Hermes.grammar(&tools, &ToolChoice::Auto, true), Ok(None));
        assert_eq!(ToolFormat::Hermes.grammar(&tools, &ToolChoice::None, true), Ok(None));
        let Some(CallGrammar { grammar: Grammar::Lark(lark), .. }) =
            ToolFormat::Hermes.grammar(&tools, &ToolChoice::Required, true).unwrap()
        else {
            panic!("no grammar")
        };
        let mut lines = lark.lines();
        assert_eq!(lines.clone().nth(FIRST_TOOL_LINE - 1).map(|line| line.starts_with("call_0:")), Some(true));
        assert_eq!(lines.next(), Some(r#"start: call ("\n" call)*"#));
        assert_eq!(lines.next(), Some("call: call_0 | call_1"));
        assert_eq!(
            lines.next(),
            Some(r#"call_0: "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": " args_0 "}\n</tool_call>""#)
        );
        let args = lines.next().unwrap().strip_prefix("args_0: %json ").unwrap();
        let args: Value = serde_json::from_str(args).unwrap();
        assert_eq!(args["type"], "object");
        assert_eq!(args["x-guidance"]["item_separator"], ", ");
        assert_eq!(
            lines.next(),
            Some(r#"call_1: "<tool_call>\n{\"name\": \"say \\\"hi\\\"\", \"arguments\": " args_1 "}\n</tool_call>""#)
        );

        let named = ToolChoice::Function("get_weather".into());
        let Some(CallGrammar { grammar: Grammar::Lark(lark), .. }) = ToolFormat::LlamaJson.grammar(&tools, &named, true).unwrap()
        else {
            panic!("no grammar")
        };
        assert!(lark.starts_with("start: call\ncall: call_0\ncall_0: \"{\\\"name\\\": \\\"get_weather\\\", \\\"parameters\\\": \" args_0 \"}\"\n"), "{lark}");
        let err = ToolFormat::Hermes.grammar(&tools, &ToolChoice::Function("nope".into()), true).unwrap_err();
        assert_eq!(err, ToolError::UnknownChoice { name: "nope".into() });
    }

    #[test]
    fn compile_errors_name_the_tool() {
        let tools = [Tool::function("a", None, json!({})), Tool::function("b", None, json!({}))];
        let grammar = ToolFormat::Hermes.grammar(&tools, &ToolChoice::Required, false).unwrap().unwrap();
        let at = |line| ConstraintError::GrammarAt {
            line,
            column: 9,
            message: "failed to compile JSON schema: Unimplemented keys: [\"if\"]".into(),
        };
        let err = grammar.explain(at(6));
        assert_eq!(err.to_string(), "the parameters of tool \"b\" cannot be compiled: Unimplemented keys: [\"if\"]");
        assert_eq!(grammar.explain(at(5)), ToolError::Constraint(at(5)));
        assert_eq!(grammar.explain(at(8)), ToolError::Constraint(at(8)));
    }
}
