//! Turning tokens back into bytes the way llama.cpp's `token_to_piece` and `detokenize` do,
//! with special tokens rendered as their text.

use super::vocab::{Kind, Vocab};

/// The bytes each token stands for.
#[derive(Debug)]
pub(crate) struct Pieces {
    by_id: Vec<Box<[u8]>>,
    /// Control and unknown tokens, sorted: their pieces are names, not text the model wrote.
    controls: Vec<u32>,
    /// SentencePiece encoding put a space in front of the text, which the first piece drops.
    strip_first_space: bool,
}

/// What one token stands for, as a grammar sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'v> {
    /// Bytes of text (possibly part of a character, or none for an unused token).
    Text(&'v [u8]),
    /// A control token (`<|im_end|>`): its name, which no text can spell.
    Control(&'v [u8]),
}

impl Pieces {
    pub fn new(vocab: &Vocab, sentencepiece: bool, strip_first_space: bool) -> Self {
        let byte_of = byte_level_inverse();
        let by_id = vocab
            .texts
            .iter()
            .zip(&vocab.kinds)
            .map(|(text, &kind)| -> Box<[u8]> {
                match kind {
                    Kind::Control | Kind::Unknown | Kind::UserDefined => text.as_bytes().into(),
                    Kind::Normal if sentencepiece => text.replace('▁', " ").into_bytes().into(),
                    Kind::Normal => byte_level_decode(text, &byte_of).into(),
                    // `<0xNN>`; llama.cpp reads the two hex digits without checking the rest.
                    Kind::Byte => match text.get(3..5).and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                        Some(byte) => Box::new([byte]),
                        None => text.as_bytes().into(),
                    },
                    // llama.cpp renders nothing for token types it does not know how to show.
                    Kind::Unused | Kind::Undefined => Box::new([]),
                }
            })
            .collect();
        let controls = (0..vocab.len() as u32)
            .filter(|&id| matches!(vocab.kinds[id as usize], Kind::Control | Kind::Unknown))
            .collect();
        Self { by_id, controls, strip_first_space }
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// The bytes of `id` (none for an id outside the vocabulary), `first` in its text.
    pub fn get(&self, id: u32, first: bool) -> &[u8] {
        let piece = self.by_id.get(id as usize).map_or(&[][..], |p| p);
        match piece {
            [b' ', rest @ ..] if first && self.strip_first_space => rest,
            _ => piece,
        }
    }

    /// What `id` stands for anywhere but first in a text (none for an id outside the vocabulary).
    pub fn piece(&self, id: u32) -> Piece<'_> {
        let bytes = self.get(id, false);
        if self.controls.binary_search(&id).is_ok() {
            Piece::Control(bytes)
        } else {
            Piece::Text(bytes)
        }
    }
}

/// GPT-2's byte-level alphabet, inverted: the byte each stand-in character means. Printable
/// Latin-1 bytes stand for themselves; the rest are given the code points from U+0100 on, in
/// byte order, so that no byte is written as whitespace or a control character.
fn byte_level_inverse() -> Vec<Option<u8>> {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut inverse = vec![None; 256 + 68];
    let mut next = 256;
    for byte in 0..=255u8 {
        if printable(byte) {
            inverse[byte as usize] = Some(byte);
        } else {
            inverse[next] = Some(byte);
            next += 1;
        }
    }
    inverse
}

fn byte_level_decode(text: &str, byte_of: &[Option<u8>]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(text.len());
    for c in text.chars() {
        match byte_of.get(c as usize).copied().flatten() {
            Some(b) => bytes.push(b),
            // Not a byte-level character: llama.cpp writes a marker naming it and the token.
            None => {
                let hex: String = c.to_string().bytes().map(|b| format!("{b:02x}")).collect();
                bytes.extend_from_slice(format!("[UNK_BYTE_0x{hex}{text}]").as_bytes());
            }
        }
    }
    bytes
}

/// llama.cpp's `clean_spaces` for detokenized text: drops the space before `?`, `!`, `.` and
/// `,`; turns " ' " into "'"; and glues " 's", " 'm", " 're" and " 've" to the word before.
pub(crate) fn clean_spaces(text: &[u8]) -> Vec<u8> {
    let mut text = text.to_vec();
    // The first byte is always kept, as in llama.cpp.
    let mut out = Vec::with_capacity(text.len());
    for (i, &x) in text.iter().enumerate() {
        if i > 0 && text[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
            out.pop();
        }
        out.push(x);
    }

    text = std::mem::take(&mut out);
    let mut i = 0;
    while i < text.len() {
        let x = text[i];
        if i > 0 && x == b'\'' && i + 1 < text.len() && text[i - 1] == b' ' && text[i + 1] == b' ' {
            out.pop();
            // The space after is dropped too, and no longer counts as one for what follows.
            text[i + 1] = 0;
            out.push(x);
            i += 2;
            continue;
        }
        out.push(x);
        i += 1;
    }
    let text = std::mem::take(&mut out);

    let n = text.len();
    for (i, &x) in text.iter().enumerate() {
        if i > 0 && text[i - 1] == b' ' && x == b'\'' && i + 1 < n {
            // " 't", " 'd" and " 'll" keep their space, as in llama.cpp.
            if matches!((text[i + 1], text.get(i + 2)), (b's' | b'm', _) | (b'r' | b'v', Some(b'e'))) {
                out.pop();
            }
        }
        out.push(x);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_alphabet_round_trips_every_byte() {
        let inverse = byte_level_inverse();
        assert_eq!(inverse.iter().flatten().count(), 256);
        assert_eq!(inverse['Ġ' as usize], Some(b' '));
        assert_eq!(inverse['Ċ' as usize], Some(b'\n'));
        assert_eq!(byte_level_decode("ĠhÃ©", &inverse), " hé".as_bytes());
        assert_eq!(byte_level_decode("a☃", &inverse), b"a[UNK_BYTE_0xe29883a\xe2\x98\x83]");
    }

    #[test]
    fn clean_spaces_matches_llama_cpp() {
        let clean = |s: &str| String::from_utf8(clean_spaces(s.as_bytes())).unwrap();
        assert_eq!(clean("Hello , world ! ok ?"), "Hello, world! ok?");
        assert_eq!(clean("rock ' n ' roll"), "rock'n'roll");
        assert_eq!(clean("it 's we 're I 'm they 've"), "it's we're I'm they've");
        assert_eq!(clean("don 't we 'll you 'd"), "don 't we 'll you 'd");
        assert_eq!(clean(" ."), ".");
        assert_eq!(clean(""), "");
    }
}
