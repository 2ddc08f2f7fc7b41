//! Structured output: an answer held, token by token, to a JSON schema, a Lark grammar or a
//! regex, so that it always parses. llguidance (the library llama.cpp, vLLM and SGLang use)
//! compiles the grammar and says, at each step, which tokens may come next and which the grammar
//! forces; [`GrammarVocabulary`] gives it the model's own vocabulary, and the engine masks the
//! logits with [`Constraint`] before sampling.

mod error;
mod format;
mod vocabulary;

pub use error::ConstraintError;
pub use format::{JsonSchemaFormat, ResponseFormat};
pub use vocabulary::GrammarVocabulary;

use llguidance::Matcher;
use web_time::{Duration, Instant};

/// What an answer must match.
#[derive(Debug, Clone, PartialEq)]
pub enum Grammar {
    /// Any JSON object (OpenAI's `json_object`).
    JsonObject,
    /// JSON that validates against this schema (local `$ref`s only: `#/$defs/...`).
    JsonSchema(serde_json::Value),
    /// A grammar in llguidance's Lark dialect (`start: ...`).
    Lark(String),
    /// A regular expression (Rust `regex` syntax) the whole answer must match.
    Regex(String),
}

/// Where one answer has got to in its grammar.
pub struct Constraint {
    matcher: Matcher,
    /// Time spent in the matcher so far.
    busy: Duration,
    /// Tokens `allows` refused.
    refusals: usize,
}

impl Constraint {
    fn new(matcher: Matcher) -> Self {
        Self { matcher, busy: Duration::ZERO, refusals: 0 }
    }

    /// Time spent so far working out what the grammar allows.
    pub fn time(&self) -> Duration {
        self.busy
    }

    fn timed<T>(&mut self, f: impl FnOnce(&mut Matcher) -> T) -> T {
        let start = Instant::now();
        let result = f(&mut self.matcher);
        self.busy += start.elapsed();
        result
    }

    /// The tokens the grammar forces next (a JSON object's fixed keys and punctuation), already
    /// taken as the answer's; often none.
    pub fn forced(&mut self) -> Result<Vec<u32>, ConstraintError> {
        let tokens = self.timed(|m| m.compute_ff_tokens());
        self.check()?;
        if !tokens.is_empty() {
            self.timed(|m| m.consume_tokens(&tokens)).map_err(failed)?;
        }
        Ok(tokens)
    }

    /// Whether `token` may come next: far cheaper than a whole mask, for checking one pick.
    pub fn allows(&mut self, token: u32) -> Result<bool, ConstraintError> {
        let allowed = token < self.vocab_size() as u32 && self.timed(|m| m.validate_tokens(&[token])).map_err(failed)? == 1;
        self.refusals += usize::from(!allowed);
        Ok(allowed)
    }

    /// How many tokens [`Self::allows`] has refused.
    pub fn refusals(&self) -> usize {
        self.refusals
    }

    /// The tokens the grammar allows next, as bits: token `i` is bit `i % 32` of word `i / 32`.
    pub fn allowed(&mut self) -> Result<Vec<u32>, ConstraintError> {
        let allowed = self.timed(|m| m.compute_mask()).map_err(failed)?;
        if allowed.is_zero() {
            return Err(ConstraintError::Matcher { message: "no token can continue the answer".into() });
        }
        Ok(allowed.as_slice().to_vec())
    }

    /// Sets every logit the grammar does not allow next to -inf (rows past the vocabulary too).
    pub fn mask(&mut self, logits: &mut [f32]) -> Result<(), ConstraintError> {
        let allowed = self.allowed()?;
        let start = Instant::now();
        for (i, logit) in logits.iter_mut().enumerate() {
            if allowed.get(i / 32).is_none_or(|w| w >> (i % 32) & 1 == 0) {
                *logit = f32::NEG_INFINITY;
            }
        }
        self.busy += start.elapsed();
        Ok(())
    }

    /// Takes `token` as the answer's next.
    pub fn accept(&mut self, token: u32) -> Result<(), ConstraintError> {
        self.timed(|m| m.consume_token(token)).map_err(failed)
    }

    /// The grammar is complete and nothing may follow: the answer ends here.
    pub fn is_finished(&self) -> bool {
        self.matcher.is_stopped()
    }

    fn vocab_size(&self) -> usize {
        self.matcher.tok_env().map_or(0, |env| env.tok_trie().vocab_size())
    }

    fn check(&self) -> Result<(), ConstraintError> {
        match self.matcher.get_error() {
            Some(message) => Err(ConstraintError::Matcher { message }),
            None => Ok(()),
        }
    }
}

fn failed(e: impl std::fmt::Display) -> ConstraintError {
    ConstraintError::Matcher { message: e.to_string() }
}
