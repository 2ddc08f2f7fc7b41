//! OpenAI's `response_format`, which a request body deserializes straight into.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Grammar;

/// How the answer is shaped: `{"type": "text"}`, `{"type": "json_object"}` or
/// `{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema { json_schema: JsonSchemaFormat },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonSchemaFormat {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Absent, as OpenAI allows, it is the schema every JSON value matches.
    #[serde(default = "any_json")]
    pub schema: Value,
    /// Accepted for compatibility: the answer always follows the schema exactly, strict or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

fn any_json() -> Value {
    Value::Bool(true)
}

impl ResponseFormat {
    /// The grammar the answer must follow; none for plain text.
    pub fn grammar(&self) -> Option<Grammar> {
        match self {
            ResponseFormat::Text => None,
            ResponseFormat::JsonObject => Some(Grammar::JsonObject),
            ResponseFormat::JsonSchema { json_schema } => Some(Grammar::JsonSchema(json_schema.schema.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_openai_shapes() {
        let read = |v: Value| serde_json::from_value::<ResponseFormat>(v).unwrap().grammar();
        assert_eq!(read(json!({"type": "text"})), None);
        assert_eq!(read(json!({"type": "json_object"})), Some(Grammar::JsonObject));
        let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}}});
        let format = json!({"type": "json_schema", "json_schema": {"name": "a", "schema": schema, "strict": true}});
        assert_eq!(read(format), Some(Grammar::JsonSchema(schema)));
        assert_eq!(read(json!({"type": "json_schema", "json_schema": {"name": "any"}})), Some(Grammar::JsonSchema(json!(true))));
        assert!(serde_json::from_value::<ResponseFormat>(json!({"type": "xml"})).is_err());
        assert!(serde_json::from_value::<ResponseFormat>(json!({"type": "json_schema"})).is_err());
    }
}
