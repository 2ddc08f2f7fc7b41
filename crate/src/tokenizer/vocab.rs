//! The vocabulary as llama.cpp reads it out of GGUF metadata: token texts and types, scores,
//! the special-token ids with llama.cpp's defaults, and which tokens end generation.

use std::collections::HashMap;

use crate::gguf::{GgufFile, Item};

use super::TokenizerError;

pub(crate) const TOKENS: &str = "tokenizer.ggml.tokens";
const TOKEN_TYPES: &str = "tokenizer.ggml.token_type";
const SCORES: &str = "tokenizer.ggml.scores";
pub(crate) const MERGES: &str = "tokenizer.ggml.merges";
pub(crate) const BOS_ID: &str = "tokenizer.ggml.bos_token_id";
pub(crate) const EOS_ID: &str = "tokenizer.ggml.eos_token_id";

/// A token's type (`tokenizer.ggml.token_type`), which decides how it is split out of text and
/// how it is rendered back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    /// `<0xNN>`: one raw byte, SentencePiece's fallback for text no token covers.
    Byte,
    Undefined,
}

impl Kind {
    fn from_gguf(token_type: i64) -> Kind {
        match token_type {
            1 => Kind::Normal,
            2 => Kind::Unknown,
            3 => Kind::Control,
            4 => Kind::UserDefined,
            5 => Kind::Unused,
            6 => Kind::Byte,
            _ => Kind::Undefined,
        }
    }

    /// Matched in text as a whole before the model tokenizes the rest, and rendered as its own
    /// text when decoded: llama.cpp's "special token cache".
    pub(crate) fn is_special(self) -> bool {
        matches!(self, Kind::Unknown | Kind::Control | Kind::UserDefined)
    }
}

/// Texts that end a turn in some model family. llama.cpp recognizes them by name, because
/// converters rarely record them in metadata, makes them control tokens and stops on them.
const END_OF_GENERATION: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];

