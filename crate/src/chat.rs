//! Chat templates: turning a conversation into the prompt text a model was trained on, with
//! the Jinja template the GGUF file carries (`tokenizer.chat_template`). A file that carries
//! none gets its family's turn format where Torchlight knows it (Gemma's, as llama.cpp's
//! built-in `gemma` template writes it), and ChatML otherwise (llama.cpp's fallback too).
//!
//! The template comes from the model file, so it is untrusted code. It runs in a MiniJinja
//! environment that can reach nothing outside it (no loader, so no `include` or `import` of
//! files), with a fuel limit that bounds both its work and the data it builds (`FUEL`), a
//! recursion limit, and a cap on the output's size. Where MiniJinja 3.1 does work without
//! charging fuel, its filters are replaced here by versions that pay first (`join`, `string`,
//! `format`, writing `{{ value }}`, and our `tojson`). Two of its operators cannot be replaced
//! and remain unbounded: `~` writing out a repeated list, and a chain of lazy list `+`
//! materialized (README "Security"). A template that does not parse leaves the model usable
//! for raw prompts; chat requests get the reason. Otherwise the environment is set up like Hugging Face's
//! `apply_chat_template`: `trim_blocks` and `lstrip_blocks`, `raise_exception`, and Python's
//! string methods (`.strip()`, `.startswith()`, ...), which templates are written against.

use std::io;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{ArgType, Rest, ValueKind, ValueOrKwargs};
use minijinja::{context, Environment, ErrorKind, Output, State, Value};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use thiserror::Error;

use crate::gguf::{GgufError, GgufFile};
use crate::reasoning;
use crate::tools::{Tool, ToolCall, ToolChoice, ToolError, ToolFormat};

/// One turn of a conversation, in OpenAI's shape. `role` is usually "system", "user",
/// "assistant" or "tool" (a call's result, answering `tool_call_id`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "MessageFields")]
pub struct Message {
    pub role: String,
    /// Templates are written against text: content given as an array of text parts is joined,
    /// and `null` (an assistant turn that only calls tools) is empty.
    pub content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A message as sent, before `content` is known to be there: OpenAI lets only a message that
/// makes tool calls leave it out.
#[derive(Deserialize)]
struct MessageFields {
    role: String,
    #[serde(default, deserialize_with = "given_content")]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCall>>,
    #[serde(default)]
    tool_call_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

impl TryFrom<MessageFields> for Message {
    type Error = String;

    fn try_from(m: MessageFields) -> Result<Self, String> {
        let content = match (m.content, &m.tool_calls) {
            (Some(content), _) => content,
            (None, Some(_)) => String::new(),
            (None, None) => return Err(format!("a \"{}\" message has no `content` (only one that makes tool calls may leave it out)", m.role)),
        };
        Ok(Message { role: m.role, content, tool_calls: m.tool_calls, tool_call_id: m.tool_call_id, name: m.name })
    }
}

fn given_content<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    content_text(deserializer).map(Some)
}

impl Message {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self { role: role.into(), content: content.into(), ..Self::default() }
    }

    /// The message as templates read it: tool call arguments as objects (see
    /// [`ToolCall`]); an empty `tool_calls` list as none, which Llama 3's would refuse.
    fn for_template(&self) -> serde_json::Value {
        let mut message = serde_json::json!({"role": self.role, "content": self.content});
        if let Some(calls) = self.tool_calls.as_ref().filter(|calls| !calls.is_empty()) {
            message["tool_calls"] = calls.iter().map(ToolCall::for_template).collect();
        }
        if let Some(id) = &self.tool_call_id {
            message["tool_call_id"] = id.as_str().into();
        }
        if let Some(name) = &self.name {
            message["name"] = name.as_str().into();
        }
        message
    }
}

/// OpenAI's content: a string, `null`, or parts of which only `{"type": "text", "text"}` can
/// be read here; another kind (an image) is refused by name rather than dropped.
fn content_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Content {
        Text(String),
        Parts(Vec<Part>),
        Null(()),
    }
    #[derive(Deserialize)]
    struct Part {
        #[serde(rename = "type")]
        kind: String,
        text: Option<String>,
    }
    let content = Content::deserialize(deserializer)
        .map_err(|_| D::Error::custom("content must be a string, null, or an array of content parts"))?;
    match content {
        Content::Text(text) => Ok(text),
        Content::Null(()) => Ok(String::new()),
        Content::Parts(parts) => parts.into_iter().try_fold(String::new(), |mut text, part| match (part.kind.as_str(), part.text) {
            ("text", Some(part)) => {
                text.push_str(&part);
                Ok(text)
            }
            ("text", None) => Err(D::Error::custom("a text content part has no \"text\"")),
            (kind, _) => Err(D::Error::custom(format!("content part type \"{kind}\" is not supported"))),
        }),
    }
}

