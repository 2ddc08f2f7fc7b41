use std::ops::ControlFlow;
use std::path::PathBuf;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use torchlight::constraint::Grammar;
use torchlight::engine::{Engine, GenerateOptions};
use torchlight::model::{first_max, Backend};
use torchlight::sample::SamplingParams;
use web_time::Instant;

use super::grammar::GrammarArgs;
use super::{with_engine, BackendArgs, CliError, Report, WithEngine};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    model: PathBuf,
    #[arg(long, default_value_t = 512)]
    prompt_tokens: usize,
    #[arg(long, default_value_t = 128)]
    decode_tokens: usize,
    /// Runs to take the median of (after a short warm-up).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Also time the answer constrained (say `--json-schema FILE`), each constrained run right
    /// after an unconstrained one, so that both see the same machine: decode speed, time to
    /// first token (compiling the grammar included) and the grammar's own time per token.
    #[command(flatten)]
    grammar: GrammarArgs,
    #[command(flatten)]
    backend: BackendArgs,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

const TEXT: &str = "The lighthouse keeper climbed the spiral stairs at dusk, as she had every evening for \
    thirty-one years, and trimmed the wick while the fog rolled in from the grey Atlantic. ";

pub fn run(args: Args) -> Result<(), CliError> {
    let start = Instant::now();
    let (model, context, backend) = (args.model.clone(), args.prompt_tokens + args.decode_tokens + 1, args.backend.clone());
    with_engine(&model, context, &backend, Bench { args, start })
}

struct Bench {
    args: Args,
    start: Instant,
}

impl WithEngine for Bench {
    fn run<B: Backend + Report>(self, mut engine: Engine<B>) -> Result<(), CliError> {
        let args = self.args;
        let load_s = self.start.elapsed().as_secs_f64();
        let piece = engine.tokenizer.encode(TEXT, false, false).map_err(torchlight::engine::EngineError::from)?;
        let prompt: Vec<u32> = piece.iter().copied().cycle().take(args.prompt_tokens).collect();
        let options = |max_tokens| GenerateOptions {
            max_tokens,
            sampling: SamplingParams { temperature: 0.0, ..SamplingParams::default() },
            stop: Vec::new(),
            ignore_eos: true,
            // Every run times a whole prefill, not a cache hit on the run before.
            cache_prompt: false,
            ..GenerateOptions::default()
        };

        let mut ignore = |_: &str| ControlFlow::Continue(());
        // The warm-up builds every pipeline (prefill and decode shapes); then counters bracket a
        // prefill-only run and a full run, whose difference is the cost of the decoded tokens.
        pollster::block_on(engine.generate(&prompt, &options(2), &mut ignore))?;
        let before = engine.backend.counters();
        pollster::block_on(engine.generate(&prompt, &options(1), &mut ignore))?;
        let prefill_only = engine.backend.counters();
        let grammar = args.grammar.grammar()?;
        // The first grammar builds the vocabulary's token trie, which every later one reuses.
        let vocabulary_ms = match &grammar {
            Some(grammar) => {
                let start = Instant::now();
                engine.constraint(grammar)?;
                start.elapsed().as_secs_f64() * 1000.0
            }
            None => 0.0,
        };
        let (mut prefill, mut decode, mut ttft) = (Vec::new(), Vec::new(), Vec::new());
        let mut constrained_runs = Vec::new();
        let mut per_token = None;
        for _ in 0..args.runs.max(1) {
            let start = engine.backend.counters();
            let g = pollster::block_on(engine.generate(&prompt, &options(args.decode_tokens), &mut ignore))?;
            let end = engine.backend.counters();
            if let (Some(before), Some(prefill_only), Some(start), Some(end)) = (before, prefill_only, start, end) {
                per_token.get_or_insert_with(|| {
                    let decoded = (g.tokens.len() - 1) as f64;
                    let per = |f: fn((u64, u64)) -> u64| ((f(end) - f(start)) - (f(prefill_only) - f(before))) as f64 / decoded;
                    (per(|c| c.0), per(|c| c.1))
                });
            }
            prefill.push(g.prefill_tokens_per_s());
            decode.push(g.decode_tokens_per_s());
            ttft.push(g.prefill_time.as_secs_f64() * 1000.0);
            if let Some(grammar) = &grammar {
                constrained_runs.push(constrained(&mut engine, grammar, &prompt, &options(args.decode_tokens))?);
            }
        }
        let constrained = grammar.map(|_| Constrained::median(&constrained_runs, &ttft, vocabulary_ms));
        let refused_pick = match constrained {
            Some(_) => Some(refused_pick(&mut engine.backend, engine.weights.config.vocab_size)?),
            None => None,
        };
        let memory_mib = engine.backend.memory_bytes() as f64 / (1 << 20) as f64;
        let backend = engine.backend.describe();
        println!("backend             {backend}");
        println!("load                {load_s:.2} s");
        println!("prefill             {:.1} tokens/s ({} tokens, median of {})", median(prefill.clone()), args.prompt_tokens, args.runs);
        println!("decode              {:.2} tokens/s ({} tokens)", median(decode.clone()), args.decode_tokens);
        println!("time to first token {:.0} ms", median(ttft.clone()));
        println!("memory              {memory_mib:.1} MiB (weights, KV cache, activations)");
        if let Some((dispatches, submits)) = per_token {
            println!("per decoded token   {dispatches:.0} dispatches, {submits:.1} submits");
        }
        if let Some(c) = &constrained {
            let decode = median(decode.clone());
            println!("grammar vocabulary  {:.0} ms (once per model)", c.vocabulary_ms);
            println!("constrained decode  {:.2} tokens/s ({:.2}x; {:.0} tokens, {:.0} forced)", c.decode, c.decode / decode, c.tokens, c.forced);
            println!("constrained TTFT    {:.0} ms ({:+.0} ms, the median of each run's growth; compiling the grammar {:.1} ms)", c.ttft_ms, c.ttft_growth_ms, c.compile_ms);
            println!("grammar per token   {:.3} ms", c.grammar_ms_per_token);
            println!("refused greedy picks {:.0} per answer", c.refused);
        }
        if let Some(p) = &refused_pick {
            println!("a refused pick      {:.3} ms with the mask sent to the backend, {:.3} ms with the logits read back", p.mask_sent_ms, p.logits_read_ms);
        }
        let json = serde_json::json!({
            "backend": backend,
            "load_s": load_s,
            "prefill_tokens_per_s": median(prefill),
            "decode_tokens_per_s": median(decode),
            "ttft_ms": median(ttft),
            "memory_mib": memory_mib,
            "dispatches_per_token": per_token.map(|p| p.0),
            "submits_per_token": per_token.map(|p| p.1),
            "constrained": constrained.map(|c| serde_json::json!({
                "vocabulary_ms": c.vocabulary_ms,
                "compile_ms": c.compile_ms,
                "decode_tokens_per_s": c.decode,
                "ttft_ms": c.ttft_ms,
                "ttft_growth_ms": c.ttft_growth_ms,
                "tokens": c.tokens,
                "forced_tokens": c.forced,
                "grammar_ms_per_token": c.grammar_ms_per_token,
                "refused_picks": c.refused,
            })),
            "refused_pick": refused_pick.map(|p| serde_json::json!({
                "mask_sent_ms": p.mask_sent_ms,
                "logits_read_ms": p.logits_read_ms,
            })),
        });
        println!("{json}");
        Ok(())
    }
}

