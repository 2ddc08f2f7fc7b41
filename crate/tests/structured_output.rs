//! Structured output on the real test model: every answer constrained by a JSON schema of
//! `data/schemas/` (the kinds apps send, each with a prompt that fits it) must parse and validate
//! with an independent validator (the `jsonschema` crate, formats included), at temperature 0
//! and 1, on the CPU backend and, for a subset, on the GPU. A bad schema, grammar or regex is a
//! typed error; Lark grammars and regexes constrain the text.

mod common;

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;

use common::*;
use serde_json::Value;
use torchlight::chat::{Message, PromptOptions};
use torchlight::constraint::{ConstraintError, Grammar, GrammarVocabulary};
use torchlight::cpu::CpuBackend;
use torchlight::engine::{Engine, FinishReason, GenerateOptions, Generation, LoadOptions};
use torchlight::model::Backend;
use torchlight::sample::SamplingParams;
use torchlight::tokenizer::{Piece, Tokenizer};
use web_time::Instant;

/// Enough for every answer of the corpus: one that runs out is counted apart, and fails.
const MAX_TOKENS: usize = 400;

struct Case {
    name: String,
    prompt: String,
    schema: Value,
}

fn corpus() -> Vec<Case> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/schemas");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let case: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            Case {
                name: path.file_stem().unwrap().to_string_lossy().into_owned(),
                prompt: case["prompt"].as_str().unwrap().to_string(),
                schema: case["schema"].clone(),
            }
        })
        .collect()
}

fn load<B: Backend>(backend: B) -> Engine<B> {
    let (mut source, file) = open_model();
    let options = LoadOptions { context: 1024, ..LoadOptions::default() };
    Engine::load(backend, &file, &mut source, &options, &mut |_| {}).unwrap()
}

fn options(temperature: f32, max_tokens: usize) -> GenerateOptions {
    GenerateOptions {
        max_tokens,
        sampling: SamplingParams { temperature, seed: Some(7), ..SamplingParams::default() },
        stop: Vec::new(),
        ignore_eos: false,
        cache_prompt: true,
        ..GenerateOptions::default()
    }
}

fn answer<B: Backend>(engine: &mut Engine<B>, prompt: &str, grammar: &Grammar, options: &GenerateOptions) -> Generation {
    let message = Message::new("user", prompt);
    let prompt = engine.chat_prompt(&[message], &PromptOptions::default()).unwrap().tokens;
    let constraint = engine.constraint(grammar).unwrap();
    let mut streamed = String::new();
    let generation = pollster::block_on(engine.generate_constrained(&prompt, options, Some(constraint), &mut |text| {
        streamed.push_str(text);
        ControlFlow::Continue(())
    }))
    .unwrap();
    assert_eq!(streamed, generation.text);
    generation
}

#[derive(Default)]
struct Tally {
    validated: usize,
    cut_short: Vec<String>,
    invalid: Vec<String>,
    tokens: usize,
    forced: usize,
    grammar_time: std::time::Duration,
}

/// Runs each case at temperature 0 and at 1 with a seed, and checks every answer.
fn run_corpus<B: Backend>(engine: &mut Engine<B>, cases: &[Case], label: &str) -> Tally {
    let mut tally = Tally::default();
    for case in cases {
        let validator = jsonschema::options().should_validate_formats(true).build(&case.schema).unwrap();
        for temperature in [0.0, 1.0] {
            let g = answer(engine, &case.prompt, &Grammar::JsonSchema(case.schema.clone()), &options(temperature, MAX_TOKENS));
            tally.tokens += g.tokens.len();
            tally.forced += g.forced_tokens;
            tally.grammar_time += g.grammar_time;
            let which = format!("{} at temperature {temperature}", case.name);
            let grammar_ms = g.grammar_time.as_secs_f64() * 1e3 / g.tokens.len().max(1) as f64;
            println!(
                "{label} {which}: {} tokens ({} forced, grammar {grammar_ms:.3} ms/token), {:?}: {}",
                g.tokens.len(),
                g.forced_tokens,
                g.finish_reason,
                g.text
            );
            if g.finish_reason == FinishReason::Length {
                tally.cut_short.push(which);
                continue;
            }
            assert_eq!(g.finish_reason, FinishReason::Stop, "{which}");
            match serde_json::from_str::<Value>(&g.text) {
                Ok(value) => match validator.validate(&value) {
                    Ok(()) => tally.validated += 1,
                    Err(e) => tally.invalid.push(format!("{which}: {e}: {}", g.text)),
                },
                Err(e) => tally.invalid.push(format!("{which}: does not parse ({e}): {}", g.text)),
            }
        }
    }
    let total = cases.len() * 2;
    println!(
        "{label}: {}/{total} validated, {} cut short by max_tokens, {} invalid; {} tokens, {} of them forced; \
         the grammar took {:.3} ms per token",
        tally.validated,
        tally.cut_short.len(),
        tally.invalid.len(),
        tally.tokens,
        tally.forced,
        tally.grammar_time.as_secs_f64() * 1e3 / tally.tokens as f64
    );
    tally
}

