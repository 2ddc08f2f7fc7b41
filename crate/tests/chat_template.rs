//! Chat templates: SmolLM2's own template must render every conversation of
//! tests/golden/chat_greedy.json exactly as jinja2 did for llama.cpp's golden run; the real
//! templates of Qwen3, Llama 3.2, Qwen2.5, Phi-3.5, Phi-4-mini and Gemma 3
//! (tests/data/<family>_chat_template.jinja) every case of tests/data/<family>_renders.json, as
//! jinja2 does for Hugging Face (tests/golden/make_template_renders.py); a file without a
//! template gets its family's format; and hostile templates must fail quickly with an error that
//! says why.
//!
//! The model comes from `TORCHLIGHT_TEST_MODEL`, or `<repo>/models/`; when it is missing the
//! tests that need it fail and say how to fetch it.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

mod common;

use serde::Deserialize;
use torchlight::chat::{ChatError, ChatTemplate, Message, PromptOptions, RenderOptions};
use torchlight::cpu::CpuBackend;
use torchlight::engine::{Engine, GenerateOptions, LoadOptions};
use torchlight::sample::SamplingParams;
use torchlight::gguf::{GgufFile, Value};
use torchlight::reasoning::Reasoning;

const GENERATE: RenderOptions = RenderOptions { add_generation_prompt: true, enable_thinking: true };
const TRANSCRIPT: RenderOptions = RenderOptions { add_generation_prompt: false, enable_thinking: true };

#[derive(Deserialize)]
struct Golden {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    messages: Vec<Message>,
    prompt: String,
}

fn model_file() -> GgufFile {
    common::open_model().1
}

fn golden() -> Vec<Case> {
    let golden: Golden = common::read_golden("chat_greedy.json");
    assert!(!golden.cases.is_empty(), "chat_greedy.json has no cases");
    golden.cases
}

fn message(role: &str, content: &str) -> Message {
    Message::new(role, content)
}

#[test]
fn smollm2_template_renders_like_jinja2() {
    let template = ChatTemplate::from_gguf(&model_file()).expect("load SmolLM2's chat template");
    for case in golden() {
        let prompt = template.render(&case.messages, GENERATE).expect("render");
        assert_eq!(prompt, case.prompt, "case {}", case.name);
    }
}

#[test]
fn smollm2_template_without_generation_prompt() {
    let template = ChatTemplate::from_gguf(&model_file()).unwrap();
    let messages = [message("user", "What is 2 + 2?"), message("assistant", "4.")];
    // jinja2 3.1 with Hugging Face's settings renders this.
    let expected =
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
                    <|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n4.<|im_end|>\n";
    assert_eq!(template.render(&messages, TRANSCRIPT).unwrap(), expected);
}