#[derive(Debug, Error)]
pub enum ChatError {
    #[error("chat template metadata: {0}")]
    Metadata(#[from] GgufError),
    #[error("the chat template does not parse: {0}")]
    Syntax(#[source] minijinja::Error),
    #[error("the model's chat template does not parse, so it cannot answer chat requests (raw prompts still run): {0}")]
    Unusable(String),
    #[error("the chat template raised an exception: {0}")]
    Raised(String),
    #[error(
        "the chat template ran out of fuel: it did more work or built more data than the limit of \
         {FUEL} steps or {FUEL_BYTES} bytes, as a runaway loop or a hostile template would"
    )]
    OutOfFuel,
    #[error("the chat template's output passed the limit of {MAX_OUTPUT} bytes")]
    OutputTooLong,
    #[error("the chat template failed: {0}")]
    Render(#[source] minijinja::Error),
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[cfg(not(target_arch = "wasm32"))]
    #[error("cannot start the chat template's thread: {0}")]
    Thread(String),
    #[cfg(not(target_arch = "wasm32"))]
    #[error("the chat template crashed the template engine (a MiniJinja bug): {0}")]
    Crashed(String),
}

const TEMPLATE_KEY: &str = "tokenizer.chat_template";

/// The work one render may do, in MiniJinja's fuel: one per instruction, and one per 64 bytes
/// of data it builds (strings, list slots, output) or items a filter visits. MiniJinja 3 charges
/// data before allocating it, which bounds a render's memory as well as its time: 10^6 is 64 MiB
/// of data, or a million instructions, a few hundred milliseconds on a phone. Real templates
/// spend a few hundred per message plus their text's bytes / 64, so a conversation of thousands
/// of messages or of megabytes still renders. (MiniJinja 2 counted only instructions: a filter
/// or a doubling `~` in a loop could take gigabytes for a few of them; that is upstream's fix,
/// minijinja 3.1, not ours.)
const FUEL: u64 = 1_000_000;
/// The render thread's stack (native only): MiniJinja frees a value nested n deep with n nested
/// calls of about 60 bytes (measured: 1 MiB holds 15,000 levels), and `FUEL` pays for at most
/// about 1.6 million levels, some 96 MiB (a literal `[[...]]` 70 deep costs about 0.6 fuel a
/// level; tests/hostile_templates.rs builds one).
#[cfg(not(target_arch = "wasm32"))]
const RENDER_STACK: usize = 128 << 20;
/// How deep lists and maps may nest in a value the template writes out. JSON tool schemas nest
/// a dozen levels at most.
const MAX_NESTING: usize = 64;
/// The bytes of data `FUEL` pays for (MiniJinja's `UNITS_PER_FUEL`).
const FUEL_BYTES: u64 = FUEL * 64;
/// The fuel one byte of `tojson`'s output costs, as MiniJinja charges its own serializations
/// (16 units of the 64 in one fuel): walking a value costs more than copying its bytes.
const TOJSON_BYTES_PER_FUEL: u64 = 4;
/// Nesting depth of loops, conditions and macro calls. MiniJinja's default (500) is its
/// maximum; templates nest a handful deep, and the browser's stack is small.
const RECURSION_LIMIT: usize = 100;
/// The rendered prompt's size cap: room for a million-token context.
const MAX_OUTPUT: usize = 16 << 20;

/// ChatML, which llama.cpp also uses for a file without a template.
const CHATML: &str = "{%- for message in messages -%}\
    {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' -}}\
    {%- endfor -%}\
    {%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}";

/// Gemma's turns, as llama.cpp's built-in `gemma` template writes them: the assistant is
/// `model`; there is no system turn, so system messages (trimmed, run together) open the next
/// user turn, followed by a blank line; every message is trimmed of whitespace, C's `isspace`
/// (`space`, raw characters: Jinja has no escapes for some). No BOS in the text: the tokenizer
/// adds it where the file asks, as Gemma's do.
const GEMMA: &str = "{%- set space = ' \t\n\r\u{b}\u{c}' -%}\
    {%- set ns = namespace(system='') -%}\
    {%- for message in messages -%}\
    {%- if message.role == 'system' -%}\
    {%- set ns.system = ns.system + message.content.strip(space) -%}\
    {%- else -%}\
    {%- set role = 'model' if message.role == 'assistant' else message.role -%}\
    {{- '<start_of_turn>' + role + '\\n' -}}\
    {%- if ns.system and role != 'model' -%}\
    {{- ns.system + '\\n\\n' -}}\
    {%- set ns.system = '' -%}\
    {%- endif -%}\
    {{- message.content.strip(space) + '<end_of_turn>\\n' -}}\
    {%- endif -%}\
    {%- endfor -%}\
    {%- if add_generation_prompt -%}{{- '<start_of_turn>model\\n' -}}{%- endif -%}";

/// The turn format for a file without a template, by its `general.architecture`.
fn builtin_template(architecture: Option<&str>) -> &'static str {
    match architecture {
        Some("gemma" | "gemma2" | "gemma3") => GEMMA,
        _ => CHATML,
    }
}