fn assert_all_validated(tally: &Tally, total: usize) {
    assert!(tally.invalid.is_empty(), "answers that do not validate:\n{}", tally.invalid.join("\n"));
    assert!(tally.cut_short.is_empty(), "answers cut short by max_tokens: {:?}", tally.cut_short);
    assert_eq!(tally.validated, total);
}

#[test]
fn every_schema_validates_on_the_cpu() {
    let cases = corpus();
    assert!(cases.len() >= 30, "the corpus has {} schemas", cases.len());
    let mut engine = load(CpuBackend::new(0));
    let tally = run_corpus(&mut engine, &cases, "cpu");
    assert!(tally.forced > 0, "the grammar never forced a token");
    assert_all_validated(&tally, cases.len() * 2);
}

#[test]
fn schemas_validate_on_the_gpu() {
    // lavapipe is slow: a subset of short answers with anyOf, oneOf, enums, ranges, an email
    // format and a pattern (the next test adds $defs and nesting).
    let subset = ["contact_anyof", "person", "sentiment", "shape_oneof", "tags"];
    let cases: Vec<Case> = corpus().into_iter().filter(|c| subset.contains(&c.name.as_str())).collect();
    assert_eq!(cases.len(), subset.len());
    let mut engine = load(gpu_backend());
    let tally = run_corpus(&mut engine, &cases, "gpu");
    assert_all_validated(&tally, cases.len() * 2);
}

#[test]
fn the_gpu_and_the_cpu_give_the_same_constrained_greedy_answer() {
    let case = corpus().into_iter().find(|c| c.name == "calendar_defs").unwrap();
    let grammar = Grammar::JsonSchema(case.schema);
    let cpu = answer(&mut load(CpuBackend::new(0)), &case.prompt, &grammar, &options(0.0, MAX_TOKENS));
    let gpu = answer(&mut load(gpu_backend()), &case.prompt, &grammar, &options(0.0, MAX_TOKENS));
    assert_eq!(cpu.text, gpu.text);
}

#[test]
fn an_answer_cut_short_finishes_with_length() {
    let mut engine = load(CpuBackend::new(0));
    let case = corpus().into_iter().find(|c| c.name == "order").unwrap();
    let grammar = Grammar::JsonSchema(case.schema);
    let g = answer(&mut engine, &case.prompt, &grammar, &options(0.0, 6));
    assert_eq!(g.finish_reason, FinishReason::Length);
    assert_eq!(g.tokens.len(), 6);
    assert!(serde_json::from_str::<Value>(&g.text).is_err(), "six tokens made a whole order: {}", g.text);
    // The same request with room finishes, and begins with the same tokens.
    let whole = answer(&mut engine, &case.prompt, &grammar, &options(0.0, MAX_TOKENS));
    assert_eq!(whole.finish_reason, FinishReason::Stop);
    assert_eq!(whole.tokens[..6], g.tokens[..]);
}

