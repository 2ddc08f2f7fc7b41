//! `logprobs` and `logit_bias` on the real test model: the logprobs describe the distribution
//! the picks came from, asking for them changes no pick, a bias bans or forces a token, bad
//! values are refused, forced tokens are sure, and the CPU and GPU backends agree.

mod common;

use std::ops::ControlFlow;

use common::*;
use torchlight::constraint::Grammar;
use torchlight::cpu::CpuBackend;
use torchlight::engine::{Engine, EngineError, GenerateOptions, Generation, LoadOptions};
use torchlight::model::Backend;
use torchlight::sample::{SampleError, SamplingParams, TokenLogprob, MAX_TOP_LOGPROBS};

/// How far apart the backends' logprobs for the same token may be: the CPU kernels' logits stay
/// within 0.05 of the reference (tests/cpu_model.rs); on this prompt they differ by about 0.001.
const BACKEND_TOLERANCE: f32 = 0.05;

const PROMPT: &str = "The capital of France is";

fn load<B: Backend>(backend: B) -> Engine<B> {
    let (mut source, file) = open_model();
    let options = LoadOptions { context: 256, ..LoadOptions::default() };
    Engine::load(backend, &file, &mut source, &options, &mut |_| {}).unwrap()
}

fn options(temperature: f32, max_tokens: usize, logprobs: Option<usize>) -> GenerateOptions {
    GenerateOptions {
        max_tokens,
        sampling: SamplingParams { temperature, seed: Some(11), ..SamplingParams::default() },
        ignore_eos: true,
        logprobs,
        ..GenerateOptions::default()
    }
}

fn generate<B: Backend>(engine: &mut Engine<B>, text: &str, options: &GenerateOptions) -> Result<Generation, EngineError> {
    let prompt = engine.tokenizer.encode(text, true, false).unwrap();
    pollster::block_on(engine.generate(&prompt, options, &mut |_| ControlFlow::Continue(())))
}

/// What holds for every step's logprobs, however the token was picked.
fn check_step(step: &TokenLogprob, token: u32, n: usize) {
    assert_eq!(step.token, token);
    assert_eq!(step.top.len(), n, "{step:?}");
    assert!(step.top.windows(2).all(|w| w[0].1 >= w[1].1), "top is not best first: {step:?}");
    assert!(step.logprob <= 0.0 && step.top.iter().all(|t| t.1 <= 0.0), "{step:?}");
    assert!(step.logprob <= step.top[0].1, "{step:?}");
    let mass: f32 = step.top.iter().map(|t| t.1.exp()).sum();
    assert!(mass <= 1.0 + 1e-5, "the top {n} hold {mass} of the probability");
    if let Some(listed) = step.top.iter().find(|t| t.0 == token) {
        assert_eq!(listed.1, step.logprob);
    }
}

#[test]
fn greedy_picks_are_the_top_logprob_and_unchanged_by_asking() {
    let mut engine = load(CpuBackend::new(0));
    let plain = generate(&mut engine, PROMPT, &options(0.0, 12, None)).unwrap();
    assert!(plain.logprobs.is_empty());
    let with = generate(&mut engine, PROMPT, &options(0.0, 12, Some(MAX_TOP_LOGPROBS))).unwrap();
    // The backend's argmax (no logprobs) and the sampler's on the logits read back agree.
    assert_eq!(with.tokens, plain.tokens);
    assert_eq!(with.logprobs.len(), with.tokens.len());
    for (step, &token) in with.logprobs.iter().zip(&with.tokens) {
        check_step(step, token, MAX_TOP_LOGPROBS);
        assert_eq!(step.top[0], (token, step.logprob), "greedy did not pick the most likely token");
    }
    println!("{:?}: {:?}", with.text, with.logprobs.iter().map(|s| s.logprob).collect::<Vec<_>>());
}

#[test]
fn sampled_picks_are_unchanged_by_asking() {
    let mut engine = load(CpuBackend::new(0));
    let plain = generate(&mut engine, PROMPT, &options(1.0, 16, None)).unwrap();
    let with = generate(&mut engine, PROMPT, &options(1.0, 16, Some(5))).unwrap();
    assert_eq!(with.tokens, plain.tokens);
    for (step, &token) in with.logprobs.iter().zip(&with.tokens) {
        check_step(step, token, 5);
    }
    // With no top list, only the token's own logprob.
    let bare = generate(&mut engine, PROMPT, &options(1.0, 16, Some(0))).unwrap();
    assert_eq!(bare.tokens, plain.tokens);
    for (step, full) in bare.logprobs.iter().zip(&with.logprobs) {
        assert!(step.top.is_empty());
        assert_eq!(step.logprob, full.logprob);
    }
}