/// One constrained run, or the medians over several.
struct Constrained {
    vocabulary_ms: f64,
    compile_ms: f64,
    decode: f64,
    /// Compiling the grammar, then prefill and the first token.
    ttft_ms: f64,
    /// Over the unconstrained run just before (medians: of these differences).
    ttft_growth_ms: f64,
    tokens: f64,
    forced: f64,
    grammar_ms_per_token: f64,
    refused: f64,
}

impl Constrained {
    /// `plain_ttft_ms`: the unconstrained run before each; `first_ms`: making the first grammar,
    /// which also built the token trie.
    fn median(runs: &[Constrained], plain_ttft_ms: &[f64], first_ms: f64) -> Constrained {
        let of = |f: fn(&Constrained) -> f64| median(runs.iter().map(f).collect());
        Constrained {
            ttft_growth_ms: median(runs.iter().zip(plain_ttft_ms).map(|(c, plain)| c.ttft_ms - plain).collect()),
            vocabulary_ms: first_ms - of(|c| c.compile_ms),
            compile_ms: of(|c| c.compile_ms),
            decode: of(|c| c.decode),
            ttft_ms: of(|c| c.ttft_ms),
            tokens: of(|c| c.tokens),
            forced: of(|c| c.forced),
            grammar_ms_per_token: of(|c| c.grammar_ms_per_token),
            refused: of(|c| c.refused),
        }
    }
}

fn constrained<B: Backend>(
    engine: &mut Engine<B>,
    grammar: &Grammar,
    prompt: &[u32],
    options: &GenerateOptions,
) -> Result<Constrained, CliError> {
    let start = Instant::now();
    let constraint = engine.constraint(grammar)?;
    let compile_ms = start.elapsed().as_secs_f64() * 1000.0;
    let mut ignore = |_: &str| ControlFlow::Continue(());
    let g = pollster::block_on(engine.generate_constrained(prompt, options, Some(constraint), &mut ignore))?;
    Ok(Constrained {
        vocabulary_ms: 0.0,
        compile_ms,
        decode: g.decode_tokens_per_s(),
        ttft_ms: compile_ms + g.prefill_time.as_secs_f64() * 1000.0,
        ttft_growth_ms: 0.0,
        tokens: g.tokens.len() as f64,
        forced: g.forced_tokens as f64,
        grammar_ms_per_token: g.grammar_time.as_secs_f64() * 1000.0 / g.tokens.len().max(1) as f64,
        refused: g.refused_picks as f64,
    })
}

/// Medians of the two ways to redo a greedy pick the grammar refused, on random logits with
/// half the vocabulary allowed: the grammar's bits sent to the backend, which picks among them
/// (what the engine does), or the logits read back and picked from here (the other way).
struct RefusedPick {
    mask_sent_ms: f64,
    logits_read_ms: f64,
}

fn refused_pick<B: Backend>(backend: &mut B, vocab: usize) -> Result<RefusedPick, CliError> {
    const TRIES: usize = 50;
    let mut rng = SmallRng::seed_from_u64(1);
    let logits: Vec<f32> = (0..vocab).map(|_| rng.random()).collect();
    let allowed: Vec<u32> = (0..vocab.div_ceil(32)).map(|_| rng.random()).collect();
    let buffer = backend.buffer_from(vocab, &logits)?;
    let (mut sent, mut read) = (Vec::new(), Vec::new());
    for _ in 0..TRIES {
        let start = Instant::now();
        pollster::block_on(backend.argmax(&buffer, 0, Some(&allowed)))?;
        sent.push(start.elapsed().as_secs_f64() * 1000.0);
        let start = Instant::now();
        let back = pollster::block_on(backend.read(&buffer, 1))?;
        first_max(&back, Some(&allowed));
        read.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(RefusedPick { mask_sent_ms: median(sent), logits_read_ms: median(read) })
}
