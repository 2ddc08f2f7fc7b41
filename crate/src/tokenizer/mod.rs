//! Text to token ids and back, built from the vocabulary inside the GGUF file (never from a
//! `tokenizer.json` or a model hub) so that it tokenizes exactly as llama.cpp does.
//!
//! Two vocabulary kinds are read: `gpt2` (byte-level BPE with the pre-tokenizer regexes
//! `tokenizer.ggml.pre` names) and `llama` (SentencePiece, score-ordered merges with byte
//! fallback). The Hugging Face `tokenizers` crate runs the model proper; around it this module
//! does what llama.cpp does around its own: special tokens are cut out of the text first, BOS
//! and EOS are added as the file says, and detokenization renders pieces like llama.cpp.

mod error;
mod models;
mod pieces;
mod pre;
mod special;
mod stream;
mod vocab;

pub use error::TokenizerError;
pub use pieces::Piece;
pub use stream::TextStream;

use std::sync::Arc;

use crate::gguf::GgufFile;
use pieces::Pieces;
use special::{Fragment, SpecialTokens};
use vocab::{Defaults, SpecialIds, Vocab};

const MODEL: &str = "tokenizer.ggml.model";
const PRE: &str = "tokenizer.ggml.pre";
const ADD_BOS: &str = "tokenizer.ggml.add_bos_token";
const ADD_EOS: &str = "tokenizer.ggml.add_eos_token";
const ADD_SPACE_PREFIX: &str = "tokenizer.ggml.add_space_prefix";

pub struct Tokenizer {
    model: tokenizers::Tokenizer,
    /// SentencePiece (`llama`) rather than byte-level BPE (`gpt2`).
    sentencepiece: bool,
    specials: SpecialTokens,
    /// What each token id detokenizes to; shared with streams.
    pieces: Arc<Pieces>,
    ids: SpecialIds,
    add_bos: bool,
    add_eos: bool,
    /// SentencePiece marks word starts with `▁`, so text gets a leading space before encoding.
    add_space_prefix: bool,
    clean_spaces: bool,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("sentencepiece", &self.sentencepiece)
            .field("bos", &self.ids.bos)
            .field("eos", &self.ids.eos)
            .field("add_bos", &self.add_bos)
            .finish_non_exhaustive()
    }
}

impl Tokenizer {
    pub fn from_gguf(file: &GgufFile) -> Result<Self, TokenizerError> {
        let model_name = file.str(MODEL)?;
        let mut vocab = Vocab::read(file)?;
        // Defaults are llama.cpp's for each vocabulary kind; the file's keys override them.
        let (sentencepiece, model, defaults, add_bos, clean_spaces) = match model_name {
            "gpt2" => {
                let pre_name = file.get(PRE).map(|_| file.str(PRE)).transpose()?;
                let pre = pre::named(pre_name)?;
                let model = models::byte_level_bpe(&vocab, file, &pre)?;
                (false, model, Defaults { bos: Some(11), eos: Some(11) }, pre.add_bos, pre.clean_spaces)
            }
            "llama" => {
                let model = models::sentencepiece(&vocab, &vocab.scores(file)?)?;
                (true, model, Defaults { bos: Some(1), eos: Some(2) }, true, false)
            }
            other => return Err(TokenizerError::UnsupportedModel(other.to_string())),
        };
        let ids = vocab.special_ids(file, defaults)?;
        let add_bos = flag(file, ADD_BOS, add_bos)?;
        let add_eos = flag(file, ADD_EOS, false)?;
        if add_bos && ids.bos.is_none() {
            return Err(TokenizerError::MissingSpecialToken { flag: ADD_BOS, id_key: vocab::BOS_ID });
        }
        if add_eos && ids.eos.is_none() {
            return Err(TokenizerError::MissingSpecialToken { flag: ADD_EOS, id_key: vocab::EOS_ID });
        }

        // Phi-3's special tokens swallow the whitespace after them; llama.cpp knows this only
        // from the model's name, and so does this.
        let name = file.get("general.name").and_then(|v| v.as_str()).unwrap_or("").to_lowercase();
        let phi3 = name.contains("phi-3") || name.contains("phi3");
        let specials = SpecialTokens::new(&vocab, |text| phi3 && !matches!(text, "<unk>" | "<s>" | "<|endoftext|>"));

        // llama.cpp drops the first space when detokenizing whenever the flag is set, even
        // for byte-level vocabularies, which never add it.
        let add_space_prefix = flag(file, ADD_SPACE_PREFIX, sentencepiece)?;
        Ok(Self {
            model,
            sentencepiece,
            specials,
            pieces: Arc::new(Pieces::new(&vocab, sentencepiece, add_space_prefix)),
            ids,
            add_bos,
            add_eos,
            add_space_prefix,
            clean_spaces,
        })
    }

