//! Chat templates: SmolLM2's own template must render every conversation of
//! tests/golden/chat_greedy.json exactly as jinja2 did for llama.cpp's golden run, and hostile
//! templates must fail quickly with an error that says why.
//!
//! The model comes from `TORCHLIGHT_TEST_MODEL`, or `<repo>/models/`; when it is missing the
//! tests that need it fail and say how to fetch it.

use std::time::{Duration, Instant};

mod common;

use serde::Deserialize;
use torchlight::chat::{ChatError, ChatTemplate, Message};
use torchlight::gguf::{GgufFile, Value};

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
    Message { role: role.into(), content: content.into() }
}

#[test]
fn smollm2_template_renders_like_jinja2() {
    let template = ChatTemplate::from_gguf(&model_file()).expect("load SmolLM2's chat template");
    for case in golden() {
        let prompt = template.render(&case.messages, true).expect("render");
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
    assert_eq!(template.render(&messages, false).unwrap(), expected);
}

#[test]
fn file_without_template_gets_chatml() {
    let mut file = model_file();
    assert!(file.metadata.remove("tokenizer.chat_template").is_some());
    let template = ChatTemplate::from_gguf(&file).unwrap();
    let messages = [message("system", "Be brief."), message("user", "hi")];
    assert_eq!(
        template.render(&messages, true).unwrap(),
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(
        template.render(&messages, false).unwrap(),
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
    );
}

#[test]
fn template_sees_the_vocabularys_bos_and_eos() {
    let mut file = model_file();
    file.metadata.insert(
        "tokenizer.chat_template".into(),
        Value::String("{{ bos_token }}|{% for m in messages %}{{ m.content }}{% endfor %}|{{ eos_token }}".into()),
    );
    let template = ChatTemplate::from_gguf(&file).unwrap();
    assert_eq!(template.render(&[message("user", "x")], true).unwrap(), "<|im_start|>|x|<|im_end|>");
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
    let err = template.render(&[], true).unwrap_err();
    assert!(matches!(err, ChatError::OutOfFuel), "{err}");
    assert!(err.to_string().contains("ran out of fuel"), "{err}");

    // A single huge range is refused outright by the engine, before any work.
    let template = ChatTemplate::new("{% for i in range(100000000) %}x{% endfor %}", "", "").unwrap();
    let err = template.render(&[], true).unwrap_err();
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
    let err = template.render(&[message("assistant", "hi")], true).unwrap_err();
    match &err {
        ChatError::Raised(message) => assert_eq!(message, "Conversation roles must alternate user/assistant"),
        other => panic!("expected Raised, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "the chat template raised an exception: Conversation roles must alternate user/assistant"
    );
    assert!(template.render(&[message("user", "hi")], true).is_ok());
}

#[test]
fn errors_in_the_template_say_where() {
    let template = ChatTemplate::new("{{ messages[0].content.no_such_method() }}", "", "").unwrap();
    let err = template.render(&[message("user", "hi")], true).unwrap_err();
    assert!(matches!(err, ChatError::Render(_)), "{err:?}");
    assert!(err.to_string().starts_with("the chat template failed:"), "{err}");
}