#[test]
fn bad_schemas_grammars_and_regexes_are_typed_errors() {
    let mut engine = load(CpuBackend::new(0));
    let mut error = |grammar: Grammar| engine.constraint(&grammar).err().expect("compiled");
    let schema = |s: &str| Grammar::JsonSchema(serde_json::from_str(s).unwrap());
    assert_eq!(
        error(schema(r#"{"type": "object", "if": {"required": ["a"]}, "then": {}}"#)),
        ConstraintError::UnsupportedKeywords { keywords: r#"["if", "then"]"#.into() }
    );
    assert_eq!(error(schema(r#"{"type": "string", "format": "zip-code"}"#)), ConstraintError::UnknownFormat {
        format: "zip-code".into()
    });
    assert!(matches!(error(schema(r#"{"type": "integer", "minimum": 5, "maximum": 2}"#)), ConstraintError::Schema { .. }));
    assert!(matches!(error(schema(r##"{"$ref": "#/$defs/missing"}"##)), ConstraintError::Schema { .. }));
    let grammar = error(Grammar::Lark("start: item+\nitem: \"a\" | (\"b\"\n".into()));
    assert!(matches!(grammar, ConstraintError::GrammarAt { line: 2, .. }), "{grammar:?}");
    let undefined = error(Grammar::Lark("start: missing\n".into()));
    assert!(matches!(undefined, ConstraintError::GrammarAt { line: 1, .. } | ConstraintError::Grammar { .. }), "{undefined:?}");
    let regex = error(Grammar::Regex("[0-9]{3,1}".into()));
    assert!(matches!(&regex, ConstraintError::Regex { message } if message.contains("repetition")), "{regex:?}");
    // The error names the problem for the caller.
    println!("{grammar}\n{undefined}\n{regex}");
}

#[test]
fn lark_grammars_and_regexes_constrain_the_text() {
    let mut engine = load(CpuBackend::new(0));
    let lark = "start: \"The answer is \" ANSWER \".\"\nANSWER: \"yes\" | \"no\"\n";
    let regex = "[0-9]{4}-[0-9]{2}-[0-9]{2}";
    for temperature in [0.0, 1.0] {
        let g = answer(&mut engine, "Is the sky blue?", &Grammar::Lark(lark.into()), &options(temperature, 50));
        assert_eq!(g.finish_reason, FinishReason::Stop);
        assert!(["The answer is yes.", "The answer is no."].contains(&g.text.as_str()), "{:?}", g.text);
        assert!(g.forced_tokens >= 3, "'The answer is ' and '.' are forced: {} forced", g.forced_tokens);

        let g = answer(&mut engine, "When did Apollo 11 land on the moon?", &Grammar::Regex(regex.into()), &options(temperature, 50));
        assert_eq!(g.finish_reason, FinishReason::Stop);
        let digits = |s: &str| s.len() == 4 || s.len() == 2;
        let parts: Vec<&str> = g.text.split('-').collect();
        assert!(parts.len() == 3 && parts.iter().all(|p| digits(p) && p.bytes().all(|b| b.is_ascii_digit())), "{:?}", g.text);
        assert_eq!((parts[0].len(), parts[1].len(), parts[2].len()), (4, 2, 2), "{:?}", g.text);
    }
    // Any JSON object.
    let g = answer(&mut engine, "Describe a cat as JSON.", &Grammar::JsonObject, &options(0.0, MAX_TOKENS));
    assert_eq!(g.finish_reason, FinishReason::Stop);
    assert!(serde_json::from_str::<Value>(&g.text).unwrap().is_object(), "{}", g.text);
}

/// Every token's bytes, as the grammar sees them, spell the text it was encoded from, on a
/// byte-level BPE vocabulary (SmolLM2) and a SentencePiece one with byte fallback (Gemma 3);
/// control tokens are no text. Prints how long the vocabulary takes to build.
#[test]
fn token_bytes_spell_the_text_on_both_vocabulary_kinds() {
    let text = "Grüße, 世界! {\"a\": [1, 2.5e-3]}\n\ttabs   and 🦀 emoji\u{7f} é";
    for (name, path) in [("SmolLM2", model_path()), ("Gemma 3", RealModel::gemma3().path)] {
        let (_, file) = open_model_at(&path);
        let tokenizer = Arc::new(Tokenizer::from_gguf(&file).unwrap());
        let ids = tokenizer.encode_continuation(text).unwrap();
        let mut bytes = Vec::new();
        for &id in &ids {
            match tokenizer.piece(id) {
                Piece::Text(b) => bytes.extend_from_slice(b),
                Piece::Control(name) => panic!("text encoded to control token {}", String::from_utf8_lossy(name)),
            }
        }
        assert_eq!(String::from_utf8(bytes).unwrap(), text, "{name}");
        for &id in tokenizer.end_of_generation() {
            assert!(matches!(tokenizer.piece(id), Piece::Control(_)), "{name}: end token {id} is text");
        }
        let start = Instant::now();
        let vocabulary = GrammarVocabulary::new(Arc::clone(&tokenizer)).unwrap();
        println!("{name}: {} tokens, grammar vocabulary built in {:.0} ms", vocabulary.vocab_size(), start.elapsed().as_secs_f64() * 1e3);
        assert_eq!(vocabulary.vocab_size(), tokenizer.vocab_size());
    }
}
