//! OpenAI's `logprobs.content`: each answer token's log probability and its alternatives, with
//! the token as text and as bytes (a token may hold part of a character).

use serde::Serialize;

use crate::sample::TokenLogprob;
use crate::tokenizer::{Piece, Tokenizer};

/// One token of the answer.
#[derive(Serialize)]
pub struct LogprobEntry {
    #[serde(flatten)]
    token: TokenText,
    logprob: f32,
    top_logprobs: Vec<TopLogprob>,
}

#[derive(Serialize)]
struct TopLogprob {
    #[serde(flatten)]
    token: TokenText,
    logprob: f32,
}

#[derive(Serialize)]
struct TokenText {
    /// The bytes as text, any part of a character replaced by U+FFFD, as OpenAI does.
    token: String,
    bytes: Vec<u8>,
}

impl TokenText {
    fn new(tokenizer: &Tokenizer, id: u32) -> Self {
        let (Piece::Text(bytes) | Piece::Control(bytes)) = tokenizer.piece(id);
        Self { token: String::from_utf8_lossy(bytes).into_owned(), bytes: bytes.to_vec() }
    }
}

/// The entries for an answer's tokens, in order.
pub fn entries(tokenizer: &Tokenizer, logprobs: &[TokenLogprob]) -> Vec<LogprobEntry> {
    logprobs
        .iter()
        .map(|l| LogprobEntry {
            token: TokenText::new(tokenizer, l.token),
            logprob: l.logprob,
            top_logprobs: l
                .top
                .iter()
                .map(|&(id, logprob)| TopLogprob { token: TokenText::new(tokenizer, id), logprob })
                .collect(),
        })
        .collect()
}
