//! Generation: a loaded model, its tokenizer and chat template, and the loop that turns a prompt
//! into streamed text. Generic over the backend, so the GPU and the CPU reference generate alike.

use std::ops::ControlFlow;

use web_time::{Duration, Instant};

use crate::chat::{ChatError, ChatTemplate, Message, RenderOptions};
use crate::gguf::{ByteSource, GgufFile};
use crate::model::{forward, Activations, Backend, Logits, ModelConfig, ModelError, Weights};
use crate::reasoning::Reasoning;
use crate::sample::{SampleError, Sampler, SamplingParams, StopStrings};
use crate::tokenizer::{TextStream, Tokenizer, TokenizerError};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error(transparent)]
    Chat(#[from] ChatError),
    #[error(transparent)]
    Sample(#[from] SampleError),
}

pub struct LoadOptions {
    /// Positions the KV cache holds (prompt plus generated tokens). Capped at the model's own.
    pub context: usize,
    /// Most prompt tokens one prefill step runs at once.
    pub max_batch: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self { context: 2048, max_batch: 256 }
    }
}

impl LoadOptions {
    /// The KV cache's positions for this model: never more than it was trained for.
    pub fn context_for(&self, config: &ModelConfig) -> usize {
        self.context.min(config.train_context).max(1)
    }

    /// Most tokens one forward step runs, for a cache of `context` positions.
    pub fn batch_for(&self, context: usize) -> usize {
        self.max_batch.clamp(1, context)
    }
}

pub struct GenerateOptions {
    pub max_tokens: usize,
    pub sampling: SamplingParams,
    pub stop: Vec<String>,
    /// Keep going past end-of-generation tokens (benchmarks want a fixed length).
    pub ignore_eos: bool,
    /// Start from the keys and values the cache still holds for the longest prefix this prompt
    /// shares with the last request's prompt and answer (llama.cpp's `cache_prompt`): a
    /// conversation's next turn then prefills only what is new. Benchmarks turn it off to time
    /// a whole prefill.
    pub cache_prompt: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// An end-of-generation token or a stop string.
    Stop,
    /// `max_tokens`, or the context is full.
    Length,
    /// The caller's `on_text` asked to stop (a closed stream, an aborted request).
    Aborted,
}

#[derive(Debug, Clone)]
pub struct Generation {
    pub tokens: Vec<u32>,
    pub text: String,
    pub finish_reason: FinishReason,
    pub prompt_tokens: usize,
    /// Prompt tokens whose keys and values were already in the cache, so not prefilled.
    pub cached_tokens: usize,
    pub prefill_time: Duration,
    pub decode_time: Duration,
}

impl Generation {
    /// Prompt tokens prefilled (those not found in the cache) over the time it took.
    pub fn prefill_tokens_per_s(&self) -> f64 {
        (self.prompt_tokens - self.cached_tokens) as f64 / self.prefill_time.as_secs_f64()
    }

    /// Decoded tokens after the first (which prefill produced) over the time they took.
    pub fn decode_tokens_per_s(&self) -> f64 {
        self.tokens.len().saturating_sub(1) as f64 / self.decode_time.as_secs_f64()
    }
}

/// A conversation's prompt, ready to generate from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatPrompt {
    pub tokens: Vec<u32>,
    /// How the answer's reasoning is told from its content: give it to a
    /// [`ReasoningSplitter`](crate::reasoning::ReasoningSplitter) with the answer's text.
    pub reasoning: Reasoning,
}

pub struct Engine<B: Backend> {
    pub backend: B,
    pub weights: Weights<B>,
    pub tokenizer: Tokenizer,
    pub chat: ChatTemplate,
    cache: B::Cache,
    /// The tokens whose keys and values `cache` holds, from position 0: the last request's
    /// prompt and the answer tokens fed back after it.
    cached: Vec<u32>,
    act: Activations<B>,
    context: usize,
    sampler_seed: u64,
}

impl<B: Backend> Engine<B> {
    /// Loads the model from `source`; `on_bytes` hears how many tensor bytes each step loaded.
    pub fn load(
        mut backend: B,
        file: &GgufFile,
        source: &mut dyn ByteSource,
        options: &LoadOptions,
        on_bytes: &mut dyn FnMut(u64),
    ) -> Result<Self, EngineError> {
        // Everything that can refuse the file is checked before any weight is read.
        let config = ModelConfig::from_gguf(file)?;
        let tokenizer = Tokenizer::from_gguf(file)?;
        let chat = ChatTemplate::from_gguf(file)?;
        let weights = Weights::load(&mut backend, file, source, config, on_bytes)?;
        Self::new(backend, weights, tokenizer, chat, options)
    }

