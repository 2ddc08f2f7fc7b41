//! The prompt cache: a request reuses the keys and values of the longest prefix its prompt
//! shares with what the last request left in the cache, and answers as if it had prefilled the
//! whole prompt. On the real test model, on both backends (the GPU on lavapipe in CI).

mod common;

use std::ops::ControlFlow;

use common::*;
use torchlight::chat::{Message, PromptOptions};
use torchlight::cpu::CpuBackend;
use torchlight::engine::{Engine, GenerateOptions, Generation, LoadOptions};
use torchlight::model::Backend;
use torchlight::sample::SamplingParams;

fn greedy(max_tokens: usize, cache_prompt: bool) -> GenerateOptions {
    GenerateOptions {
        max_tokens,
        sampling: SamplingParams { temperature: 0.0, ..SamplingParams::default() },
        stop: Vec::new(),
        ignore_eos: false,
        cache_prompt,
        ..GenerateOptions::default()
    }
}

fn generate<B: Backend>(engine: &mut Engine<B>, prompt: &[u32], options: &GenerateOptions) -> Generation {
    pollster::block_on(engine.generate(prompt, options, &mut |_| ControlFlow::Continue(()))).unwrap()
}

fn user(content: &str) -> Message {
    Message::new("user", content)
}

fn conversation_reuses_the_cache(backend: impl Backend) {
    let (mut source, file) = open_model();
    let options = LoadOptions { context: 256, ..LoadOptions::default() };
    let mut engine = Engine::load(backend, &file, &mut source, &options, &mut |_| {}).unwrap();

    let first = engine.chat_prompt(&[user("What is the capital of France?")], &PromptOptions::default()).unwrap().tokens;
    let answer = generate(&mut engine, &first, &greedy(12, true));
    assert_eq!(answer.cached_tokens, 0, "the first request found something cached");

    // The next turn: the first prompt, the answer as the template renders it, a new question.
    let messages = [
        user("What is the capital of France?"),
        Message::new("assistant", answer.text.clone()),
        user("And of Italy?"),
    ];
    let second = engine.chat_prompt(&messages, &PromptOptions::default()).unwrap().tokens;
    let cached = generate(&mut engine, &second, &greedy(8, true));
    assert!(
        cached.cached_tokens >= first.len() && cached.cached_tokens < second.len(),
        "{} of {} tokens cached, the first prompt being {}",
        cached.cached_tokens,
        second.len(),
        first.len()
    );
    println!("second turn: {} of {} prompt tokens reused", cached.cached_tokens, second.len());

    // The same turn prefilled whole gives the same answer.
    let whole = generate(&mut engine, &second, &greedy(8, false));
    assert_eq!(whole.cached_tokens, 0);
    assert_eq!(cached.tokens, whole.tokens, "reused keys and values changed the answer");

    // Asked again, all but the last prompt token is reused (its logits start the answer).
    let again = generate(&mut engine, &second, &greedy(8, true));
    assert_eq!(again.cached_tokens, second.len() - 1);
    assert_eq!(again.tokens, whole.tokens);

    // A prompt that starts differently reuses nothing.
    let other = engine.tokenizer.encode("Once upon a time", true, false).unwrap();
    assert_ne!(other[0], second[0]);
    assert_eq!(generate(&mut engine, &other, &greedy(2, true)).cached_tokens, 0);
}

#[test]
fn a_conversation_reuses_the_cache_on_the_cpu() {
    conversation_reuses_the_cache(CpuBackend::new(0));
}

#[test]
fn a_conversation_reuses_the_cache_on_the_gpu() {
    conversation_reuses_the_cache(gpu_backend());
}