const NAME: &str = "chat_template";

/// What a render asks of the template besides the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderOptions {
    /// End with the opening of an assistant turn, for the model to complete.
    pub add_generation_prompt: bool,
    /// The template's `enable_thinking`, as llama.cpp's server and Hugging Face pass it: Qwen3's
    /// renders an empty think block when it is false, so the model answers at once. Templates
    /// that do not think ignore it.
    pub enable_thinking: bool,
}

/// What a conversation's prompt is asked for besides the messages.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptOptions {
    /// The template's `enable_thinking` (see [`RenderOptions`]).
    pub enable_thinking: bool,
    /// The functions the model may call, shown to it by its template.
    pub tools: Vec<Tool>,
    /// `ToolChoice::None` renders the prompt without the tools.
    pub tool_choice: ToolChoice,
}

impl Default for PromptOptions {
    fn default() -> Self {
        Self { enable_thinking: true, tools: Vec::new(), tool_choice: ToolChoice::Auto }
    }
}

#[derive(Debug)]
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
    thinks: bool,
    /// How the model writes its calls, or why it cannot be given tools.
    tool_format: Result<ToolFormat, ToolError>,
    /// Why the file's template cannot render (it does not parse), if it cannot.
    unusable: Option<String>,
}

impl ChatTemplate {
    /// The file's template, with its BOS and EOS token texts for the template to use; the
    /// built-in format for the file's architecture when it has no template.
    pub fn from_gguf(file: &GgufFile) -> Result<Self, ChatError> {
        let source = match file.get(TEMPLATE_KEY) {
            Some(_) => file.str(TEMPLATE_KEY)?,
            // A missing or odd architecture is the model loader's to report; here it only
            // means no family format is known.
            None => builtin_template(file.get("general.architecture").and_then(|v| v.as_str())),
        };
        let (bos, eos) = bos_and_eos(file)?;
        match Self::new(source, &bos, &eos) {
            // The model still runs raw prompts: only chat requests need the template, and
            // they get the reason it cannot be used.
            Err(ChatError::Syntax(e)) => Ok(Self {
                env: Environment::new(),
                bos_token: bos,
                eos_token: eos,
                thinks: false,
                tool_format: Err(ToolError::NoToolSupport),
                unusable: Some(e.to_string()),
            }),
            template => template,
        }
    }

    /// `source` in place of the file's template (as llama.cpp's `--chat-template-file`), with
    /// the file's BOS and EOS token texts.
    pub fn from_gguf_with_source(file: &GgufFile, source: &str) -> Result<Self, ChatError> {
        let (bos, eos) = bos_and_eos(file)?;
        Self::new(source, &bos, &eos)
    }