#[test]
fn a_bias_bans_or_forces_a_token() {
    let mut engine = load(CpuBackend::new(0));
    let first = generate(&mut engine, PROMPT, &options(0.0, 8, None)).unwrap().tokens[0];

    let banned = GenerateOptions { logit_bias: vec![(first, -100.0)], ..options(0.0, 8, Some(3)) };
    let answer = generate(&mut engine, PROMPT, &banned).unwrap();
    assert!(!answer.tokens.contains(&first), "token {first} was banned: {:?}", answer.tokens);
    // At -100 it keeps no probability worth listing.
    assert!(answer.logprobs.iter().all(|s| s.top.iter().all(|t| t.0 != first)));

    // At temperature 1 too: the bias is on the logits, before any filter.
    let sampled = GenerateOptions { logit_bias: vec![(first, -100.0)], ..options(1.0, 8, None) };
    assert!(!generate(&mut engine, PROMPT, &sampled).unwrap().tokens.contains(&first));

    let forced = engine.tokenizer.encode(" banana", false, false).unwrap()[0];
    let favoured = GenerateOptions { logit_bias: vec![(forced, 100.0)], ..options(0.0, 4, Some(2)) };
    let answer = generate(&mut engine, PROMPT, &favoured).unwrap();
    assert_eq!(answer.tokens[0], forced);
    assert!(answer.logprobs[0].logprob > -1e-3, "{:?}", answer.logprobs[0]);
}

#[test]
fn bad_biases_and_too_many_logprobs_are_refused() {
    let mut engine = load(CpuBackend::new(0));
    let vocab = engine.config().vocab_size;
    let refused = |engine: &mut Engine<CpuBackend>, options: GenerateOptions| match generate(engine, PROMPT, &options) {
        Err(EngineError::Sample(e)) => e,
        other => panic!("{:?}", other.map(|g| g.text)),
    };
    let out_of_vocab = GenerateOptions { logit_bias: vec![(vocab as u32, 1.0)], ..options(0.0, 2, None) };
    let e = refused(&mut engine, out_of_vocab);
    assert_eq!(e, SampleError::BiasToken { token: vocab as u32, vocab });
    assert!(e.to_string().contains(&vocab.to_string()), "{e}");
    let too_big = GenerateOptions { logit_bias: vec![(5, 1.0), (17, -100.5)], ..options(0.0, 2, None) };
    assert_eq!(refused(&mut engine, too_big), SampleError::BiasValue { token: 17, value: -100.5 });
    let nan = GenerateOptions { logit_bias: vec![(17, f32::NAN)], ..options(0.0, 2, None) };
    assert!(matches!(refused(&mut engine, nan), SampleError::BiasValue { token: 17, .. }));
    let e = refused(&mut engine, options(0.0, 2, Some(MAX_TOP_LOGPROBS + 1)));
    assert_eq!(e.to_string(), "top_logprobs must be at most 20, got 21");
}

#[test]
fn forced_tokens_are_sure_and_chosen_ones_list_only_what_the_grammar_allows() {
    let mut engine = load(CpuBackend::new(0));
    let prompt = engine.tokenizer.encode("Is Paris in France? Answer:", true, false).unwrap();
    let grammar = Grammar::Regex(" The answer is (yes|no), certainly\\.".into());
    let constraint = engine.constraint(&grammar).unwrap();
    let options = options(0.0, 32, Some(4));
    let g = pollster::block_on(engine.generate_constrained(&prompt, &options, Some(constraint), &mut |_| {
        ControlFlow::Continue(())
    }))
    .unwrap();
    println!("{:?}: {} tokens, {} forced", g.text, g.tokens.len(), g.forced_tokens);
    assert!(g.forced_tokens > 0);
    assert_eq!(g.logprobs.len(), g.tokens.len());
    // Replay the answer through the grammar, as the engine walked it.
    let mut replay = engine.constraint(&grammar).unwrap();
    let mut steps = g.logprobs.iter().zip(&g.tokens);
    let mut forced = 0;
    loop {
        for token in replay.forced().unwrap() {
            let Some((step, _)) = steps.next() else { break };
            assert_eq!(step, &TokenLogprob::forced(token));
            forced += 1;
        }
        let Some((step, &token)) = steps.next() else { break };
        check_step(step, token, step.top.len());
        assert!(!step.top.is_empty());
        for &(id, _) in &step.top {
            assert!(replay.allows(id).unwrap(), "token {id} is listed but the grammar refuses it: {step:?}");
        }
        replay.accept(token).unwrap();
    }
    assert_eq!(forced, g.forced_tokens);
}

#[test]
fn cpu_and_gpu_logprobs_agree() {
    let options = options(0.0, 8, Some(5));
    let cpu = generate(&mut load(CpuBackend::new(0)), PROMPT, &options).unwrap();
    let gpu = generate(&mut load(gpu_backend()), PROMPT, &options).unwrap();
    let agreeing = cpu.tokens.iter().zip(&gpu.tokens).take_while(|(a, b)| a == b).count();
    assert!(agreeing >= 3, "greedy picks part after {agreeing} tokens: {:?} vs {:?}", cpu.tokens, gpu.tokens);
    let mut worst = 0.0f32;
    for (c, g) in cpu.logprobs.iter().zip(&gpu.logprobs).take(agreeing) {
        worst = worst.max((c.logprob - g.logprob).abs());
        // Alternatives both list, where near ties may order them differently.
        for &(id, lp) in &c.top {
            if let Some(other) = g.top.iter().find(|t| t.0 == id) {
                worst = worst.max((lp - other.1).abs());
            }
        }
    }
    println!("cpu and gpu logprobs differ by at most {worst} over {agreeing} tokens");
    assert!(worst <= BACKEND_TOLERANCE, "cpu and gpu logprobs differ by {worst}");
}
