//! The model's vocabulary as llguidance sees it: every token id's exact bytes in a token trie,
//! and the parser factory built over it. Built once per model; each request's grammar is then
//! compiled against it.

use std::sync::Arc;

use llguidance::api::TopLevelGrammar;
use llguidance::toktrie::{TokEnv, TokRxInfo, TokTrie, TokenId, TokenizerEnv};
use llguidance::{JsonCompileOptions, Matcher, ParserFactory};
use serde_json::{json, Value};

use super::error::Source;
use super::{Constraint, ConstraintError, Grammar};
use crate::tokenizer::{Piece, Tokenizer};

pub struct GrammarVocabulary {
    factory: ParserFactory,
}

impl GrammarVocabulary {
    pub fn new(tokenizer: Arc<Tokenizer>) -> Result<Self, ConstraintError> {
        let words: Vec<Vec<u8>> = (0..tokenizer.vocab_size() as u32)
            .map(|id| match tokenizer.piece(id) {
                Piece::Text(bytes) => bytes.to_vec(),
                // llguidance's mark for a special token: no text starts with 0xFF, so a grammar
                // never matches one by accident.
                Piece::Control(name) => [&[TokTrie::SPECIAL_TOKEN_MARKER], name].concat(),
            })
            .collect();
        let ends = tokenizer.end_of_generation();
        let eos = tokenizer.eos_id().filter(|id| ends.contains(id)).or(ends.first().copied());
        let eos = eos.ok_or(ConstraintError::NoEndToken)?;
        let info = TokRxInfo { tok_bos: tokenizer.bos_id(), ..TokRxInfo::new(words.len() as u32, eos) };
        // Any end-of-generation token may end a constrained answer, as it ends any other.
        let trie = TokTrie::from(&info, &words).with_eos_tokens(ends);
        let env: TokEnv = Arc::new(TokenizerBytes { trie, tokenizer });
        let mut factory =
            ParserFactory::new_simple(&env).map_err(|e| ConstraintError::Grammar { message: e.to_string() })?;
        // Errors come back as values; nothing is printed.
        factory.quiet();
        Ok(Self { factory })
    }

    /// The start of an answer that must follow `grammar`.
    pub fn compile(&self, grammar: &Grammar) -> Result<Constraint, ConstraintError> {
        let (top, source) = match grammar {
            Grammar::JsonObject => (TopLevelGrammar::from_json_schema(compact(json!({"type": "object"}))), Source::JsonSchema),
            Grammar::JsonSchema(schema) => (TopLevelGrammar::from_json_schema(compact(schema.clone())), Source::JsonSchema),
            Grammar::Lark(lark) => (TopLevelGrammar::from_lark(lark.clone()), Source::Lark),
            Grammar::Regex(regex) => (TopLevelGrammar::from_regex(regex), Source::Regex),
        };
        let parser = self.factory.create_parser(top).map_err(|e| ConstraintError::compile(source, &e.to_string()))?;
        Ok(Constraint::new(Matcher::new(Ok(parser))))
    }

    pub fn vocab_size(&self) -> usize {
        self.factory.tok_env().tok_trie().vocab_size()
    }
}

/// JSON without optional whitespace (`{"a":1,"b":[2,3]}`), as OpenAI writes it, unless the schema
/// asks otherwise through llguidance's `x-guidance` options: a small model given the freedom
/// tends to spend its tokens on runs of newlines and spaces, and may never close the object.
fn compact(mut schema: Value) -> Value {
    // `true` matches anything, as `{}` does; only an object can carry the options.
    if schema == Value::Bool(true) {
        schema = json!({});
    }
    if let Some(object) = schema.as_object_mut() {
        if !object.contains_key("x-guidance") {
            JsonCompileOptions { whitespace_flexible: false, ..JsonCompileOptions::default() }.apply_to(&mut schema);
        }
    }
    schema
}

/// Token bytes plus the model's own tokenizer, so that text the grammar forces is split into
/// tokens exactly as the model would have written it.
struct TokenizerBytes {
    trie: TokTrie,
    tokenizer: Arc<Tokenizer>,
}

impl TokenizerEnv for TokenizerBytes {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        // Bytes that are not whole UTF-8 (a character the grammar cut) cannot go through the
        // text tokenizer; the trie's longest-match split spells them in tokens all the same.
        std::str::from_utf8(s)
            .ok()
            .and_then(|text| self.tokenizer.encode_continuation(text).ok())
            .unwrap_or_else(|| self.trie.greedy_tokenize(s))
    }
}
