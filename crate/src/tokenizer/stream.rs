//! Incremental detokenization for streaming output: a character split across tokens (emoji,
//! CJK in byte-fallback vocabularies) is held back until its last byte arrives.

use std::sync::Arc;

use super::pieces::Pieces;
use super::Tokenizer;

/// Detokenizes one token at a time. Each [`push`](Self::push) returns only text that is
/// complete UTF-8; what it returns over a whole generation, plus [`finish`](Self::finish),
/// equals [`Tokenizer::decode`] of all the tokens, except that `decode` also applies the
/// whole-text space cleanup of vocabularies that ask for it (llama.cpp's `clean_spaces`, which
/// needs to see text after a space before deciding about it).
///
/// It holds its own handle on the vocabulary, so it borrows nothing from the tokenizer.
#[derive(Debug)]
pub struct TextStream {
    pieces: Arc<Pieces>,
    /// Bytes of a character still incomplete (at most 3).
    pending: Vec<u8>,
    first: bool,
}

impl TextStream {
    pub fn new(tokenizer: &Tokenizer) -> Self {
        Self { pieces: Arc::clone(&tokenizer.pieces), pending: Vec::new(), first: true }
    }

    /// Adds one token and returns the text it completes, possibly empty.
    pub fn push(&mut self, id: u32) -> String {
        self.pending.extend_from_slice(self.pieces.get(id, self.first));
        self.first = false;
        self.take_complete()
    }

    /// Ends the stream: bytes of a character that never completed come out as U+FFFD.
    pub fn finish(self) -> String {
        String::from_utf8_lossy(&self.pending).into_owned()
    }

    /// Everything valid in `pending`, invalid sequences replaced like `from_utf8_lossy` does,
    /// keeping back a trailing sequence that may still complete.
    fn take_complete(&mut self) -> String {
        let mut out = String::new();
        let mut rest = &self.pending[..];
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    out.push_str(valid);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    out.push_str(&String::from_utf8_lossy(valid));
                    match e.error_len() {
                        // An unfinished character at the end: wait for the next token.
                        None => {
                            rest = after;
                            break;
                        }
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[bad..];
                        }
                    }
                }
            }
        }
        self.pending = rest.to_vec();
        out
    }
}