    /// A template from its Jinja source.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self, ChatError> {
        Self::with_clock(source, bos_token, eos_token, || chrono::Local::now().fixed_offset())
    }

    /// As `new`, with `clock` telling the template's `strftime_now` the time (tests fix it).
    pub fn with_clock(source: &str, bos_token: &str, eos_token: &str, clock: Clock) -> Result<Self, ChatError> {
        let mut env = Environment::new();
        env.set_fuel(Some(FUEL));
        env.set_recursion_limit(RECURSION_LIMIT);
        env.set_syntax(SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).build().map_err(ChatError::Syntax)?);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_filter("tojson", tojson);
        env.add_filter("join", join);
        env.add_filter("string", |state: &State, value: &Value| {
            charge_value(state, value)?;
            minijinja::filters::string(state, value)
        });
        env.add_filter("format", |state: &mut State, format: &Value, args: Rest<ValueOrKwargs>| {
            let args: Vec<Value> = args.0.into_iter().map(ValueOrKwargs::into_value).collect();
            for arg in &args {
                charge_value(state, arg)?;
            }
            let args = args.iter().map(|arg| ValueOrKwargs::from_value(Some(arg))).collect::<Result<_, _>>()?;
            minijinja::filters::format(state, format, Rest(args))
        });
        env.set_formatter(|out: &mut Output, state: &mut State, value: &Value| {
            charge_value(state, value)?;
            minijinja::escape_formatter(out, state, value)
        });
        env.add_function("strftime_now", move |format: String| strftime(clock(), &format));
        env.add_template_owned(NAME, source.to_string()).map_err(ChatError::Syntax)?;
        let takes_tools = env.get_template(NAME).map_err(ChatError::Syntax)?.undeclared_variables(false).contains("tools");
        let tool_format = match ToolFormat::detect(source) {
            _ if !takes_tools => Err(ToolError::NoToolSupport),
            Some(format) => Ok(format),
            None => Err(ToolError::UnreadableFormat),
        };
        Ok(Self {
            env,
            bos_token: bos_token.to_string(),
            eos_token: eos_token.to_string(),
            thinks: source.contains(reasoning::OPEN_TAG),
            tool_format,
            unusable: None,
        })
    }

    /// The syntax the model writes tool calls in, when its template shows it tools (reads a
    /// `tools` variable it does not set itself) in a syntax Torchlight reads.
    pub fn tool_format(&self) -> Result<ToolFormat, ToolError> {
        self.tool_format.clone()
    }

    /// The syntax to read the answer's calls in when `tools` are offered with `choice`: none
    /// when no tools are in play (none given, or `"none"`). Checks the tools first.
    pub fn tool_format_for(&self, tools: &[Tool], choice: &ToolChoice) -> Result<Option<ToolFormat>, ToolError> {
        crate::tools::validate(tools, choice)?;
        if tools.is_empty() || *choice == ToolChoice::None {
            return Ok(None);
        }
        self.tool_format().map(Some)
    }

    /// Whether the model writes its reasoning in `<think>` blocks, told by its template naming
    /// the tag: Qwen3's strips such blocks from past answers and writes an empty one when
    /// thinking is off, DeepSeek-R1's opens one in the prompt.
    pub fn thinks(&self) -> bool {
        self.thinks
    }

    /// The prompt for `messages`.
    pub fn render(&self, messages: &[Message], options: RenderOptions) -> Result<String, ChatError> {
        self.render_with_tools(messages, None, options)
    }

    /// The prompt for `messages` with `tools` in the template's `tools`, the list Hugging Face's
    /// `apply_chat_template(tools=...)` gives it (see [`Self::tool_format_for`] for when).
    pub fn render_with_tools(
        &self,
        messages: &[Message],
        tools: Option<&[Tool]>,
        options: RenderOptions,
    ) -> Result<String, ChatError> {
        // Natively the render gets a thread with a deep stack: MiniJinja drops a nested value
        // one stack frame per level, and a template can nest a list a million deep within its
        // fuel (`{% set ns.l = [[[ns.l]]] %}` in a loop), which overflows any thread's default
        // stack at the end of the render. The stack is address space, touched only as deep as
        // the render goes. In wasm there are no threads to spawn: README "Security" says so.
        #[cfg(not(target_arch = "wasm32"))]
        return std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("chat template".into())
                .stack_size(RENDER_STACK)
                .spawn_scoped(scope, || self.render_here(messages, tools, options))
                .map_err(|e| ChatError::Thread(e.to_string()))?
                .join()
                // MiniJinja 3.1 panics on a few inputs (`loop.cycle()` with no argument divides
                // by zero): that is the template's failure, not the engine's.
                .unwrap_or_else(|panic| Err(ChatError::Crashed(panic_text(panic.as_ref()))))
        });
        #[cfg(target_arch = "wasm32")]
        self.render_here(messages, tools, options)
    }

    fn render_here(&self, messages: &[Message], tools: Option<&[Tool]>, options: RenderOptions) -> Result<String, ChatError> {
        if let Some(reason) = &self.unusable {
            return Err(ChatError::Unusable(reason.clone()));
        }
        let template = self.env.get_template(NAME).map_err(ChatError::Render)?;
        let messages: Vec<serde_json::Value> = messages.iter().map(Message::for_template).collect();
        let ctx = context! {
            messages => minijinja::value::Serde(messages),
            // None without tools, as Hugging Face's `apply_chat_template` passes it.
            tools => tools.map(minijinja::value::Serde),
            add_generation_prompt => options.add_generation_prompt,
            enable_thinking => options.enable_thinking,
            bos_token => &self.bos_token,
            eos_token => &self.eos_token,
        };
        let mut out = CappedOutput { bytes: Vec::new(), overflowed: false };
        match template.render_captured_to(ctx, &mut out) {
            // Only whole `str`s are written, so the bytes are UTF-8.
            Ok(_) => Ok(String::from_utf8_lossy(&out.bytes).into_owned()),
            Err(_) if out.overflowed => Err(ChatError::OutputTooLong),
            Err(e) if e.kind() == ErrorKind::OutOfFuel => Err(ChatError::OutOfFuel),
            Err(e) => Err(match raised_message(&e) {
                Some(message) => ChatError::Raised(message),
                None => ChatError::Render(e),
            }),
        }
    }
}

