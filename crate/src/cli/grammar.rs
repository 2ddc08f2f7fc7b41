use std::path::{Path, PathBuf};

use torchlight::constraint::Grammar;

use super::CliError;

/// What the answer must match: at most one of these.
#[derive(Clone, clap::Args)]
#[group(multiple = false)]
pub struct GrammarArgs {
    /// Answer with JSON that validates against the JSON schema in this file.
    #[arg(long, value_name = "FILE")]
    json_schema: Option<PathBuf>,
    /// Answer with any JSON object (OpenAI's `json_object`).
    #[arg(long)]
    json_object: bool,
    /// Answer in the grammar in this file (llguidance's Lark syntax: `start: ...`).
    #[arg(long, value_name = "FILE")]
    grammar: Option<PathBuf>,
    /// Answer with text that matches this regular expression as a whole.
    #[arg(long)]
    regex: Option<String>,
}

impl GrammarArgs {
    pub fn grammar(&self) -> Result<Option<Grammar>, CliError> {
        Ok(if let Some(path) = &self.json_schema {
            let text = read(path)?;
            let schema = serde_json::from_str(&text)
                .map_err(|source| CliError::Schema { path: path.display().to_string(), source })?;
            Some(Grammar::JsonSchema(schema))
        } else if self.json_object {
            Some(Grammar::JsonObject)
        } else if let Some(path) = &self.grammar {
            Some(Grammar::Lark(read(path)?))
        } else {
            self.regex.clone().map(Grammar::Regex)
        })
    }
}

fn read(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|source| CliError::Open { path: path.display().to_string(), source })
}