    /// Token ids for `text`. `add_special` frames it with BOS/EOS as the file asks
    /// (`tokenizer.ggml.add_bos_token`, `add_eos_token`); `parse_special` recognizes control
    /// tokens written in the text (`<|im_start|>`) instead of tokenizing them as characters.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Result<Vec<u32>, TokenizerError> {
        self.encode_from(text, add_special, parse_special, true)
    }

    /// Token ids for `text` as it would be written after earlier text: no BOS or EOS, control
    /// tokens as characters, and no SentencePiece space prefix, since no word starts here.
    pub fn encode_continuation(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        self.encode_from(text, false, false, false)
    }

    fn encode_from(
        &self,
        text: &str,
        add_special: bool,
        parse_special: bool,
        at_start: bool,
    ) -> Result<Vec<u32>, TokenizerError> {
        let mut ids = Vec::new();
        if add_special && self.add_bos {
            ids.extend(self.ids.bos);
        }
        let mut after_special = at_start;
        for fragment in self.specials.split(text, parse_special) {
            match fragment {
                Fragment::Token(id) => {
                    ids.push(id);
                    after_special = true;
                }
                Fragment::Text(text) => {
                    // llama.cpp gives the space prefix to the text at the start and to text
                    // right after a special token, where a word starts.
                    let spaced;
                    let text = if self.sentencepiece && self.add_space_prefix && after_special {
                        spaced = format!(" {text}");
                        &spaced
                    } else {
                        text
                    };
                    let encoding = self.model.encode_fast(text, false).map_err(TokenizerError::Encode)?;
                    ids.extend_from_slice(encoding.get_ids());
                    after_special = false;
                }
            }
        }
        if add_special && self.add_eos {
            ids.extend(self.ids.eos);
        }
        Ok(ids)
    }

    /// The text of `ids`, special tokens included as their text, as llama.cpp's
    /// `detokenize(remove_special = false, unparse_special = true)` gives it. Bytes that do not
    /// form UTF-8 become U+FFFD; ids outside the vocabulary render as nothing.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::new();
        for (i, &id) in ids.iter().enumerate() {
            bytes.extend_from_slice(self.pieces.get(id, i == 0));
        }
        if self.clean_spaces {
            bytes = pieces::clean_spaces(&bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.ids.bos
    }

    pub fn eos_id(&self) -> Option<u32> {
        self.ids.eos
    }

    /// Whether generation stops at `id`: EOS, EOT, and the tokens llama.cpp treats as ending a
    /// turn (`<|im_end|>`, `<|eot_id|>`, `<|endoftext|>`, `<end_of_turn>`, ...).
    pub fn is_end_of_generation(&self, id: u32) -> bool {
        self.ids.end_of_generation.binary_search(&id).is_ok()
    }

    /// Every id [`Self::is_end_of_generation`] holds, sorted.
    pub fn end_of_generation(&self) -> &[u32] {
        &self.ids.end_of_generation
    }

    /// What `id` stands for where it does not start the text (there, SentencePiece drops a
    /// space): the exact bytes a grammar matches it against, or a control token's name.
    pub fn piece(&self, id: u32) -> Piece<'_> {
        self.pieces.piece(id)
    }

    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }
}

fn flag(file: &GgufFile, key: &str, default: bool) -> Result<bool, TokenizerError> {
    Ok(match file.get(key) {
        None => default,
        Some(_) => file.bool(key)?,
    })
}

#[cfg(test)]
mod tests;