#[test]
fn file_without_template_gets_chatml() {
    let mut file = model_file();
    assert!(file.metadata.remove("tokenizer.chat_template").is_some());
    let template = ChatTemplate::from_gguf(&file).unwrap();
    let messages = [message("system", "Be brief."), message("user", "hi")];
    assert_eq!(
        template.render(&messages, GENERATE).unwrap(),
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(
        template.render(&messages, TRANSCRIPT).unwrap(),
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
    );
    // The same for another family without a format of its own, or for no family named.
    file.metadata.insert("general.architecture".into(), Value::String("qwen2".into()));
    let other = ChatTemplate::from_gguf(&file).unwrap();
    file.metadata.remove("general.architecture");
    let unnamed = ChatTemplate::from_gguf(&file).unwrap();
    for template in [other, unnamed] {
        assert_eq!(
            template.render(&messages, GENERATE).unwrap(),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
    }
}

#[test]
fn gemma_file_without_template_gets_gemmas_turns() {
    let mut file = model_file();
    assert!(file.metadata.remove("tokenizer.chat_template").is_some());
    let messages = [message("system", "Be brief."), message("user", "hi")];
    for arch in ["gemma", "gemma2", "gemma3"] {
        file.metadata.insert("general.architecture".into(), Value::String(arch.into()));
        assert_eq!(
            ChatTemplate::from_gguf(&file).unwrap().render(&messages, GENERATE).unwrap(),
            "<start_of_turn>user\nBe brief.\n\nhi<end_of_turn>\n<start_of_turn>model\n",
            "{arch}"
        );
    }
}

/// A family's real chat template, as its GGUF files carry it, and jinja2's renders of it with
/// Hugging Face's settings (tests/golden/make_template_renders.py wrote them).
#[derive(Deserialize)]
struct Renders {
    template: String,
    bos_token: String,
    eos_token: String,
    thinks: bool,
    cases: Vec<RenderCase>,
    /// Cases that jinja2 renders one way and Torchlight's MiniJinja another, with the reason.
    known_differences: Vec<RenderCase>,
}

#[derive(Deserialize)]
struct RenderCase {
    name: String,
    messages: Vec<Message>,
    add_generation_prompt: bool,
    /// Only for templates that read it (Qwen3's); the others are rendered without it.
    enable_thinking: Option<bool>,
    /// jinja2's prompt, or, for a conversation the template refuses, its `raise_exception` message.
    prompt: Option<String>,
    raises: Option<String>,
    why: Option<String>,
}

impl RenderCase {
    fn options(&self) -> RenderOptions {
        RenderOptions {
            add_generation_prompt: self.add_generation_prompt,
            enable_thinking: self.enable_thinking.unwrap_or(true),
        }
    }
}

/// Each family's `<family>_renders.json` in tests/data, with its number of cases.
const TEMPLATE_RENDERS: [(&str, usize); 6] =
    [("qwen3", 18), ("llama3.2", 9), ("qwen2.5", 8), ("phi3.5", 8), ("phi4-mini", 7), ("gemma3", 8)];

/// The day make_template_renders.py's clock says: 26 Jul 2024.
fn reference_clock() -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339("2024-07-26T12:00:00+00:00").unwrap()
}

/// Today, written by the template's `strftime_now` as Llama 3's writes it.
#[test]
fn strftime_now_writes_the_day_it_renders_on() {
    let template = ChatTemplate::new("{{ strftime_now('%d %b %Y') }}", "", "").unwrap();
    let options = RenderOptions { add_generation_prompt: false, enable_thinking: true };
    let before = chrono::Local::now().format("%d %b %Y").to_string();
    let rendered = template.render(&[], options).unwrap();
    let after = chrono::Local::now().format("%d %b %Y").to_string();
    assert!(rendered == before || rendered == after, "{rendered} is not today ({before})");
    let bad = ChatTemplate::new("{{ strftime_now('%Q') }}", "", "").unwrap().render(&[], options);
    assert!(bad.unwrap_err().to_string().contains("not a date format"));
}

fn test_data(name: &str) -> String {
    let path = common::repo_root().join("crate/tests/data").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn qwen3_template() -> String {
    test_data("qwen3_chat_template.jinja")
}

/// Where Torchlight's render first differs from jinja2's, with the text of each around it.
fn first_difference(torchlight: &str, jinja2: &str) -> String {
    let at = torchlight.chars().zip(jinja2.chars()).take_while(|(x, y)| x == y).count();
    let around = |s: &str| s.chars().skip(at.saturating_sub(20)).take(60).collect::<String>();
    format!("first difference at character {at}: {:?} where jinja2 has {:?}", around(torchlight), around(jinja2))
}

/// Every family's real template renders every case exactly as jinja2 does with Hugging Face's
/// `apply_chat_template` settings: Qwen3 (thinking on and off), Llama 3.2, Qwen2.5, Phi-3.5,
/// Phi-4-mini and Gemma 3, including the conversations a template refuses.
///
/// Llama 3.2's template writes `strftime_now("%d %b %Y")` as its "Today Date:"; the generator's
/// clock and this test's are fixed at the same day.
#[test]
fn real_templates_render_like_jinja2() {
    let mut failures = Vec::new();
    for (family, count) in TEMPLATE_RENDERS {
        let renders: Renders = serde_json::from_str(&test_data(&format!("{family}_renders.json"))).unwrap();
        assert_eq!(renders.cases.len(), count, "{family}: number of cases");
        let template = ChatTemplate::with_clock(&test_data(&renders.template), &renders.bos_token, &renders.eos_token, reference_clock)
            .unwrap_or_else(|e| panic!("{family}: {e}"));
        assert_eq!(template.thinks(), renders.thinks, "{family}: thinks");
        for case in &renders.cases {
            let thinking = case.enable_thinking.map(|on| format!(", thinking {on}")).unwrap_or_default();
            let what = format!("{family}: case {:?}{thinking}", case.name);
            match (template.render(&case.messages, case.options()), &case.prompt, &case.raises) {
                (Ok(prompt), Some(expected), None) if prompt == *expected => {}
                (Ok(prompt), Some(expected), None) => failures.push(format!(
                    "{what}: {}\n  got      {prompt:?}\n  expected {expected:?}",
                    first_difference(&prompt, expected)
                )),
                (Err(ChatError::Raised(message)), None, Some(expected)) if message == *expected => {}
                (outcome, _, _) => failures.push(format!(
                    "{what}: got {outcome:?}, expected {}",
                    case.raises.as_ref().map_or("a prompt".to_string(), |m| format!("the exception {m:?}"))
                )),
            }
        }
        // Differences from jinja2 that are known and explained: each must still differ, so that
        // a fix shows and the case moves to `cases` in the generator.
        for case in &renders.known_differences {
            let why = case.why.as_deref().unwrap_or_default();
            assert!(!why.is_empty(), "{family}: known difference {:?} says why", case.name);
            let expected = case.prompt.as_deref().expect("a known difference holds jinja2's prompt");
            let prompt = template.render(&case.messages, case.options()).expect("render");
            if prompt == expected {
                failures.push(format!(
                    "{family}: known difference {:?} now renders as jinja2 does: make it a case",
                    case.name
                ));
            } else {
                let difference = first_difference(&prompt, expected);
                eprintln!("{family}: known difference {:?}: {difference} ({why})", case.name);
            }
        }
    }
    assert!(failures.is_empty(), "{} renders differ from jinja2's:\n{}", failures.len(), failures.join("\n"));
}

/// The engine's chat prompt says how to split the answer: by whether the template thinks, and
/// where its prompt leaves a think block.
#[test]
fn chat_prompts_say_how_reasoning_splits() {
    let (mut source, mut file) = common::open_model();
    let mut engine = |template: Option<&str>| {
        if let Some(template) = template {
            file.metadata.insert("tokenizer.chat_template".into(), Value::String(template.into()));
        }
        let options = LoadOptions { context: 64, ..LoadOptions::default() };
        Engine::load(CpuBackend::new(1), &file, &mut source, &options, &mut |_| {}).unwrap()
    };
    let question = [message("user", "Why is the sky blue?")];

    let smollm2 = engine(None);
    assert_eq!(smollm2.chat_prompt(&question, &PromptOptions::default()).unwrap().reasoning, Reasoning::None);

    // Qwen3 leaves the think block to the model; with thinking off it writes an empty one.
    let qwen3 = engine(Some(&qwen3_template()));
    let thinking = qwen3.chat_prompt(&question, &PromptOptions::default()).unwrap();
    let not_thinking = qwen3.chat_prompt(&question, &PromptOptions { enable_thinking: false, ..PromptOptions::default() }).unwrap();
    assert_eq!((thinking.reasoning, not_thinking.reasoning), (Reasoning::MayOpen, Reasoning::MayOpen));
    let text = |tokens: &[u32]| qwen3.tokenizer.decode(tokens);
    assert!(text(&thinking.tokens).ends_with("<|im_start|>assistant\n"), "{:?}", text(&thinking.tokens));
    assert_eq!(text(&not_thinking.tokens), text(&thinking.tokens) + "<think>\n\n</think>\n\n");

    // A DeepSeek-R1-like template opens it in the prompt.
    let opens = "{% for m in messages %}{{ m.content }}{% endfor %}{% if add_generation_prompt %}<think>\n{% endif %}";
    assert_eq!(engine(Some(opens)).chat_prompt(&question, &PromptOptions::default()).unwrap().reasoning, Reasoning::Open);
}

#[test]
fn template_sees_the_vocabularys_bos_and_eos() {
    let mut file = model_file();
    file.metadata.insert(
        "tokenizer.chat_template".into(),
        Value::String("{{ bos_token }}|{% for m in messages %}{{ m.content }}{% endfor %}|{{ eos_token }}".into()),
    );
    let template = ChatTemplate::from_gguf(&file).unwrap();
    assert_eq!(template.render(&[message("user", "x")], GENERATE).unwrap(), "<|im_start|>|x|<|im_end|>");
}

#[test]
fn runaway_loops_run_out_of_fuel_quickly() {
    let start = Instant::now();
    let template = ChatTemplate::new(
        "{% for i in range(100000) %}{% for j in range(100000) %}{{ j }}{% endfor %}{% endfor %}",
        "",
        "",
    )
    .unwrap();
    let err = template.render(&[], GENERATE).unwrap_err();
    assert!(matches!(err, ChatError::OutOfFuel), "{err}");
    assert!(err.to_string().contains("ran out of fuel"), "{err}");

    // A single huge range is refused outright by the engine, before any work.
    let template = ChatTemplate::new("{% for i in range(100000000) %}x{% endfor %}", "", "").unwrap();
    let err = template.render(&[], GENERATE).unwrap_err();
    assert!(err.to_string().contains("range has too many elements"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(10), "took {:?}", start.elapsed());
}

#[test]
fn raise_exception_reports_the_templates_message() {
    let template = ChatTemplate::new(
        "{% if messages[0].role != 'user' %}{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}",
        "",
        "",
    )
    .unwrap();
    let err = template.render(&[message("assistant", "hi")], GENERATE).unwrap_err();
    match &err {
        ChatError::Raised(message) => assert_eq!(message, "Conversation roles must alternate user/assistant"),
        other => panic!("expected Raised, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "the chat template raised an exception: Conversation roles must alternate user/assistant"
    );
    assert!(template.render(&[message("user", "hi")], GENERATE).is_ok());
}

#[test]
fn errors_in_the_template_say_where() {
    let template = ChatTemplate::new("{{ messages[0].content.no_such_method() }}", "", "").unwrap();
    let err = template.render(&[message("user", "hi")], GENERATE).unwrap_err();
    assert!(matches!(err, ChatError::Render(_)), "{err:?}");
    assert!(err.to_string().starts_with("the chat template failed:"), "{err}");
}

/// A template that does not parse refuses chat requests only, saying why; the model loads and
/// still answers a raw prompt.
#[test]
fn a_template_that_does_not_parse_refuses_chat_only() {
    let (mut source, mut file) = common::open_model();
    file.metadata.insert("tokenizer.chat_template".into(), Value::String("{% for m in messages %}".into()));
    let options = LoadOptions { context: 64, ..LoadOptions::default() };
    let mut engine = Engine::load(CpuBackend::new(1), &file, &mut source, &options, &mut |_| {}).expect("the model loads");
    let err = engine.chat_prompt(&[message("user", "hi")], &PromptOptions::default()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("chat template does not parse") && text.contains("raw prompts still run"), "{text}");
    assert!(text.contains("unexpected end of input"), "the reason is missing: {text}");

    let prompt = engine.tokenizer.encode("The capital of France is", true, false).unwrap();
    let greedy = GenerateOptions {
        max_tokens: 4,
        sampling: SamplingParams { temperature: 0.0, ..SamplingParams::default() },
        stop: Vec::new(),
        ignore_eos: true,
        cache_prompt: false,
        ..GenerateOptions::default()
    };
    let answer = pollster::block_on(engine.generate(&prompt, &greedy, &mut |_| ControlFlow::Continue(()))).unwrap();
    assert_eq!(answer.tokens.len(), 4);
}
