//! Torchlight's tokenizer against llama.cpp's, on the real SmolLM2 vocabulary: every case of
//! tests/golden/tokenize.json (token ids from `llama_tokenize` and text from
//! `llama_detokenize`, written by tests/golden/make_golden.py) must come out identical, and so
//! must the chat prompts and the model's greedy answers of tests/golden/chat_greedy.json.
//!
//! The model comes from `TORCHLIGHT_TEST_MODEL`, or `<repo>/models/`; when it is missing the
//! tests fail and say how to fetch it, rather than passing without having checked anything.

use std::sync::OnceLock;

mod common;

use common::read_golden;
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
    TOKENIZER.get_or_init(|| {
        Tokenizer::from_gguf(&common::open_model().1).expect("build the tokenizer from the test model")
    })
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

fn golden() -> Vec<Case> {
    let golden: Golden = read_golden("tokenize.json");
    assert!(!golden.cases.is_empty(), "tokenize.json has no cases");
    golden.cases
}

#[test]
fn encode_matches_llama_cpp_on_every_case() {
    let tok = tokenizer();
    let cases = golden();
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
    for c in golden() {
        assert_eq!(tok.decode(&c.ids), c.decoded, "decoding the ids of {:?}", c.text);
        // SmolLM2 adds no BOS and its pieces cover every byte, so text comes back unchanged.
        assert_eq!(c.decoded, c.text);
    }
}

#[test]
fn streaming_one_token_at_a_time_gives_the_same_text() {
    let tok = tokenizer();
    for c in golden() {
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
fn chat_prompts_and_greedy_answers_match_llama_cpp() {
    let tok = tokenizer();
    let chats: Chats = read_golden("chat_greedy.json");
    assert!(!chats.cases.is_empty(), "chat_greedy.json has no cases");
    for chat in chats.cases {
        let ids = tok.encode(&chat.prompt, false, true).expect("encode");
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
