//! Generation: a loaded model, its tokenizer and chat template, and the loop that turns a prompt
//! into streamed text. Generic over the backend, so the GPU and the CPU reference generate alike.

use std::ops::ControlFlow;
use std::sync::Arc;

use web_time::{Duration, Instant};

use crate::chat::{ChatError, ChatTemplate, Message, RenderOptions};
use crate::constraint::{Constraint, ConstraintError, Grammar, GrammarVocabulary};
use crate::gguf::{ByteSource, GgufFile};
use crate::model::{forward, Activations, Backend, Logits, ModelConfig, ModelError, Weights};
use crate::reasoning::Reasoning;
use crate::sample::{
    apply_logit_bias, check_logit_bias, check_top_logprobs, SampleError, Sampler, SamplingParams, StopStrings,
    TokenLogprob,
};
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

impl From<ConstraintError> for EngineError {
    fn from(e: ConstraintError) -> Self {
        EngineError::Sample(e.into())
    }
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
    /// Keep going past end-of-generation tokens (benchmarks want a fixed length). Under a
    /// [`Constraint`], the grammar decides where the answer may end, and an end token ends it
    /// there.
    pub ignore_eos: bool,
    /// Start from the keys and values the cache still holds for the longest prefix this prompt
    /// shares with the last request's prompt and answer (llama.cpp's `cache_prompt`): a
    /// conversation's next turn then prefills only what is new. Benchmarks turn it off to time
    /// a whole prefill.
    pub cache_prompt: bool,
    /// (token id, bias) pairs, each bias in [-100, 100], added to the token's raw logit before
    /// the grammar's mask, the penalties and every filter (OpenAI's `logit_bias`): -100
    /// effectively bans a token, +100 effectively forces it. A token appears at most once.
    pub logit_bias: Vec<(u32, f32)>,
    /// `Some(n)`: report each answer token's logprob and the `n` (at most 20) most likely tokens
    /// of its step in [`Generation::logprobs`] (OpenAI's `logprobs` and `top_logprobs`): a
    /// log-softmax at temperature 1 of the raw logits plus `logit_bias`, under the grammar's mask,
    /// before the penalties and filters. Asking for them changes no pick.
    pub logprobs: Option<usize>,
}

impl Default for GenerateOptions {
    /// Until an end token or the full context, default sampling, the prompt cache on, nothing
    /// else: set the fields that matter and take the rest from here.
    fn default() -> Self {
        Self {
            max_tokens: usize::MAX,
            sampling: SamplingParams::default(),
            stop: Vec::new(),
            ignore_eos: false,
            cache_prompt: true,
            logit_bias: Vec::new(),
            logprobs: None,
        }
    }
}

