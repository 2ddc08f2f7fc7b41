//! Torchlight's tokenizer against llama.cpp's, on the real SmolLM2 vocabulary (byte-level BPE)
//! and Gemma 3's (SentencePiece, 262,144 tokens): every case of tests/golden/tokenize.json and
//! gemma3_tokenize.json (token ids from `llama_tokenize` and text from `llama_detokenize`,
//! written by tests/golden/make_golden.py) must come out identical, and so must the prompts and
//! the models' greedy answers of chat_greedy.json and gemma3_chat_greedy.json.
//!
//! The model comes from `TORCHLIGHT_TEST_MODEL`, or `<repo>/models/`; when it is missing the
//! tests fail and say how to fetch it, rather than passing without having checked anything.

use std::sync::OnceLock;

mod common;

use common::RealModel;
use serde::Deserialize;
use torchlight::tokenizer::{TextStream, Tokenizer};

#[derive(Deserialize)]
struct Golden {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    add_special: bool,
    parse_special: bool,
    ids: Vec<u32>,
    decoded: String,
}

fn tokenizer() -> &'static Tokenizer {
    static TOKENIZER: OnceLock<Tokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(|| load(&RealModel::smollm2()))
}

fn gemma3_tokenizer() -> &'static Tokenizer {
    static TOKENIZER: OnceLock<Tokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(|| load(&RealModel::gemma3()))
}

fn load(model: &RealModel) -> Tokenizer {
    Tokenizer::from_gguf(&common::open_model_at(&model.path).1).expect("build the tokenizer from the model")
}

#[derive(Deserialize)]
struct Chats {
    cases: Vec<Chat>,
}

#[derive(Deserialize)]
struct Chat {
    name: String,
    prompt: String,
    prompt_ids: Vec<u32>,
    generated: Vec<u32>,
    /// "eos" when `generated` ends with the end-of-generation token that stopped it.
    stop: String,
    text: String,
}

fn golden(model: &RealModel) -> Vec<Case> {
    let golden: Golden = model.golden("tokenize.json");
    assert!(!golden.cases.is_empty(), "tokenize.json has no cases");
    golden.cases
}

#[test]
fn encode_matches_llama_cpp_on_every_case() {
    encode_matches(tokenizer(), &RealModel::smollm2());
}

#[test]
fn gemma3_encode_matches_llama_cpp_on_every_case() {
    encode_matches(gemma3_tokenizer(), &RealModel::gemma3());
}

fn encode_matches(tok: &Tokenizer, model: &RealModel) {
    let cases = golden(model);
    let mismatches: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            let ids = tok.encode(&c.text, c.add_special, c.parse_special).expect("encode");
            (ids != c.ids).then(|| {
                format!(
                    "{:?} (add_special {}, parse_special {}):\n  llama.cpp  {:?}\n  torchlight {:?}",
                    c.text, c.add_special, c.parse_special, c.ids, ids
                )
            })
        })
        .collect();
    assert!(
        mismatches.is_empty(),
        "{} of {} cases differ from llama.cpp:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.join("\n")
    );
}

#[test]
fn decode_matches_llama_cpp_and_round_trips() {
    let tok = tokenizer();
    for c in golden(&RealModel::smollm2()) {
        assert_eq!(tok.decode(&c.ids), c.decoded, "decoding the ids of {:?}", c.text);
        // SmolLM2 adds no BOS and its pieces cover every byte, so text comes back unchanged.
        assert_eq!(c.decoded, c.text);
    }
}

#[test]
fn gemma3_decode_matches_llama_cpp() {
    let tok = gemma3_tokenizer();
    for c in golden(&RealModel::gemma3()) {
        assert_eq!(tok.decode(&c.ids), c.decoded, "decoding the ids of {:?}", c.text);
    }
}

#[test]
fn streaming_one_token_at_a_time_gives_the_same_text() {
    streams(tokenizer(), &RealModel::smollm2());
}

#[test]
fn gemma3_streaming_one_token_at_a_time_gives_the_same_text() {
    streams(gemma3_tokenizer(), &RealModel::gemma3());
}

fn streams(tok: &Tokenizer, model: &RealModel) {
    for c in golden(model) {
        let mut stream = TextStream::new(tok);
        let mut text = String::new();
        for &id in &c.ids {
            let piece = stream.push(id);
            assert!(!piece.contains('\u{FFFD}'), "{:?}: a character was split: {text:?} + {piece:?}", c.text);
            text.push_str(&piece);
        }
        text.push_str(&stream.finish());
        assert_eq!(text, c.decoded);
    }
}

#[test]
fn special_tokens_are_llama_cpps() {
    let tok = tokenizer();
    assert_eq!(tok.vocab_size(), 49152);
    assert_eq!((tok.bos_id(), tok.eos_id()), (Some(1), Some(2)));
    // llama.cpp's end-of-generation set for this file: <|endoftext|>, <|im_end|>, and
    // <reponame>, which it takes for the fill-in-the-middle "repository" marker.
    let eog: Vec<u32> = (0..49152).filter(|&id| tok.is_end_of_generation(id)).collect();
    assert_eq!(eog, [0, 2, 4]);
}

#[test]
fn gemma3_special_tokens_are_llama_cpps() {
    let tok = gemma3_tokenizer();
    assert_eq!(tok.vocab_size(), 262_144);
    assert_eq!((tok.bos_id(), tok.eos_id()), (Some(2), Some(1)));
    // llama.cpp's end-of-generation set (llama_vocab_is_eog over the whole vocabulary): <eos>,
    // <end_of_turn> (106) and </s> (212), which llama.cpp takes for an end-of-text marker by name.
    let eog: Vec<u32> = (0..262_144).filter(|&id| tok.is_end_of_generation(id)).collect();
    assert_eq!(eog, [1, 106, 212]);
}

#[test]
fn chat_prompts_and_greedy_answers_match_llama_cpp() {
    // SmolLM2's chat prompts begin with <|im_start|> and add nothing.
    prompts_and_answers(tokenizer(), &RealModel::smollm2(), false);
}

#[test]
fn gemma3_prompts_and_greedy_answers_match_llama_cpp() {
    // Gemma's plain-text prompts begin with the BOS the vocabulary adds.
    prompts_and_answers(gemma3_tokenizer(), &RealModel::gemma3(), true);
}

fn prompts_and_answers(tok: &Tokenizer, model: &RealModel, add_special: bool) {
    let chats: Chats = model.golden("chat_greedy.json");
    assert!(!chats.cases.is_empty(), "chat_greedy.json has no cases");
    for chat in chats.cases {
        let ids = tok.encode(&chat.prompt, add_special, true).expect("encode");
        assert_eq!(ids, chat.prompt_ids, "prompt of {}", chat.name);
        let answer = match chat.stop.as_str() {
            "eos" => {
                let (&last, answer) = chat.generated.split_last().expect("a stop token");
                assert!(tok.is_end_of_generation(last), "{}: {last} stopped llama.cpp", chat.name);
                answer
            }
            _ => &chat.generated[..],
        };
        assert!(!answer.iter().any(|&id| tok.is_end_of_generation(id)), "{}", chat.name);
        assert_eq!(tok.decode(answer), chat.text, "answer of {}", chat.name);
    }
}
