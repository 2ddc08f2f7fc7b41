//! Tokenizers built from tiny synthetic vocabularies, with expectations worked out by hand
//! from llama.cpp's algorithms, and the error paths of `from_gguf`.

use super::*;
use crate::gguf::{Array, ScalarType, Value};

fn gguf(entries: Vec<(&str, Value)>) -> GgufFile {
    GgufFile {
        version: 3,
        metadata: entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        tensors: vec![],
        data_offset: 0,
        file_len: 0,
    }
}

fn strings<S: AsRef<str>>(items: &[S]) -> Value {
    Value::Array(Array::Strings(items.iter().map(|s| s.as_ref()).collect()))
}

fn scalars(ty: ScalarType, bytes: Vec<u8>) -> Value {
    Value::Array(Array::Scalars { ty, bytes })
}

fn i32s(items: &[i32]) -> Value {
    scalars(ScalarType::I32, items.iter().flat_map(|v| v.to_le_bytes()).collect())
}

fn f32s(items: &[f32]) -> Value {
    scalars(ScalarType::F32, items.iter().flat_map(|v| v.to_le_bytes()).collect())
}

fn text(s: &str) -> Value {
    Value::String(s.to_string())
}

/// A SentencePiece vocabulary: `<unk> <s> </s>`, the 256 byte tokens, then `normal` with
/// their scores (higher merges first).
fn sentencepiece_file(normal: &[(&str, f32)]) -> GgufFile {
    let mut tokens = vec!["<unk>".to_string(), "<s>".into(), "</s>".into()];
    let mut types = vec![2, 3, 3];
    let mut scores = vec![0.0; 3];
    for byte in 0..=255u8 {
        tokens.push(format!("<0x{byte:02X}>"));
        types.push(6);
        scores.push(0.0);
    }
    for &(t, score) in normal {
        tokens.push(t.to_string());
        types.push(1);
        scores.push(score);
    }
    gguf(vec![
        ("tokenizer.ggml.model", text("llama")),
        ("tokenizer.ggml.tokens", strings(&tokens)),
        ("tokenizer.ggml.token_type", i32s(&types)),
        ("tokenizer.ggml.scores", f32s(&scores)),
    ])
}

const SPM_WORDS: &[(&str, f32)] = &[
    ("▁", -1.0),
    ("h", -2.0),
    ("e", -3.0),
    ("l", -4.0),
    ("o", -5.0),
    ("ll", -9.0),
    ("he", -10.0),
    ("▁h", -11.0),
    ("llo", -12.0),
    ("lo", -13.0),
    ("▁he", -14.0),
];

fn spm_id(t: &str) -> u32 {
    3 + 256 + SPM_WORDS.iter().position(|&(w, _)| w == t).unwrap() as u32
}

#[test]
fn sentencepiece_merges_by_score_not_position() {
    let tok = Tokenizer::from_gguf(&sentencepiece_file(SPM_WORDS)).unwrap();
    // "▁hello": "ll" (-9) merges first, then "he" (-10), which takes the "h" that "▁h" (-11)
    // wanted; "llo" (-12) beats "lo" (-13); "▁he" (-14) ends it. Leftmost-first would give
    // "▁h" "e" ... instead.
    let ids = tok.encode("hello", false, false).unwrap();
    assert_eq!(ids, [spm_id("▁he"), spm_id("llo")]);
    assert_eq!(tok.decode(&ids), "hello");
}

#[test]
fn sentencepiece_bos_space_prefix_and_byte_fallback() {
    let tok = Tokenizer::from_gguf(&sentencepiece_file(SPM_WORDS)).unwrap();
    assert_eq!((tok.bos_id(), tok.eos_id()), (Some(1), Some(2)));
    // BOS by default for SentencePiece; "é" is not a token, so its two UTF-8 bytes are used.
    let ids = tok.encode("hé", true, false).unwrap();
    assert_eq!(ids, [1, spm_id("▁h"), 3 + 0xC3, 3 + 0xA9]);
    assert_eq!(tok.decode(&ids), "<s> hé");
    assert_eq!(tok.encode("", true, false).unwrap(), [1]);

    // Text after a special token starts a word again.
    let ids = tok.encode("<s>he</s>he", false, true).unwrap();
    assert_eq!(ids, [1, spm_id("▁he"), 2, spm_id("▁he")]);
    // Without parse_special the control token is plain text: "<", "s", ">" are bytes here.
    let ids = tok.encode("<s>", false, false).unwrap();
    assert_eq!(ids, [spm_id("▁"), 3 + b'<' as u32, 3 + b's' as u32, 3 + b'>' as u32]);

    assert!(tok.is_end_of_generation(2));
    assert!(!tok.is_end_of_generation(1));
}

#[test]
fn text_stream_holds_back_split_characters() {
    let tok = Tokenizer::from_gguf(&sentencepiece_file(SPM_WORDS)).unwrap();
    let mut stream = TextStream::new(&tok);
    assert_eq!(stream.push(spm_id("▁h")), "h");
    assert_eq!(stream.push(3 + 0xC3), "");
    assert_eq!(stream.push(3 + 0xA9), "é");
    // A lone continuation byte can never complete: it is replaced at once.
    assert_eq!(stream.push(3 + 0xA9), "\u{FFFD}");
    assert_eq!(stream.push(3 + 0xE2), "");
    assert_eq!(stream.finish(), "\u{FFFD}");
}