/// A panic's message, as `panic!` and `assert!` leave it.
#[cfg(not(target_arch = "wasm32"))]
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(text), _) => text.to_string(),
        (_, Some(text)) => text.clone(),
        _ => "a panic without a message".to_string(),
    }
}

/// The texts of the file's BOS and EOS tokens, which templates write.
fn bos_and_eos(file: &GgufFile) -> Result<(String, String), ChatError> {
    Ok((special_text(file, "tokenizer.ggml.bos_token_id")?, special_text(file, "tokenizer.ggml.eos_token_id")?))
}

/// The text of the special token whose id `key` holds, or "" when the file names none.
fn special_text(file: &GgufFile, key: &str) -> Result<String, ChatError> {
    let Some(_) = file.get(key) else {
        return Ok(String::new());
    };
    let id = file.usize(key)?;
    let tokens = file.array("tokenizer.ggml.tokens")?;
    Ok(tokens.get(id).and_then(|t| t.as_str()).unwrap_or_default().to_string())
}

/// The time a template's `strftime_now` reports.
pub type Clock = fn() -> chrono::DateTime<chrono::FixedOffset>;

/// Hugging Face's `strftime_now(format)`: the local time in `format` (Llama 3's system turn
/// writes "Today Date: 02 Dec 2026" with it, as llama.cpp's server does).
fn strftime(now: chrono::DateTime<chrono::FixedOffset>, format: &str) -> Result<String, minijinja::Error> {
    use std::fmt::Write;
    let mut out = String::new();
    write!(out, "{}", now.format(format))
        .map_err(|_| minijinja::Error::new(ErrorKind::InvalidOperation, format!("strftime_now: {format:?} is not a date format")))?;
    Ok(out)
}

/// Hugging Face's `tojson`, Python's `json.dumps(value, ensure_ascii=False, indent=indent)`:
/// templates write tool calls and results with it. MiniJinja's own escapes `<`, `>`, `&` and
/// `'` for HTML, which would change the prompt (Llama 3's tool turns) from the one the model
/// was trained on.
fn tojson(
    state: &minijinja::State,
    value: minijinja::Value,
    kwargs: minijinja::value::Kwargs,
) -> Result<minijinja::Value, minijinja::Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    kwargs.assert_all_used()?;
    // Serializing recurses once per level of nesting: refuse what `charge_value` refuses.
    charge_value(state, &value)?;
    // The indent is built once, before any byte is written: pay for it first.
    state.consume_fuel((indent.unwrap_or(0) as u64).div_ceil(TOJSON_BYTES_PER_FUEL))?;
    let mut out = FueledWriter { state, bytes: Some(Vec::new()), error: None };
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, PythonJson::new(indent));
    if let Err(e) = value.serialize(&mut serializer) {
        return Err(out.error.take().unwrap_or_else(|| minijinja::Error::new(ErrorKind::InvalidOperation, format!("tojson: {e}"))));
    }
    // serde_json writes only UTF-8.
    Ok(minijinja::Value::from(String::from_utf8_lossy(&out.bytes.unwrap_or_default()).into_owned()))
}

