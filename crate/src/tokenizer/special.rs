//! Splitting special tokens out of text before the model tokenizes the rest, the way llama.cpp
//! does it (`tokenizer_st_partition`): each special token in turn, longest first, is cut out of
//! every stretch of text still unsplit, left to right. Control and unknown tokens are only cut
//! when the caller asks for special tokens to be parsed; user-defined tokens always are, as in
//! Hugging Face tokenizers.

use super::vocab::{Kind, Vocab};

/// A stretch of the input: text for the model, or a special token found in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fragment<'t> {
    Text(&'t str),
    Token(u32),
}

#[derive(Debug)]
struct Special {
    id: u32,
    text: String,
    /// Control or unknown: recognized only when parsing special tokens.
    control: bool,
    /// Whitespace after the token is dropped (Phi-3's tokenizer config, which llama.cpp
    /// hard-codes by model name).
    rstrip: bool,
}

#[derive(Debug)]
pub(crate) struct SpecialTokens {
    /// Longest text first, so a token containing another wins over it.
    tokens: Vec<Special>,
}

impl SpecialTokens {
    pub fn new(vocab: &Vocab, rstrip: impl Fn(&str) -> bool) -> Self {
        let mut tokens: Vec<Special> = (0..vocab.len())
            .filter(|&i| vocab.kinds[i].is_special())
            .map(|i| Special {
                id: i as u32,
                text: vocab.texts[i].clone(),
                control: matches!(vocab.kinds[i], Kind::Control | Kind::Unknown),
                rstrip: rstrip(&vocab.texts[i]),
            })
            .collect();
        // llama.cpp sorts by length only (its order among equal lengths is unspecified); the id
        // breaks ties so the result never depends on the sort.
        tokens.sort_by(|a, b| b.text.len().cmp(&a.text.len()).then(a.id.cmp(&b.id)));
        Self { tokens }
    }

    pub fn split<'t>(&self, text: &'t str, parse_special: bool) -> Vec<Fragment<'t>> {
        let mut fragments = if text.is_empty() { vec![] } else { vec![Fragment::Text(text)] };
        for special in self.tokens.iter().filter(|s| parse_special || !s.control) {
            if !fragments.iter().any(|f| matches!(f, Fragment::Text(t) if t.contains(special.text.as_str()))) {
                continue;
            }
            let mut next = Vec::with_capacity(fragments.len() + 2);
            for fragment in fragments {
                match fragment {
                    Fragment::Text(text) => cut(text, special, &mut next),
                    token => next.push(token),
                }
            }
            fragments = next;
        }
        fragments
    }
}

/// Cuts every occurrence of `special` out of `text`, left to right.
fn cut<'t>(mut text: &'t str, special: &Special, out: &mut Vec<Fragment<'t>>) {
    while let Some(at) = text.find(special.text.as_str()) {
        if at > 0 {
            out.push(Fragment::Text(&text[..at]));
        }
        out.push(Fragment::Token(special.id));
        text = &text[at + special.text.len()..];
        if special.rstrip {
            // C's isspace, which llama.cpp uses here: ASCII whitespace only.
            text = text.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
        }
    }
    if !text.is_empty() {
        out.push(Fragment::Text(text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use Fragment::{Text, Token};

    fn vocab(tokens: &[(&str, Kind)]) -> Vocab {
        Vocab {
            texts: tokens.iter().map(|(t, _)| t.to_string()).collect(),
            kinds: tokens.iter().map(|&(_, k)| k).collect(),
            ids: tokens.iter().enumerate().map(|(i, (t, _))| (t.to_string(), i as u32)).collect::<HashMap<_, _>>(),
        }
    }

    #[test]
    fn control_tokens_split_only_when_parsing_specials() {
        let v = vocab(&[("a", Kind::Normal), ("<|im_start|>", Kind::Control), ("<x>", Kind::UserDefined)]);
        let specials = SpecialTokens::new(&v, |_| false);
        let text = "hi<|im_start|>user<x>!";
        assert_eq!(specials.split(text, true), [Text("hi"), Token(1), Text("user"), Token(2), Text("!")]);
        assert_eq!(specials.split(text, false), [Text("hi<|im_start|>user"), Token(2), Text("!")]);
        assert_eq!(specials.split("", true), []);
    }

    #[test]
    fn longest_token_is_cut_first_and_adjacent_tokens_leave_no_empty_text() {
        let v = vocab(&[("<a>", Kind::Control), ("<a><b>", Kind::Control), ("<b>", Kind::Control)]);
        let specials = SpecialTokens::new(&v, |_| false);
        assert_eq!(specials.split("<a><b><b><a>", true), [Token(1), Token(2), Token(0)]);
    }

    #[test]
    fn rstrip_drops_ascii_whitespace_after_the_token() {
        let v = vocab(&[("<|end|>", Kind::Control)]);
        let specials = SpecialTokens::new(&v, |_| true);
        assert_eq!(specials.split("x <|end|> \n y", true), [Text("x "), Token(0), Text("y")]);
    }
}
