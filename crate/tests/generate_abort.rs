//! A caller stops a generation by returning `Break` from its text callback (the browser's
//! abort): the generation ends right there with what the caller has been given, and the engine
//! answers the next request as if nothing had happened.

mod common;

use std::ops::ControlFlow;

use common::*;
use torchlight::chat::{Message, PromptOptions};
use torchlight::engine::{Engine, FinishReason, GenerateOptions, LoadOptions};
use torchlight::sample::SamplingParams;

#[test]
fn breaking_from_on_text_ends_the_generation_after_that_piece() {
    let (mut source, file) = open_model();
    let options = LoadOptions { context: 128, ..LoadOptions::default() };
    let mut engine = Engine::load(gpu_backend(), &file, &mut source, &options, &mut |_| {}).unwrap();
    let prompt = engine.chat_prompt(&[Message::new("user", "Count to ten.")], &PromptOptions::default()).unwrap().tokens;
    let greedy = |max_tokens| GenerateOptions {
        max_tokens,
        sampling: SamplingParams { temperature: 0.0, ..SamplingParams::default() },
        stop: Vec::new(),
        ignore_eos: false,
        // The next request reuses what the stopped one left in the cache.
        cache_prompt: true,
        ..GenerateOptions::default()
    };

    let mut heard = Vec::new();
    let stopped = pollster::block_on(engine.generate(&prompt, &greedy(32), &mut |piece| {
        heard.push(piece.to_string());
        if heard.len() == 3 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    }))
    .unwrap();
    assert_eq!(stopped.finish_reason, FinishReason::Aborted);
    assert_eq!(stopped.tokens.len(), 3);
    assert_eq!(heard.len(), 3, "the callback heard more after it said stop");
    assert_eq!(stopped.text, heard.concat());

    let full = pollster::block_on(engine.generate(&prompt, &greedy(5), &mut |_| ControlFlow::Continue(()))).unwrap();
    assert_eq!(full.finish_reason, FinishReason::Length);
    assert_eq!(full.tokens[..3], stopped.tokens[..], "the next request started from a different state");
}