    /// An engine around weights already loaded (in the browser, streamed through a
    /// `WeightStream`).
    pub fn new(
        mut backend: B,
        weights: Weights<B>,
        tokenizer: Tokenizer,
        chat: ChatTemplate,
        options: &LoadOptions,
    ) -> Result<Self, EngineError> {
        let context = options.context_for(&weights.config);
        let cache = backend.cache(&weights.config, context)?;
        let act = Activations::new(&mut backend, &weights, options.batch_for(context), false)?;
        backend.prepare(&weights);
        // Unseeded requests should differ from run to run; the clock is enough entropy for that.
        let sampler_seed = web_time::SystemTime::now()
            .duration_since(web_time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Ok(Self { backend, weights, tokenizer, chat, cache, cached: Vec::new(), act, context, sampler_seed })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.weights.config
    }

    pub fn context(&self) -> usize {
        self.context
    }

    /// The prompt for a conversation, through the model's chat template, for the model to
    /// answer; `enable_thinking` goes to the template (see [`RenderOptions`]).
    pub fn chat_prompt(&self, messages: &[Message], enable_thinking: bool) -> Result<ChatPrompt, EngineError> {
        let text = self.chat.render(messages, RenderOptions { add_generation_prompt: true, enable_thinking })?;
        let reasoning = if self.chat.thinks() { Reasoning::after(&text) } else { Reasoning::None };
        let mut tokens = self.tokenizer.encode(&text, true, true)?;
        // A template that writes the BOS itself (Gemma's do) for a vocabulary that adds one
        // gives two; llama.cpp drops the template's, and so does this.
        if let (Some(bos), [first, second, ..]) = (self.tokenizer.bos_id(), tokens.as_slice()) {
            if *first == bos && *second == bos {
                tokens.remove(0);
            }
        }
        Ok(ChatPrompt { tokens, reasoning })
    }

    fn check_fits(&self, needed: usize) -> Result<(), EngineError> {
        if needed > self.context {
            return Err(ModelError::ContextOverflow { needed, context: self.context }.into());
        }
        Ok(())
    }

    /// Generates a continuation of `prompt`, calling `on_text` with each new piece of text
    /// (once per token, possibly with an empty piece). `on_text` returning `Break` ends the
    /// generation there, with `FinishReason::Aborted` and the text it has been given so far.
    pub async fn generate(
        &mut self,
        prompt: &[u32],
        options: &GenerateOptions,
        on_text: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation, EngineError> {
        let generation = self.run(prompt, options, on_text).await;
        // A step that failed (a lost device) leaves the cache in doubt: trust none of it.
        if generation.is_err() {
            self.cached.clear();
        }
        generation
    }

    async fn run(
        &mut self,
        prompt: &[u32],
        options: &GenerateOptions,
        on_text: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation, EngineError> {
        options.sampling.validate()?;
        if prompt.is_empty() {
            return Err(ModelError::BadConfig("the prompt has no tokens".into()).into());
        }
        // The prompt plus the first generated token must fit.
        self.check_fits(prompt.len() + 1)?;
        self.sampler_seed = self.sampler_seed.wrapping_add(1);
        let mut sampler = Sampler::new(options.sampling.clone(), self.sampler_seed);
        let greedy = sampler.is_greedy();
        let mut stops = StopStrings::new(options.stop.clone());
        let mut stream = TextStream::new(&self.tokenizer);
        let mut history = prompt.to_vec();
        let mut tokens = Vec::new();
        let mut text = String::new();
        let mut finish_reason = FinishReason::Length;
        let mut stopped_by_string = false;

        let start = Instant::now();
        // Positions before `reused` keep the keys and values they hold; the prompt's last token
        // always runs, since its logits give the first answer token.
        let shared = self.cached.iter().zip(prompt).take_while(|(a, b)| a == b).count();
        let reused = if options.cache_prompt { shared.min(prompt.len() - 1) } else { 0 };
        self.cached.truncate(reused);
        // The rest of the prompt in batches; the logits of its last token end up in the
        // activations.
        let batch = self.act.max_tokens;
        for (i, chunk) in prompt[reused..].chunks(batch).enumerate() {
            forward(&mut self.backend, &self.weights, &self.cache, &self.act, chunk, reused + i * batch, Logits::Last);
        }
        self.cached.extend_from_slice(&prompt[reused..]);
        let mut prefill_time = None;
        let mut pos = prompt.len();
        while tokens.len() < options.max_tokens {
            let next = if greedy {
                self.backend.argmax(&self.act.logits, 0).await?
            } else {
                let mut logits = self.backend.read(&self.act.logits, 1).await?;
                sampler.sample(&mut logits, &history)
            };
            prefill_time.get_or_insert_with(|| start.elapsed());
            if !options.ignore_eos && self.tokenizer.is_end_of_generation(next) {
                finish_reason = FinishReason::Stop;
                break;
            }
            tokens.push(next);
            history.push(next);
            let step = stops.push(&stream.push(next));
            text.push_str(&step.emit);
            // In a browser, a token computed on the CPU never waited on anything: let the page
            // paint, and a worker hear an abort, before asking whether to go on.
            #[cfg(target_arch = "wasm32")]
            crate::event_loop::yield_to_event_loop().await;
            if on_text(&step.emit).is_break() {
                finish_reason = FinishReason::Aborted;
                break;
            }
            if step.stopped {
                stopped_by_string = true;
                finish_reason = FinishReason::Stop;
                break;
            }
            if tokens.len() == options.max_tokens || pos + 1 > self.context {
                break;
            }
            forward(&mut self.backend, &self.weights, &self.cache, &self.act, &[next], pos, Logits::Last);
            self.cached.push(next);
            pos += 1;
        }
        // Text held back as the possible start of a stop string is the answer's after all,
        // unless the caller has stopped listening.
        if !stopped_by_string && finish_reason != FinishReason::Aborted {
            let tail = stops.finish();
            text.push_str(&tail);
            let _ = on_text(&tail);
        }
        let prefill_time = prefill_time.unwrap_or_else(|| start.elapsed());
        Ok(Generation {
            tokens,
            text,
            finish_reason,
            prompt_tokens: prompt.len(),
            cached_tokens: reused,
            prefill_time,
            decode_time: start.elapsed() - prefill_time,
        })
    }
}
