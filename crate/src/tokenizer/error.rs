use thiserror::Error;

use crate::gguf::GgufError;

/// Everything that can stop a tokenizer from being built out of a GGUF file, or a text from
/// being tokenized, said so that the reader knows which key or entry is at fault.
#[derive(Debug, Error)]
pub enum TokenizerError {
    /// A required key is missing or has the wrong type.
    #[error("tokenizer metadata: {0}")]
    Metadata(#[from] GgufError),
    #[error(
        "unsupported tokenizer model \"{0}\" (tokenizer.ggml.model): Torchlight reads \"gpt2\" \
         (byte-level BPE) and \"llama\" (SentencePiece) vocabularies"
    )]
    UnsupportedModel(String),
    #[error(
        "unknown pre-tokenizer \"{}\" (tokenizer.ggml.pre); Torchlight knows {}",
        .0,
        super::pre::supported_names().collect::<Vec<_>>().join(", ")
    )]
    UnknownPreTokenizer(String),
    #[error("the vocabulary (tokenizer.ggml.tokens) is empty")]
    EmptyVocabulary,
    #[error("{key}[{index}] is {found}, expected {expected}")]
    BadEntry { key: &'static str, index: usize, expected: &'static str, found: &'static str },
    #[error("{key} has {found} entries, fewer than the {expected} tokens of the vocabulary")]
    TooShort { key: &'static str, found: usize, expected: usize },
    #[error("duplicate token {text:?} in the vocabulary, at ids {first} and {second}")]
    DuplicateToken { text: String, first: u32, second: u32 },
    #[error("bad merges entry {index} ({entry:?}): expected two tokens separated by a space")]
    BadMerge { index: usize, entry: String },
    #[error("{flag} is true, but {id_key} names no token of the vocabulary")]
    MissingSpecialToken { flag: &'static str, id_key: &'static str },
    #[error("could not build the tokenizer: {0}")]
    Build(#[source] tokenizers::Error),
    #[error("could not tokenize the text: {0}")]
    Encode(#[source] tokenizers::Error),
}
