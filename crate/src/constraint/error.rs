/// A constraint that cannot be compiled or followed, in words that name the problem. Everything
/// but `Matcher` comes from the request (a bad schema, grammar or regex): an `invalid_request`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConstraintError {
    #[error("the JSON schema uses {keywords}, which structured output does not support")]
    UnsupportedKeywords { keywords: String },
    #[error("the JSON schema's format \"{format}\" is not supported")]
    UnknownFormat { format: String },
    #[error("the JSON schema cannot be compiled: {message}")]
    Schema { message: String },
    #[error("the grammar is malformed at line {line}, column {column}: {message}")]
    GrammarAt { line: usize, column: usize, message: String },
    #[error("the grammar cannot be compiled: {message}")]
    Grammar { message: String },
    #[error("the regex cannot be compiled: {message}")]
    Regex { message: String },
    #[error("the vocabulary has no end-of-generation token for a constrained answer to end with")]
    NoEndToken,
    /// The parser failed mid-answer (one of llguidance's work limits, say).
    #[error("the constraint failed during generation: {message}")]
    Matcher { message: String },
}

/// What a grammar was given as, which decides how its compile errors read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    JsonSchema,
    Lark,
    Regex,
}

impl ConstraintError {
    /// Sorts one of llguidance's compile errors (text only) by what it says. Its first line
    /// carries the message; the lines after it draw the grammar around the problem.
    pub(crate) fn compile(source: Source, error: &str) -> Self {
        let first = error.lines().next().unwrap_or_default().trim();
        // A regex error (in a regex, a schema's pattern or a grammar's terminal) says what is
        // wrong on a later line of its own.
        let cause = error.lines().find_map(|line| line.strip_prefix("error: "));
        let explain = |message: &str| match cause {
            Some(cause) => format!("{message} {cause}"),
            None => message.to_string(),
        };
        let message = explain(first);
        match source {
            Source::JsonSchema => {
                if let Some(keys) = after(first, "Unimplemented keys: ") {
                    ConstraintError::UnsupportedKeywords { keywords: keys.to_string() }
                } else if let Some(format) = after(first, "Unknown format: ") {
                    ConstraintError::UnknownFormat { format: format.to_string() }
                } else {
                    ConstraintError::Schema { message }
                }
            }
            Source::Lark => match location(first) {
                Some((line, column, message)) => ConstraintError::GrammarAt { line, column, message: explain(&message) },
                None => ConstraintError::Grammar { message },
            },
            // A regex is compiled as a one-line Lark grammar, whose positions mean nothing here.
            Source::Regex => ConstraintError::Regex {
                message: location(first).map_or(message, |(_, _, message)| explain(&message)),
            },
        }
    }
}

/// The rest of `text` after `marker`, wherever the marker is (llguidance prefixes context).
fn after<'t>(text: &'t str, marker: &str) -> Option<&'t str> {
    text.find(marker).map(|at| &text[at + marker.len()..])
}

/// llguidance's Lark errors start "LINE(COLUMN): message" or "at LINE(COLUMN): message".
fn location(text: &str) -> Option<(usize, usize, String)> {
    let text = text.strip_prefix("at ").unwrap_or(text);
    let (line, rest) = text.split_once('(')?;
    let (column, rest) = rest.split_once("):")?;
    Some((line.parse().ok()?, column.parse().ok()?, rest.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_llguidance_messages() {
        let e = ConstraintError::compile(Source::JsonSchema, "Unimplemented keys: [\"if\"]");
        assert_eq!(e, ConstraintError::UnsupportedKeywords { keywords: "[\"if\"]".into() });
        let e = ConstraintError::compile(Source::Lark, "3(7): unknown name: foo\n   3 | start: foo\n");
        assert_eq!(e, ConstraintError::GrammarAt { line: 3, column: 7, message: "unknown name: foo".into() });
        let e = ConstraintError::compile(Source::Lark, "at 1(2): lexer error");
        assert_eq!(e, ConstraintError::GrammarAt { line: 1, column: 2, message: "lexer error".into() });
        let regex = "at 1(8): invalid regex \"a(b\" (in regex): regex parse error:\n    a(b\n     ^\n\
            error: unclosed group\n   1 | start: /a(b/\n              ^\n";
        let e = ConstraintError::compile(Source::Regex, regex);
        let message = "invalid regex \"a(b\" (in regex): regex parse error: unclosed group".into();
        assert_eq!(e, ConstraintError::Regex { message });
        let e = ConstraintError::compile(Source::Lark, "at EOF: expected rule");
        assert_eq!(e, ConstraintError::Grammar { message: "at EOF: expected rule".into() });
    }
}