impl GenerateOptions {
    /// Checks the sampling parameters, the biases against a vocabulary of `vocab` tokens and
    /// the number of top logprobs; [`Engine::generate`] does this first.
    pub fn validate(&self, vocab: usize) -> Result<(), SampleError> {
        self.sampling.validate()?;
        check_logit_bias(&self.logit_bias, vocab)?;
        self.logprobs.map_or(Ok(()), check_top_logprobs)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// An end-of-generation token, a stop string, or the end of the answer's grammar.
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
    /// Until the answer's first token is known (time to first token): the prompt's prefill,
    /// then the first pick, unless the grammar forced the first tokens.
    pub prefill_time: Duration,
    pub decode_time: Duration,
    /// Tokens the grammar forced rather than the model picking them (included in `tokens`).
    pub forced_tokens: usize,
    /// Time spent in the grammar (masks, checks, forced tokens), included in the times above.
    pub grammar_time: Duration,
    /// Greedy picks the grammar refused, made again among the tokens it allows.
    pub refused_picks: usize,
    /// One per token of `tokens` when [`GenerateOptions::logprobs`] asked for them, else empty.
    /// See [`TokenLogprob`] for the distribution they come from, and forced tokens' logprob 0.
    pub logprobs: Vec<TokenLogprob>,
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
    /// The syntax of the answer's tool calls, when the prompt offers tools: read the answer's
    /// content (after its reasoning) with a [`ToolCallStream`](crate::tools::ToolCallStream).
    pub tool_format: Option<crate::tools::ToolFormat>,
}

pub struct Engine<B: Backend> {
    pub backend: B,
    pub weights: Weights<B>,
    pub tokenizer: Arc<Tokenizer>,
    pub chat: ChatTemplate,
    /// Built by the first request with a grammar, then kept: most never need it.
    grammar_vocabulary: Option<GrammarVocabulary>,
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
        Ok(Self {
            backend,
            weights,
            tokenizer: Arc::new(tokenizer),
            chat,
            grammar_vocabulary: None,
            cache,
            cached: Vec::new(),
            act,
            context,
            sampler_seed,
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.weights.config
    }

    pub fn context(&self) -> usize {
        self.context
    }

    /// The prompt for a conversation, through the model's chat template, for the model to
    /// answer; `enable_thinking` goes to the template (see [`RenderOptions`]), and so do the
    /// tools, unless `tool_choice` is `"none"`. Tools for a template without tool support fail
    /// ([`ToolError`](crate::tools::ToolError), in [`ChatError::Tool`]).
    pub fn chat_prompt(&self, messages: &[Message], options: &crate::chat::PromptOptions) -> Result<ChatPrompt, EngineError> {
        let tool_format = self.chat.tool_format_for(&options.tools, &options.tool_choice).map_err(ChatError::from)?;
        let tools = tool_format.map(|_| options.tools.as_slice());
        let render = RenderOptions { add_generation_prompt: true, enable_thinking: options.enable_thinking };
        let text = self.chat.render_with_tools(messages, tools, render)?;
        let reasoning = if self.chat.thinks() { Reasoning::after(&text) } else { Reasoning::None };
        let mut tokens = self.tokenizer.encode(&text, true, true)?;
        // A template that writes the BOS itself (Gemma's do) for a vocabulary that adds one
        // gives two; llama.cpp drops the template's, and so does this.
        if let (Some(bos), [first, second, ..]) = (self.tokenizer.bos_id(), tokens.as_slice()) {
            if *first == bos && *second == bos {
                tokens.remove(0);
            }
        }
        Ok(ChatPrompt { tokens, reasoning, tool_format })
    }

    /// The start of an answer that must follow `grammar` (a `response_format`, a Lark grammar, a
    /// regex), for [`Self::generate_constrained`]: a bad schema or grammar is reported here,
    /// before anything runs. The first call builds the vocabulary's token trie (0.1 s for a
    /// 49k-token vocabulary, 1.2 s for Gemma 3's 262k natively), which later calls reuse.
    pub fn constraint(&mut self, grammar: &Grammar) -> Result<Constraint, ConstraintError> {
        let vocabulary = match &mut self.grammar_vocabulary {
            Some(vocabulary) => vocabulary,
            empty => empty.insert(GrammarVocabulary::new(Arc::clone(&self.tokenizer))?),
        };
        vocabulary.compile(grammar)
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
        self.generate_constrained(prompt, options, None, on_text).await
    }

    /// As [`Self::generate`], with every token the model picks one that `constraint` allows
    /// (when there is one) and the tokens it forces taken without asking the model (counted in
    /// `tokens`). The answer ends once the grammar is complete and the model ends it or nothing
    /// more may follow; one cut short by `max_tokens` or the context ends with
    /// `FinishReason::Length` and does not match the grammar.
    pub async fn generate_constrained(
        &mut self,
        prompt: &[u32],
        options: &GenerateOptions,
        constraint: Option<Constraint>,
        on_text: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation, EngineError> {
        let generation = self.run(prompt, options, constraint, on_text).await;
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
        mut constraint: Option<Constraint>,
        on_text: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation, EngineError> {
        options.validate(self.weights.config.vocab_size)?;
        if prompt.is_empty() {
            return Err(ModelError::BadConfig("the prompt has no tokens".into()).into());
        }
        // Tokens the grammar forces before the model says anything (a schema's `{"`, or
        // `{"first_name":"` when the first key is required) are the answer's first tokens.
        let mut lead = match &mut constraint {
            Some(constraint) => constraint.forced()?,
            None => Vec::new(),
        };
        lead.truncate(options.max_tokens);
        // The prompt plus the first generated token must fit.
        self.check_fits(prompt.len() + lead.len() + 1)?;
        self.sampler_seed = self.sampler_seed.wrapping_add(1);
        let mut sampler = Sampler::new(options.sampling.clone(), self.sampler_seed);
        // A bias or logprobs need the logits themselves, not just the backend's argmax.
        let greedy = sampler.is_greedy() && options.logit_bias.is_empty() && options.logprobs.is_none();
        let mut logprobs: Vec<TokenLogprob> = match options.logprobs {
            Some(_) => lead.iter().copied().map(TokenLogprob::forced).collect(),
            None => Vec::new(),
        };
        let mut answer = Answer::new(&self.tokenizer, prompt, options.stop.clone());

        let start = Instant::now();
        // Positions before `reused` keep the keys and values they hold; the prompt's last token
        // always runs, since its logits give the first answer token.
        let shared = self.cached.iter().zip(prompt).take_while(|(a, b)| a == b).count();
        let reused = if options.cache_prompt { shared.min(prompt.len() - 1) } else { 0 };
        self.cached.truncate(reused);
        self.feed(&prompt[reused..], reused);
        let mut pos = prompt.len();
        // A forced lead reaches the caller as soon as the prompt has run, as a first sampled
        // token would; the model reads it afterwards, in the first turn's batch.
        let mut prefill_time = match lead.is_empty() {
            true => None,
            false => {
                self.backend.finish().await?;
                Some(start.elapsed())
            }
        };
        let mut forced_tokens = lead.len();
        // Each turn shows the tokens the last produced, runs them through the model as one
        // batch, then picks the next and adds whatever run the grammar forces after it.
        let mut run = lead;
        let finish_reason = loop {
            if let Some(reason) = answer.emit(&run, on_text).await {
                break reason;
            }
            if constraint.as_ref().is_some_and(Constraint::is_finished) {
                break FinishReason::Stop;
            }
            if answer.tokens().len() >= options.max_tokens {
                break FinishReason::Length;
            }
            if pos + run.len() > self.context {
                break FinishReason::Length;
            }
            self.feed(&run, pos);
            pos += run.len();
            let (next, logprob) = self.pick(&mut sampler, greedy, constraint.as_mut(), &answer.history, options).await?;
            prefill_time.get_or_insert_with(|| start.elapsed());
            let may_end = constraint.is_some() || !options.ignore_eos;
            if may_end && self.tokenizer.is_end_of_generation(next) {
                break FinishReason::Stop;
            }
            run = vec![next];
            logprobs.extend(logprob);
            if let Some(constraint) = &mut constraint {
                constraint.accept(next)?;
                let forced = constraint.forced()?;
                if options.logprobs.is_some() {
                    logprobs.extend(forced.iter().copied().map(TokenLogprob::forced));
                }
                run.extend(forced);
            }
            // Forced tokens past `max_tokens` are not the answer's: it ends incomplete.
            run.truncate(options.max_tokens - answer.tokens().len());
            forced_tokens += run.len() - 1;
        };
        // Text held back as the possible start of a stop string is the answer's after all,
        // unless the caller has stopped listening.
        if !answer.stopped_by_string && finish_reason != FinishReason::Aborted {
            let tail = answer.stops.finish();
            answer.text.push_str(&tail);
            let _ = on_text(&tail);
        }
        let prefill_time = prefill_time.unwrap_or_else(|| start.elapsed());
        // The answer may end inside the last run (a stop string, an abort, max_tokens).
        logprobs.truncate(answer.tokens().len());
        Ok(Generation {
            tokens: answer.tokens().to_vec(),
            text: answer.text,
            finish_reason,
            prompt_tokens: prompt.len(),
            cached_tokens: reused,
            prefill_time,
            decode_time: start.elapsed() - prefill_time,
            forced_tokens,
            grammar_time: constraint.as_ref().map_or(Duration::ZERO, Constraint::time),
            refused_picks: constraint.as_ref().map_or(0, Constraint::refusals),
            logprobs,
        })
    }

    /// Runs `tokens` through the model from position `pos`, in batches, leaving the logits of
    /// the last in the activations.
    fn feed(&mut self, tokens: &[u32], pos: usize) {
        let batch = self.act.max_tokens;
        for (i, chunk) in tokens.chunks(batch).enumerate() {
            forward(&mut self.backend, &self.weights, &self.cache, &self.act, chunk, pos + i * batch, Logits::Last);
        }
        self.cached.extend_from_slice(tokens);
    }

    /// The next token from the last step's logits, one the grammar allows if there is one, and
    /// its logprob when `options` asks for them.
    async fn pick(
        &mut self,
        sampler: &mut Sampler,
        greedy: bool,
        constraint: Option<&mut Constraint>,
        history: &[u32],
        options: &GenerateOptions,
    ) -> Result<(u32, Option<TokenLogprob>), EngineError> {
        if greedy {
            let top = self.backend.argmax(&self.act.logits, 0, None).await?;
            // The argmax of all the logits is the argmax of the allowed ones whenever the grammar
            // allows it, as it mostly does. A refused pick is made again among the allowed ones,
            // their bits sent to the backend (vocabulary / 8 bytes) rather than the logits read
            // back (4 bytes a token).
            let Some(constraint) = constraint else {
                return Ok((top, None));
            };
            if constraint.allows(top)? {
                return Ok((top, None));
            }
            let allowed = constraint.allowed()?;
            return Ok((self.backend.argmax(&self.act.logits, 0, Some(&allowed)).await?, None));
        }
        let mut logits = self.backend.read(&self.act.logits, 1).await?;
        apply_logit_bias(&mut logits, &options.logit_bias);
        if let Some(constraint) = constraint {
            constraint.mask(&mut logits)?;
        }
        let Some(top_n) = options.logprobs else {
            return Ok((sampler.sample(&mut logits, history), None));
        };
        // The penalties change the sampler's copy in place; logprobs come from the logits before.
        let token = sampler.sample(&mut logits.clone(), history);
        Ok((token, Some(TokenLogprob::new(&logits, token, top_n))))
    }
}

/// An answer as it grows: its tokens after the prompt's, its text so far, and the detokenizer
/// and stop strings that text passes through.
struct Answer {
    /// The prompt, then the answer's tokens (the penalties look at both).
    history: Vec<u32>,
    prompt_len: usize,
    text: String,
    stream: TextStream,
    stops: StopStrings,
    stopped_by_string: bool,
}

impl Answer {
    fn new(tokenizer: &Tokenizer, prompt: &[u32], stops: Vec<String>) -> Self {
        Self {
            history: prompt.to_vec(),
            prompt_len: prompt.len(),
            text: String::new(),
            stream: TextStream::new(tokenizer),
            stops: StopStrings::new(stops),
            stopped_by_string: false,
        }
    }

    fn tokens(&self) -> &[u32] {
        &self.history[self.prompt_len..]
    }

    /// Adds `run` to the answer a token at a time, giving `on_text` each piece of text: the
    /// answer ends at a stop string, or where `on_text` stops listening.
    async fn emit(&mut self, run: &[u32], on_text: &mut dyn FnMut(&str) -> ControlFlow<()>) -> Option<FinishReason> {
        for &id in run {
            self.history.push(id);
            let step = self.stops.push(&self.stream.push(id));
            self.text.push_str(&step.emit);
            // In a browser, a token computed on the CPU never waited on anything: let the page
            // paint, and a worker hear an abort, before asking whether to go on.
            #[cfg(target_arch = "wasm32")]
            crate::event_loop::yield_to_event_loop().await;
            if on_text(&step.emit).is_break() {
                return Some(FinishReason::Aborted);
            }
            if step.stopped {
                self.stopped_by_string = true;
                return Some(FinishReason::Stop);
            }
        }
        None
    }
}
