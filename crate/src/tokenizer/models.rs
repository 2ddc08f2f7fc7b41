//! The `tokenizers` pipelines that reproduce llama.cpp's two tokenization algorithms on the text
//! between special tokens: byte-level BPE with ranked merges (`gpt2`), and SentencePiece's
//! score-ordered merges with byte fallback (`llama`).

use std::collections::HashSet;

use tokenizers::models::bpe::{Vocab as BpeVocab, BPE};
use tokenizers::normalizers::replace::Replace;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

use super::pre::PreTokenizer;
use super::vocab::{bad_entry, Vocab, MERGES};
use super::TokenizerError;
use crate::gguf::GgufFile;

fn bpe_vocab(vocab: &Vocab) -> BpeVocab {
    vocab.ids.iter().map(|(text, &id)| (text.clone(), id)).collect()
}

/// Byte-level BPE: the pre-tokenizer's regexes split the text, each word is mapped to GPT-2's
/// printable stand-ins for bytes, and the ranked merges of `tokenizer.ggml.merges` run on it.
pub(crate) fn byte_level_bpe(vocab: &Vocab, file: &GgufFile, pre: &PreTokenizer) -> Result<Tokenizer, TokenizerError> {
    let mut merges = Vec::new();
    let mut seen = HashSet::new();
    for (index, entry) in file.array(MERGES)?.iter().enumerate() {
        let entry = entry.as_str().ok_or_else(|| bad_entry(MERGES, index, "a string", entry))?;
        // The separator is the first space after the first byte, as llama.cpp splits it.
        let split = entry.bytes().skip(1).position(|b| b == b' ').map(|p| p + 1);
        let Some(at) = split else {
            return Err(TokenizerError::BadMerge { index, entry: entry.to_string() });
        };
        let (left, right) = (&entry[..at], &entry[at + 1..]);
        // `tokenizers` cannot express a merge whose halves or result are not tokens, so such
        // merges are left out (llama.cpp would apply one and spell its result in byte tokens
        // if it never grew into a token; converted vocabularies have none). A repeated pair
        // keeps its first, best rank, as llama.cpp's map does.
        let in_vocab = |t: &str| vocab.ids.contains_key(t);
        if in_vocab(left) && in_vocab(right) && in_vocab(&format!("{left}{right}")) && seen.insert((left, right)) {
            merges.push((left.to_string(), right.to_string()));
        }
    }
    let model = BPE::builder()
        .vocab_and_merges(bpe_vocab(vocab), merges)
        .ignore_merges(pre.ignore_merges)
        .build()
        .map_err(TokenizerError::Build)?;

    let mut steps = pre
        .regexes
        .iter()
        .map(|regex| {
            Split::new(SplitPattern::Regex(regex.to_string()), SplitDelimiterBehavior::Isolated, false)
                .map(PreTokenizerWrapper::from)
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(TokenizerError::Build)?;
    // The regexes already split the text; this step only maps bytes to their stand-ins.
    steps.push(ByteLevel::new(false, false, false).into());

    let mut tokenizer = Tokenizer::new(model);
    tokenizer.with_pre_tokenizer(Some(Sequence::new(steps)));
    Ok(tokenizer)
}

/// SentencePiece as llama.cpp runs it: spaces become `▁`, then, starting from single
/// characters, the adjacent pair whose concatenation is the highest-scoring token merges first;
/// characters no token covers fall back to `<0xNN>` byte tokens. That is BPE whose merge ranks
/// follow the merged token's score, so the merges are derived from the vocabulary: every way
/// of cutting a token into two tokens, ranked by the whole token's score.
///
/// One difference remains by construction: llama.cpp breaks a tie between equal scores by
/// position (leftmost first), while ranks here are all distinct, so merges of equal score
/// (two ways of cutting one token included) are ordered by token id and cut position instead.
/// That can only matter where two such merges compete for the same characters; Llama-family
/// vocabularies score their tokens by distinct merge order, where it cannot.
pub(crate) fn sentencepiece(vocab: &Vocab, scores: &[f32]) -> Result<Tokenizer, TokenizerError> {
    let mut ranked = Vec::new();
    for (id, text) in vocab.texts.iter().enumerate() {
        for (at, _) in text.char_indices().skip(1) {
            let (left, right) = text.split_at(at);
            if vocab.ids.contains_key(left) && vocab.ids.contains_key(right) {
                ranked.push((scores[id], id, at));
            }
        }
    }
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let merges = ranked
        .into_iter()
        .map(|(_, id, at)| {
            let (left, right) = vocab.texts[id].split_at(at);
            (left.to_string(), right.to_string())
        })
        .collect();

    let model = BPE::builder()
        .vocab_and_merges(bpe_vocab(vocab), merges)
        .byte_fallback(true)
        .build()
        .map_err(TokenizerError::Build)?;
    let mut tokenizer = Tokenizer::new(model);
    tokenizer.with_normalizer(Some(Replace::new(" ", "▁").map_err(TokenizerError::Build)?));
    Ok(tokenizer)
}