/// Fill-in-the-middle markers llama.cpp also recognizes by name when the file gives no id:
/// the metadata key, whether the marker ends generation, and the texts it goes by.
const FILL_IN_THE_MIDDLE: &[(&[&str], bool, &[&str])] = &[
    (
        &["tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.prefix_token_id"],
        false,
        &[
            "<|fim_prefix|>",
            "<fim-prefix>",
            "<fim_prefix>",
            "<｜fim▁begin｜>",
            "<PRE>",
            "▁<PRE>",
            "<|code_prefix|>",
            "<|prefix|>",
        ],
    ),
    (
        &["tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.suffix_token_id"],
        false,
        &[
            "<|fim_suffix|>",
            "<fim-suffix>",
            "<fim_suffix>",
            "<｜fim▁hole｜>",
            "<SUF>",
            "▁<SUF>",
            "<|code_suffix|>",
            "<|suffix|>",
        ],
    ),
    (
        &["tokenizer.ggml.fim_mid_token_id", "tokenizer.ggml.middle_token_id"],
        false,
        &[
            "<|fim_middle|>",
            "<fim-middle>",
            "<fim_middle>",
            "<｜fim▁end｜>",
            "<MID>",
            "▁<MID>",
            "<|code_middle|>",
            "<|middle|>",
        ],
    ),
    (&["tokenizer.ggml.fim_pad_token_id"], true, &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"]),
    (
        &["tokenizer.ggml.fim_rep_token_id"],
        true,
        &["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"],
    ),
    (&["tokenizer.ggml.fim_sep_token_id"], true, &["<|file_sep|>"]),
];

pub(crate) struct Vocab {
    pub texts: Vec<String>,
    pub kinds: Vec<Kind>,
    pub ids: HashMap<String, u32>,
}

impl Vocab {
    pub fn read(file: &GgufFile) -> Result<Self, TokenizerError> {
        let tokens = file.array(TOKENS)?;
        if tokens.is_empty() {
            return Err(TokenizerError::EmptyVocabulary);
        }
        let mut texts = Vec::with_capacity(tokens.len());
        let mut ids = HashMap::with_capacity(tokens.len());
        for (index, value) in tokens.iter().enumerate() {
            let text = value.as_str().ok_or_else(|| bad_entry(TOKENS, index, "a string", value))?;
            // An empty token could never be matched and would make special-token splitting
            // loop; llama.cpp renames it the same way.
            let text = if text.is_empty() { format!("[EMPTY_{index}]") } else { text.to_string() };
            let id = index as u32;
            if let Some(first) = ids.insert(text.clone(), id) {
                return Err(TokenizerError::DuplicateToken { text, first, second: id });
            }
            texts.push(text);
        }
        let kinds = match file.get(TOKEN_TYPES) {
            None => vec![Kind::Normal; texts.len()],
            Some(_) => per_token(file, TOKEN_TYPES, texts.len(), "an integer", |v| v.as_i64().map(Kind::from_gguf))?,
        };
        Ok(Self { texts, kinds, ids })
    }

    pub fn len(&self) -> usize {
        self.texts.len()
    }

    pub fn id(&self, text: &str) -> Option<u32> {
        self.ids.get(text).copied()
    }

    /// SentencePiece scores, higher merging first; 0 for every token when the file has none.
    pub fn scores(&self, file: &GgufFile) -> Result<Vec<f32>, TokenizerError> {
        match file.get(SCORES) {
            None => Ok(vec![0.0; self.len()]),
            Some(_) => per_token(file, SCORES, self.len(), "a number", |v| v.as_f64().map(|s| s as f32)),
        }
    }

    /// Reads the special-token ids (falling back to the model family's defaults, as llama.cpp
    /// does), promotes tokens llama.cpp recognizes by name to control tokens, and returns
    /// which ids end generation.
    pub fn special_ids(&mut self, file: &GgufFile, defaults: Defaults) -> Result<SpecialIds, TokenizerError> {
        let bos = self.id_from(file, BOS_ID, defaults.bos)?;
        let eos = self.id_from(file, EOS_ID, defaults.eos)?;
        let mut end_of_generation = Vec::new();
        end_of_generation.extend(eos);
        for key in ["tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"] {
            end_of_generation.extend(self.id_from(file, key, None)?);
        }
        for &(keys, ends, names) in FILL_IN_THE_MIDDLE {
            // The deprecated key comes second and wins, as in llama.cpp.
            let mut from_key = None;
            for key in keys {
                from_key = self.id_from(file, key, None)?.or(from_key);
            }
            // llama.cpp takes whichever matching name its hash map yields first; the lowest
            // id is the deterministic stand-in (real vocabularies hold one of them at most).
            let id = from_key.or_else(|| {
                let id = names.iter().filter_map(|name| self.id(name)).min()?;
                self.kinds[id as usize] = Kind::Control;
                Some(id)
            });
            if ends {
                end_of_generation.extend(id);
            }
        }
        for name in END_OF_GENERATION {
            if let Some(id) = self.id(name) {
                self.kinds[id as usize] = Kind::Control;
                end_of_generation.push(id);
            }
        }
        end_of_generation.sort_unstable();
        end_of_generation.dedup();
        Ok(SpecialIds { bos, eos, end_of_generation })
    }

    /// The id `key` names, or `default` when the key is absent. Like llama.cpp, an id outside
    /// the vocabulary is ignored in favour of the default, and a default outside it means none.
    fn id_from(&self, file: &GgufFile, key: &str, default: Option<u32>) -> Result<Option<u32>, TokenizerError> {
        let in_vocab = |id: u64| u32::try_from(id).ok().filter(|&id| (id as usize) < self.len());
        let default = default.and_then(|id| in_vocab(id.into()));
        Ok(match file.get(key) {
            None => default,
            Some(_) => in_vocab(file.u64(key)?).or(default),
        })
    }
}

/// Ids llama.cpp assumes for a model family when the file does not say.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Defaults {
    pub bos: Option<u32>,
    pub eos: Option<u32>,
}

#[derive(Debug, Clone)]
pub(crate) struct SpecialIds {
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    /// Sorted and deduplicated.
    pub end_of_generation: Vec<u32>,
}

/// One value per token out of the array at `key`, which may be longer than the vocabulary
/// (llama.cpp reads only the first entries) but not shorter.
fn per_token<T>(
    file: &GgufFile,
    key: &'static str,
    n_tokens: usize,
    expected: &'static str,
    convert: impl Fn(Item) -> Option<T>,
) -> Result<Vec<T>, TokenizerError> {
    let values = file.array(key)?;
    if values.len() < n_tokens {
        return Err(TokenizerError::TooShort { key, found: values.len(), expected: n_tokens });
    }
    values
        .iter()
        .take(n_tokens)
        .enumerate()
        .map(|(index, v)| convert(v).ok_or_else(|| bad_entry(key, index, expected, v)))
        .collect()
}

pub(crate) fn bad_entry(key: &'static str, index: usize, expected: &'static str, found: Item) -> TokenizerError {
    TokenizerError::BadEntry { key, index, expected, found: found.type_name() }
}