/// MiniJinja's `join`, paid for first. MiniJinja 3.1's own checks its output against the fuel
/// only between items when the joiner is not empty, and the items of a repeated list are one
/// value, charged once: `(['x' * 10**7] * 10**5)|join` grew a 5 GB string. This charges every
/// item's text (`charge_value`) before MiniJinja's `join` builds the result.
fn join(
    state: &mut minijinja::State,
    value: &minijinja::Value,
    joiner: Option<minijinja::value::StringInput>,
    attribute: Option<&str>,
    kwargs: minijinja::value::Kwargs,
) -> Result<minijinja::Value, minijinja::Error> {
    if let Ok(items) = value.try_iter() {
        for item in items {
            // `attribute` is a dotted path, as MiniJinja's `join` reads it.
            let item = attribute.into_iter().flat_map(|path| path.split('.')).fold(item, |item, part| match part.parse() {
                Ok(index) => item.get_item_by_index(index).unwrap_or_default(),
                Err(_) => item.get_attr(part).unwrap_or_default(),
            });
            charge_value(state, &item)?;
        }
    }
    minijinja::filters::join(state, value, joiner, attribute, kwargs)
}

/// Pays for writing `value` out as text before it is written: a fuel per item of every list or
/// map in it and per 64 bytes of its strings, as MiniJinja charges the values it builds itself.
/// MiniJinja 3.1 writes a value as text (`{{ }}`, `string`, `format`, `join`, `~`) without
/// charging for it, and a repeated list (`[x] * n`, up to 10^8 items) costs nothing to make, so
/// `([1] * 10**8)|string` took minutes and hundreds of megabytes. Walking the items is far
/// cheaper than writing them, and stops as soon as the fuel runs out.
fn charge_value(state: &minijinja::State, value: &minijinja::Value) -> Result<(), minijinja::Error> {
    let mut pending = vec![(value.clone(), 0)];
    while let Some((value, depth)) = pending.pop() {
        if let Some(text) = value.as_str() {
            state.consume_fuel((text.len() as u64).div_ceil(64))?;
        } else if matches!(value.kind(), ValueKind::Seq | ValueKind::Map | ValueKind::Iterable) {
            // Writing a value recurses once per level: a list nested a hundred thousand deep
            // (one `set` per level) would overflow the stack.
            if depth == MAX_NESTING {
                return Err(minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    format!("a value nested more than {MAX_NESTING} deep cannot be written out"),
                ));
            }
            let Ok(items) = value.try_iter() else { continue };
            for item in items {
                state.consume_fuel(1)?;
                if value.kind() == ValueKind::Map {
                    pending.push((value.get_item(&item).unwrap_or_default(), depth + 1));
                }
                pending.push((item, depth + 1));
            }
        }
    }
    Ok(())
}

/// Pays the render's fuel for every byte before it is written, so that a serialization cannot
/// grow past the budget (`tojson(indent=10**9)` would otherwise write gigabytes of indent).
struct FueledWriter<'s, 'env> {
    state: &'s minijinja::State<'s, 'env>,
    /// Where the bytes go; None only counts them.
    bytes: Option<Vec<u8>>,
    /// Why the last write failed: the render's own error (out of fuel), kept whole.
    error: Option<minijinja::Error>,
}

impl io::Write for FueledWriter<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Err(e) = self.state.consume_fuel((buf.len() as u64).div_ceil(TOJSON_BYTES_PER_FUEL)) {
            self.error = Some(e);
            return Err(io::Error::other("out of fuel"));
        }
        if let Some(bytes) = &mut self.bytes {
            bytes.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `json.dumps`'s layout: `", "` and `": "` between items without an indent; with one, items
/// on their own lines and `","` at their ends.
struct PythonJson {
    indent: Option<Vec<u8>>,
    depth: usize,
    /// Whether the innermost open array or object has an item: an empty one stays `[]`.
    has_value: bool,
}

impl PythonJson {
    fn new(indent: Option<usize>) -> Self {
        Self { indent: indent.map(|n| vec![b' '; n]), depth: 0, has_value: false }
    }

    fn newline<W: ?Sized + io::Write>(&self, w: &mut W) -> io::Result<()> {
        if let Some(indent) = &self.indent {
            w.write_all(b"\n")?;
            for _ in 0..self.depth {
                w.write_all(indent)?;
            }
        }
        Ok(())
    }

    fn open<W: ?Sized + io::Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(bracket)
    }

    fn close<W: ?Sized + io::Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            self.newline(w)?;
        }
        w.write_all(bracket)
    }

    fn item<W: ?Sized + io::Write>(&self, w: &mut W, first: bool) -> io::Result<()> {
        if !first {
            w.write_all(if self.indent.is_some() { b"," } else { b", " })?;
        }
        self.newline(w)
    }
}

