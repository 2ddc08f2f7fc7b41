use std::ops::ControlFlow;
use std::path::PathBuf;

use torchlight::engine::{Engine, GenerateOptions};
use torchlight::model::Backend;
use torchlight::sample::SamplingParams;
use web_time::Instant;

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
        };

        let mut ignore = |_: &str| ControlFlow::Continue(());
        // The warm-up builds every pipeline (prefill and decode shapes); then counters bracket a
        // prefill-only run and a full run, whose difference is the cost of the decoded tokens.
        pollster::block_on(engine.generate(&prompt, &options(2), &mut ignore))?;
        let before = engine.backend.counters();
        pollster::block_on(engine.generate(&prompt, &options(1), &mut ignore))?;
        let prefill_only = engine.backend.counters();
        let (mut prefill, mut decode, mut ttft) = (Vec::new(), Vec::new(), Vec::new());
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
        }
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
        let json = serde_json::json!({
            "backend": backend,
            "load_s": load_s,
            "prefill_tokens_per_s": median(prefill),
            "decode_tokens_per_s": median(decode),
            "ttft_ms": median(ttft),
            "memory_mib": memory_mib,
            "dispatches_per_token": per_token.map(|p| p.0),
            "submits_per_token": per_token.map(|p| p.1),
        });
        println!("{json}");
        Ok(())
    }
}
