use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;

use torchlight::chat::{Message, PromptOptions};
use torchlight::engine::{Engine, FinishReason, GenerateOptions};
use torchlight::model::Backend;
use torchlight::sample::SamplingParams;

use super::grammar::GrammarArgs;
use super::{with_engine, BackendArgs, CliError, Report, WithEngine};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    prompt: String,
    /// Wrap the prompt as a user message in the model's chat template.
    #[arg(long)]
    chat: bool,
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// 0 means greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    #[arg(long, default_value_t = 0)]
    top_k: u32,
    #[arg(long, default_value_t = 0.0)]
    min_p: f32,
    #[arg(long, default_value_t = 1.0)]
    repetition_penalty: f32,
    #[arg(long)]
    seed: Option<u64>,
    /// Stop when the text contains this string (repeatable).
    #[arg(long)]
    stop: Vec<String>,
    /// KV cache size in tokens.
    #[arg(long, default_value_t = 2048)]
    context: usize,
    /// Print one JSON object with the generated token ids and text instead of streaming.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    grammar: GrammarArgs,
    #[command(flatten)]
    backend: BackendArgs,
}

pub fn run(args: Args) -> Result<(), CliError> {
    let (model, context, backend) = (args.model.clone(), args.context, args.backend.clone());
    with_engine(&model, context, &backend, Generate(args))
}

struct Generate(Args);

impl WithEngine for Generate {
    fn run<B: Backend + Report>(self, engine: Engine<B>) -> Result<(), CliError> {
        generate(self.0, engine)
    }
}

fn generate<B: Backend + Report>(args: Args, mut engine: Engine<B>) -> Result<(), CliError> {
    // A bad schema or grammar is refused before the prompt runs.
    let constraint = args.grammar.grammar()?.map(|grammar| engine.constraint(&grammar)).transpose()?;
    let constrained = constraint.is_some();
    let prompt = if args.chat {
        // Thinking on, as by default in a request: a thinking model's `<think>` block is printed
        // as it is written.
        engine.chat_prompt(&[Message::new("user", args.prompt.clone())], &PromptOptions::default())?.tokens
    } else {
        engine.tokenizer.encode(&args.prompt, true, false).map_err(torchlight::engine::EngineError::from)?
    };
    let options = GenerateOptions {
        max_tokens: args.max_tokens,
        sampling: SamplingParams {
            temperature: args.temperature,
            top_p: args.top_p,
            top_k: args.top_k,
            min_p: args.min_p,
            repetition_penalty: args.repetition_penalty,
            seed: args.seed,
            ..SamplingParams::default()
        },
        stop: args.stop.clone(),
        ignore_eos: false,
        // The default; a single request finds nothing cached anyway.
        cache_prompt: true,
        ..GenerateOptions::default()
    };
    let mut out = std::io::stdout().lock();
    let mut write_error = None;
    // A closed stdout ends the generation: nobody is reading the rest.
    let mut on_text = |text: &str| {
        if !args.json {
            write_error = out.write_all(text.as_bytes()).and_then(|_| out.flush()).err();
        }
        match write_error {
            Some(_) => ControlFlow::Break(()),
            None => ControlFlow::Continue(()),
        }
    };
    let generation = pollster::block_on(engine.generate_constrained(&prompt, &options, constraint, &mut on_text))?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    if args.json {
        let json = serde_json::json!({
            "prompt_tokens": generation.prompt_tokens,
            "tokens": generation.tokens,
            "text": generation.text,
            "finish_reason": generation.finish_reason,
            "forced_tokens": generation.forced_tokens,
        });
        writeln!(out, "{json}")?;
    } else {
        writeln!(out)?;
    }
    if constrained && generation.finish_reason == FinishReason::Length {
        eprintln!("the answer reached --max-tokens (or the context) before its grammar was complete: it is incomplete");
    }
    eprintln!(
        "{}; prefill: {} tokens, {:.1} tokens/s; decode: {} tokens, {:.1} tokens/s",
        engine.backend.describe(),
        generation.prompt_tokens,
        generation.prefill_tokens_per_s(),
        generation.tokens.len(),
        generation.decode_tokens_per_s()
    );
    Ok(())
}