impl serde_json::ser::Formatter for PythonJson {
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"[")
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"]")
    }
    fn begin_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.item(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"{")
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"}")
    }
    fn begin_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.item(w, first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// What a template's `raise_exception(message)` throws, found again in the error's sources.
#[derive(Debug, Error)]
#[error("{0}")]
struct RaisedException(String);

fn raise_exception(message: String) -> Result<minijinja::Value, minijinja::Error> {
    Err(minijinja::Error::new(ErrorKind::InvalidOperation, message.clone()).with_source(RaisedException(message)))
}

fn raised_message(error: &minijinja::Error) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(raised) = e.downcast_ref::<RaisedException>() {
            return Some(raised.0.clone());
        }
        source = e.source();
    }
    None
}

/// Collects the output and refuses to grow past [`MAX_OUTPUT`], which stops the render.
struct CappedOutput {
    bytes: Vec<u8>,
    overflowed: bool,
}

impl io::Write for CappedOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes.len() + buf.len() > MAX_OUTPUT {
            self.overflowed = true;
            return Err(io::Error::other("chat template output too long"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A conversation as it stands, with no turn opened for the model.
    const TRANSCRIPT: RenderOptions = RenderOptions { add_generation_prompt: false, enable_thinking: true };
    const GENERATE: RenderOptions = RenderOptions { add_generation_prompt: true, enable_thinking: true };

    fn message(role: &str, content: &str) -> Message {
        Message::new(role, content)
    }

    fn user(content: &str) -> Message {
        message("user", content)
    }

    /// Python's `json.dumps(v, ensure_ascii=False)` and with `indent=2`, as printed by Python.
    #[test]
    fn tojson_writes_what_pythons_json_dumps_writes() {
        let render = |source: &str| {
            let template = ChatTemplate::new(source, "", "").unwrap();
            template.render(&[user("it's <b> & é")], TRANSCRIPT).unwrap()
        };
        let value = "{'a': [1, 2, {}], 'b': messages[0].content, 'c': [], 'd': {'x': none, 'y': true}}";
        assert_eq!(
            render(&format!("{{{{ {value} | tojson }}}}")),
            r#"{"a": [1, 2, {}], "b": "it's <b> & é", "c": [], "d": {"x": null, "y": true}}"#
        );
        assert_eq!(
            render(&format!("{{{{ {value} | tojson(indent=2) }}}}")),
            "{\n  \"a\": [\n    1,\n    2,\n    {}\n  ],\n  \"b\": \"it's <b> & é\",\n  \"c\": [],\n  \"d\": {\n    \"x\": null,\n    \"y\": true\n  }\n}"
        );
    }

    #[test]
    fn python_string_methods_and_trimmed_blocks() {
        let t = ChatTemplate::new(
            "{% for m in messages %}\n  {{ m.content.strip().upper() }}{% if m.content.startswith(' x') %}!{% endif %}\n{% endfor %}",
            "",
            "",
        )
        .unwrap();
        // As jinja2 renders it: `trim_blocks` eats the newline after a tag, `lstrip_blocks`
        // leaves the indentation before `{{`.
        assert_eq!(t.render(&[user(" xy "), user("z")], TRANSCRIPT).unwrap(), "  XY!  Z");
    }

    #[test]
    fn syntax_errors_are_reported_at_load() {
        let err = ChatTemplate::new("{% for m in messages %}", "", "").unwrap_err();
        assert!(matches!(err, ChatError::Syntax(_)), "{err}");
        assert!(err.to_string().starts_with("the chat template does not parse"), "{err}");
    }

    #[test]
    fn no_file_access() {
        let t = ChatTemplate::new("{% include '/etc/passwd' %}", "", "").unwrap();
        let err = t.render(&[], TRANSCRIPT).unwrap_err();
        assert!(matches!(err, ChatError::Render(_)), "{err}");
    }

    #[test]
    fn output_is_capped() {
        let t = ChatTemplate::new("{% for i in range(100) %}{{ 'x' * 1000000 }}{% endfor %}", "", "").unwrap();
        assert!(matches!(t.render(&[], TRANSCRIPT), Err(ChatError::OutputTooLong)));
    }

    #[test]
    fn recursion_is_bounded() {
        let t = ChatTemplate::new("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "", "").unwrap();
        let err = t.render(&[], TRANSCRIPT).unwrap_err();
        assert!(err.to_string().contains("recursion"), "{err}");
    }

    #[test]
    fn enable_thinking_reaches_the_template() {
        let t = ChatTemplate::new("{% if enable_thinking is false %}off{% else %}on{% endif %}", "", "").unwrap();
        assert_eq!(t.render(&[], GENERATE).unwrap(), "on");
        assert_eq!(t.render(&[], RenderOptions { enable_thinking: false, ..GENERATE }).unwrap(), "off");
    }

    #[test]
    fn a_template_thinks_when_it_names_the_think_tag() {
        let qwen3_like = "{{ messages[0].content.split('</think>')[-1] }}{% if enable_thinking is false %}<think>\n\n</think>{% endif %}";
        assert!(ChatTemplate::new(qwen3_like, "", "").unwrap().thinks());
        assert!(!ChatTemplate::new(CHATML, "", "").unwrap().thinks());
        assert!(!ChatTemplate::new(GEMMA, "", "").unwrap().thinks());
    }

    /// The strings llama.cpp's built-in `gemma` template (`llm_chat_apply_template` in
    /// src/llama-chat.cpp) writes for the same messages: `llama_chat_apply_template("gemma", ...)`
    /// of llama-cpp-python 0.3.36 gave each of them.
    #[test]
    fn gemma_renders_as_llama_cpp_does() {
        let gemma = ChatTemplate::new(GEMMA, "<bos>", "<eos>").unwrap();
        let render = |messages: &[Message], options| gemma.render(messages, options).unwrap();

        let chat = [user("Hi!"), message("assistant", "Hello."), user("How are you?")];
        assert_eq!(
            render(&chat, GENERATE),
            "<start_of_turn>user\nHi!<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n\
             <start_of_turn>user\nHow are you?<end_of_turn>\n<start_of_turn>model\n"
        );
        assert_eq!(
            render(&chat, TRANSCRIPT),
            "<start_of_turn>user\nHi!<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n\
             <start_of_turn>user\nHow are you?<end_of_turn>\n"
        );
        // The system message opens the first user turn; every message is trimmed of C's
        // whitespace (tab, newline, vertical tab, form feed, carriage return, space), but not of
        // other Unicode spaces.
        let chat =
            [message("system", " Be brief.\n"), user("\t\u{b}Hi!\u{c}\r\n"), message("assistant", "\u{a0}Hello. ")];
        assert_eq!(
            render(&chat, GENERATE),
            "<start_of_turn>user\nBe brief.\n\nHi!<end_of_turn>\n<start_of_turn>model\n\u{a0}Hello.<end_of_turn>\n\
             <start_of_turn>model\n"
        );
        // System messages run together, wait for a user turn past a model one, and are used once.
        let chat =
            [message("system", "One."), message("system", " Two."), message("assistant", "Hi."), user("a"), user("b")];
        assert_eq!(
            render(&chat, GENERATE),
            "<start_of_turn>model\nHi.<end_of_turn>\n<start_of_turn>user\nOne.Two.\n\na<end_of_turn>\n\
             <start_of_turn>user\nb<end_of_turn>\n<start_of_turn>model\n"
        );
        // Other roles keep their names and take the system text too; a system message with no
        // turn after it is dropped.
        let chat = [user("q"), message("system", "late"), message("tool", "42"), message("system", "never")];
        assert_eq!(
            render(&chat, TRANSCRIPT),
            "<start_of_turn>user\nq<end_of_turn>\n<start_of_turn>tool\nlate\n\n42<end_of_turn>\n"
        );
        assert_eq!(render(&[], GENERATE), "<start_of_turn>model\n");
    }
}