/// A byte-level BPE vocabulary in GPT-2's alphabet (`Ġ` is a space).
fn bpe_file(extra: Vec<(&str, Value)>) -> GgufFile {
    let tokens = [
        "<|endoftext|>",
        "<|im_end|>",
        "h",
        "e",
        "l",
        "o",
        "Ġ",
        "w",
        "r",
        "d",
        "!",
        "he",
        "ll",
        "llo",
        "hello",
        "Ġw",
        "or",
        "ld",
        "Ġwor",
        "Ġworld",
        "Ġ!",
    ];
    let merges = ["h e", "l l", "ll o", "he llo", "Ġ w", "o r", "l d", "Ġw or", "Ġwor ld", "Ġ !"];
    let mut types = vec![1; tokens.len()];
    types[0] = 3;
    types[1] = 3;
    let mut entries = vec![
        ("tokenizer.ggml.model", text("gpt2")),
        ("tokenizer.ggml.pre", text("gpt-2")),
        ("tokenizer.ggml.tokens", strings(&tokens)),
        ("tokenizer.ggml.token_type", i32s(&types)),
        ("tokenizer.ggml.merges", strings(&merges)),
        ("tokenizer.ggml.bos_token_id", Value::U32(0)),
        ("tokenizer.ggml.eos_token_id", Value::U32(0)),
    ];
    for (key, value) in extra {
        entries.retain(|(k, _)| *k != key);
        entries.push((key, value));
    }
    gguf(entries)
}

#[test]
fn byte_level_bpe_round_trips_and_knows_its_end_tokens() {
    let tok = Tokenizer::from_gguf(&bpe_file(vec![])).unwrap();
    assert_eq!(tok.encode("hello world", false, false).unwrap(), [14, 19]);
    // gpt-2 files add no BOS unless they say so.
    assert_eq!(tok.encode("hello", true, false).unwrap(), [14]);
    assert_eq!(tok.encode("hello<|im_end|>", false, true).unwrap(), [14, 1]);
    assert_eq!(tok.decode(&[14, 19, 1]), "hello world<|im_end|>");
    // The gpt-2 family cleans up " !" when detokenizing, as llama.cpp does.
    assert_eq!(tok.encode("hello !", false, false).unwrap(), [14, 20]);
    assert_eq!(tok.decode(&[14, 20]), "hello!");
    assert!(tok.is_end_of_generation(0) && tok.is_end_of_generation(1));
    assert!(!tok.is_end_of_generation(14));
    assert_eq!(tok.vocab_size(), 21);

    let with_bos = Tokenizer::from_gguf(&bpe_file(vec![("tokenizer.ggml.add_bos_token", Value::Bool(true))])).unwrap();
    assert_eq!(with_bos.encode("hello", true, false).unwrap(), [0, 14]);
    assert_eq!(with_bos.encode("hello", false, false).unwrap(), [14]);
}

fn error(file: GgufFile) -> String {
    Tokenizer::from_gguf(&file).unwrap_err().to_string()
}

#[test]
fn errors_name_what_is_wrong() {
    let msg = error(bpe_file(vec![("tokenizer.ggml.model", text("bert"))]));
    assert!(msg.contains("unsupported tokenizer model \"bert\""), "{msg}");

    let msg = error(bpe_file(vec![("tokenizer.ggml.pre", text("klingon"))]));
    assert!(msg.contains("unknown pre-tokenizer \"klingon\"") && msg.contains("smollm"), "{msg}");

    let mut file = bpe_file(vec![]);
    file.metadata.remove("tokenizer.ggml.tokens");
    let msg = error(file);
    assert!(msg.contains("tokenizer.ggml.tokens") && msg.contains("missing"), "{msg}");

    let mut file = bpe_file(vec![]);
    file.metadata.remove("tokenizer.ggml.merges");
    assert!(error(file).contains("tokenizer.ggml.merges"));

    let msg = error(bpe_file(vec![("tokenizer.ggml.merges", strings(&["h e", "ll"]))]));
    assert!(msg.contains("bad merges entry 1 (\"ll\")"), "{msg}");

    let msg = error(bpe_file(vec![("tokenizer.ggml.tokens", strings(&["a", "b", "a"]))]));
    assert!(msg.contains("duplicate token \"a\"") && msg.contains("0 and 2"), "{msg}");

    let msg = error(bpe_file(vec![("tokenizer.ggml.token_type", i32s(&[1]))]));
    assert!(msg.contains("tokenizer.ggml.token_type has 1 entries"), "{msg}");

    let msg = error(bpe_file(vec![("tokenizer.ggml.tokens", scalars(ScalarType::U8, vec![1]))]));
    assert!(msg.contains("tokenizer.ggml.tokens[0] is u8, expected a string"), "{msg}");

    let msg = error(bpe_file(vec![("tokenizer.ggml.tokens", strings::<&str>(&[]))]));
    assert!(msg.contains("empty"), "{msg}");

    // BOS is asked for, but the id is out of range and gpt2's default (11) is too.
    let msg = error(bpe_file(vec![
        ("tokenizer.ggml.tokens", strings(&["h", "e", "he"])),
        ("tokenizer.ggml.token_type", i32s(&[1; 3])),
        ("tokenizer.ggml.merges", strings(&["h e"])),
        ("tokenizer.ggml.bos_token_id", Value::U32(7)),
        ("tokenizer.ggml.add_bos_token", Value::Bool(true)),
    ]));
    assert!(msg.contains("add_bos_token is true"), "{msg}");

    let msg = error(bpe_file(vec![("tokenizer.ggml.add_bos_token", text("yes"))]));
    assert!(msg.contains("add_bos_token") && msg.contains("bool"), "{msg}");
}
