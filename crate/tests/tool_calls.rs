//! Tool calling in OpenAI's shape: messages with content parts, tool calls and tool results read
//! from their JSON; tools checked; the real Qwen2.5 and Llama 3.2 templates given tools and a
//! whole call-and-result loop render as jinja2 renders them for Hugging Face; answers read into
//! calls; and, on the real test model with Qwen2.5's template in place of its own, a required
//! call (any tool, or a named one) always names a tool and has arguments that validate, at
//! temperature 0 and 1 with a seed, and the loop's next turn generates.

mod common;

use std::ops::ControlFlow;
use std::sync::Arc;

use serde_json::{json, Value};
use torchlight::chat::{ChatError, ChatTemplate, Message, PromptOptions, RenderOptions};
use torchlight::constraint::GrammarVocabulary;
use torchlight::cpu::CpuBackend;
use torchlight::engine::{Engine, EngineError, FinishReason, GenerateOptions, LoadOptions};
use torchlight::gguf::Value as MetaValue;
use torchlight::sample::SamplingParams;
use torchlight::tokenizer::Tokenizer;
use torchlight::tools::{ParsedAnswer, Tool, ToolCall, ToolCallStream, ToolChoice, ToolError, ToolFormat, ToolStep};

const GENERATE: RenderOptions = RenderOptions { add_generation_prompt: true, enable_thinking: true };

fn template_source(family: &str) -> String {
    let path = format!("{}/tests/data/{family}_chat_template.jinja", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The day tests/golden/make_template_renders.py gives `strftime_now`.
fn reference_clock() -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339("2024-07-26T12:00:00+00:00").unwrap()
}

fn weather() -> Tool {
    serde_json::from_value(json!({
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city now",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}
                },
                "required": ["city"]
            }
        }
    }))
    .unwrap()
}

fn add() -> Tool {
    Tool::function(
        "add",
        Some("The sum of two integers"),
        json!({
            "type": "object",
            "properties": {"a": {"type": "integer", "minimum": 0}, "b": {"type": "integer", "maximum": 100}},
            "required": ["a", "b"],
            "additionalProperties": false
        }),
    )
}

fn message(value: Value) -> Message {
    serde_json::from_value(value).unwrap()
}

/// A question, the call the model made, and its result, as an OpenAI client sends them back.
fn tool_loop() -> Vec<Message> {
    serde_json::from_value(json!([
        {"role": "user", "content": [{"type": "text", "text": "What is the weather "}, {"type": "text", "text": "in Paris?"}]},
        {"role": "assistant", "content": null, "tool_calls": [{
            "id": "call_0", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\", \"unit\": \"celsius\"}"}
        }]},
        {"role": "tool", "tool_call_id": "call_0", "content": "{\"temperature\": 21}"}
    ]))
    .unwrap()
}

#[test]
fn content_is_text_parts_or_null() {
    assert_eq!(message(json!({"role": "user", "content": "hi"})), Message::new("user", "hi"));
    let parts = json!({"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]});
    assert_eq!(message(parts), Message::new("user", "ab"));
    assert_eq!(message(json!({"role": "assistant", "content": null})), Message::new("assistant", ""));
    let calls_only = message(json!({"role": "assistant", "tool_calls": []}));
    assert_eq!((calls_only.content.as_str(), calls_only.tool_calls.map(|c| c.len())), ("", Some(0)));
    assert_eq!(message(json!({"role": "user", "content": []})), Message::new("user", ""));

    let refuse = |value: Value| serde_json::from_value::<Message>(value).unwrap_err().to_string();
    let image = json!({"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    ]});
    assert!(refuse(image).starts_with("content part type \"image_url\" is not supported"));
    let audio = json!({"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]});
    assert!(refuse(audio).starts_with("content part type \"input_audio\" is not supported"));
    assert!(refuse(json!({"role": "user", "content": [{"type": "text"}]})).starts_with("a text content part has no \"text\""));
    assert!(refuse(json!({"role": "user", "content": 7})).starts_with("content must be a string, null, or an array"));
    assert!(refuse(json!({"role": "user"})).starts_with("a \"user\" message has no `content`"));
}

#[test]
fn tool_calls_and_results_round_trip() {
    let json = json!([
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
            {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": "{\"a\": 1, \"b\": 2}"}}
        ]},
        {"role": "tool", "content": "21", "tool_call_id": "call_0", "name": "get_weather"}
    ]);
    let messages: Vec<Message> = serde_json::from_value(json.clone()).unwrap();
    let calls = messages[0].tool_calls.as_deref().unwrap();
    assert_eq!(calls[1], ToolCall::new("call_1".into(), "add".into(), "{\"a\": 1, \"b\": 2}".into()));
    assert_eq!(messages[1].tool_call_id.as_deref(), Some("call_0"));
    assert_eq!(serde_json::to_value(&messages).unwrap(), json);
    // A plain message writes none of the optional fields.
    assert_eq!(serde_json::to_value(Message::new("user", "hi")).unwrap(), json!({"role": "user", "content": "hi"}));
}

#[test]
fn templates_say_whether_and_how_they_take_tools() {
    let format = |source: &str| ChatTemplate::new(source, "", "").unwrap().tool_format();
    assert_eq!(format(&template_source("qwen2.5")), Ok(ToolFormat::Hermes));
    assert_eq!(format(&template_source("qwen3")), Ok(ToolFormat::Hermes));
    assert_eq!(format(&template_source("llama3.2")), Ok(ToolFormat::LlamaJson));
    assert_eq!(format(&template_source("gemma3")), Err(ToolError::NoToolSupport));
    assert_eq!(format(&template_source("phi3.5")), Err(ToolError::NoToolSupport));
    // Naming the tag in text is not reading the tools.
    assert_eq!(format("{{ messages[0].content }} <tool_call>"), Err(ToolError::NoToolSupport));
    assert_eq!(format("{% for t in tools %}{{ t | tojson }}{% endfor %}"), Err(ToolError::UnreadableFormat));

    let qwen = ChatTemplate::new(&template_source("qwen2.5"), "", "").unwrap();
    let tools = [weather(), add()];
    assert_eq!(qwen.tool_format_for(&tools, &ToolChoice::Auto), Ok(Some(ToolFormat::Hermes)));
    assert_eq!(qwen.tool_format_for(&tools, &ToolChoice::None), Ok(None));
    assert_eq!(qwen.tool_format_for(&[], &ToolChoice::Auto), Ok(None));
    let err = qwen.tool_format_for(&[weather(), weather()], &ToolChoice::Auto).unwrap_err();
    assert_eq!(err.to_string(), "two tools are named \"get_weather\": function names must be unique");
    let unnamed: Tool = serde_json::from_value(json!({"type": "function", "function": {"parameters": {}}})).unwrap();
    assert_eq!(qwen.tool_format_for(&[unnamed], &ToolChoice::Auto), Err(ToolError::Unnamed { index: 0 }));
    let err = qwen.tool_format_for(&tools, &ToolChoice::Function("get_time".into())).unwrap_err();
    assert_eq!(err.to_string(), "tool_choice names the function \"get_time\", which is not one of the tools");
    let err = qwen.tool_format_for(&[], &ToolChoice::Required).unwrap_err();
    assert_eq!(err.to_string(), "tool_choice \"required\" needs tools, and none were given");
}

/// Qwen2.5's template with tools, as jinja2 3.1.6 renders it with Hugging Face's settings
/// (`apply_chat_template(messages, tools=[...], add_generation_prompt=True)`, the arguments of the
/// past call given as an object).
#[test]
fn qwen25_renders_tools_and_a_tool_loop_as_jinja2_does() {
    let template = ChatTemplate::new(&template_source("qwen2.5"), "", "<|im_end|>").unwrap();
    let tools = [weather()];
    let system = "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.\n\n# Tools\n\n\
        You may call one or more functions to assist with the user query.\n\n\
        You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n\
        {\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"The weather in a city now\", \
        \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}, \"unit\": {\"type\": \"string\", \
        \"enum\": [\"celsius\", \"fahrenheit\"]}}, \"required\": [\"city\"]}}}\n</tools>\n\n\
        For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n\
        <tool_call>\n{{\"name\": <function-name>, \"arguments\": <args-json-object>}}\n</tool_call><|im_end|>\n";
    let question = "<|im_start|>user\nWhat is the weather in Paris?<|im_end|>\n";
    let asked = template.render_with_tools(&tool_loop()[..1], Some(&tools), GENERATE).unwrap();
    assert_eq!(asked, format!("{system}{question}<|im_start|>assistant\n"));

    let answered = template.render_with_tools(&tool_loop(), Some(&tools), GENERATE).unwrap();
    let turns = "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}\n\
        </tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n{\"temperature\": 21}\n</tool_response><|im_end|>\n";
    assert_eq!(answered, format!("{system}{question}{turns}<|im_start|>assistant\n"));

    // Without tools the template writes its plain system turn.
    let plain = template.render(&tool_loop()[..1], GENERATE).unwrap();
    assert!(plain.starts_with("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"));
}

/// Llama 3.2's template puts the tools in the first user turn and writes a past call as
/// `{"name": ..., "parameters": ...}`, as jinja2 3.1.6 renders it.
#[test]
fn llama32_renders_tools_and_a_tool_loop_as_jinja2_does() {
    let template =
        ChatTemplate::with_clock(&template_source("llama3.2"), "<|begin_of_text|>", "<|eot_id|>", reference_clock).unwrap();
    let tools = [weather()];
    let schema = "{\n    \"type\": \"function\",\n    \"function\": {\n        \"name\": \"get_weather\",\n        \
        \"description\": \"The weather in a city now\",\n        \"parameters\": {\n            \"type\": \"object\",\n            \
        \"properties\": {\n                \"city\": {\n                    \"type\": \"string\"\n                },\n                \
        \"unit\": {\n                    \"type\": \"string\",\n                    \"enum\": [\n                        \
        \"celsius\",\n                        \"fahrenheit\"\n                    ]\n                }\n            },\n            \
        \"required\": [\n                \"city\"\n            ]\n        }\n    }\n}";
    let start = format!(
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\nCutting Knowledge Date: December 2023\n\
         Today Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nGiven the following functions, please respond \
         with a JSON for a function call with its proper arguments that best answers the given prompt.\n\nRespond in the format \
         {{\"name\": function name, \"parameters\": dictionary of argument name and its value}}.Do not use variables.\n\n{schema}\n\n\
         What is the weather in Paris?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    );
    assert_eq!(template.render_with_tools(&tool_loop()[..1], Some(&tools), GENERATE).unwrap(), start);
    let answered = template.render_with_tools(&tool_loop(), Some(&tools), GENERATE).unwrap();
    // The template counts a string result as `iterable`, so writes it through `tojson`.
    let turns = "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}<|eot_id|>\
        <|start_header_id|>ipython<|end_header_id|>\n\n\"{\\\"temperature\\\": 21}\"<|eot_id|>\
        <|start_header_id|>assistant<|end_header_id|>\n\n";
    assert_eq!(answered, format!("{start}{turns}"));
}

#[test]
fn answers_are_read_into_calls_as_they_stream() {
    let text = "I will look.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n\
                <tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}\n</tool_call>";
    let mut stream = ToolCallStream::new(ToolFormat::Hermes);
    let mut steps = Vec::new();
    // Pieces as a tokenizer might cut them, markers split across pieces.
    for piece in text.as_bytes().chunks(5) {
        steps.push(stream.push(std::str::from_utf8(piece).unwrap()));
    }
    let (last, answer) = stream.finish();
    steps.push(last);
    let content: String = steps.iter().map(|s| s.content.as_str()).collect();
    let calls: Vec<ToolCall> = steps.into_iter().flat_map(|s| s.calls).collect();
    assert_eq!(content, "I will look.");
    assert_eq!(
        calls,
        [
            ToolCall::new("call_0".into(), "get_weather".into(), "{\"city\":\"Paris\"}".into()),
            ToolCall::new("call_1".into(), "add".into(), "{\"a\":1,\"b\":2}".into()),
        ]
    );
    assert_eq!(answer, ParsedAnswer { content, tool_calls: calls });
    assert_eq!(answer.finish_reason(FinishReason::Stop), "tool_calls");

    // Garbage in a block stays text; so does a Llama answer that is not a call.
    let garbage = torchlight::tools::parse(ToolFormat::Hermes, "<tool_call>\n{\"name\": }\n</tool_call>");
    assert_eq!((garbage.content.as_str(), garbage.tool_calls.len()), ("<tool_call>\n{\"name\": }\n</tool_call>", 0));
    assert_eq!(garbage.finish_reason(FinishReason::Stop), "stop");
    let llama = torchlight::tools::parse(ToolFormat::LlamaJson, "{\"name\": \"add\", \"parameters\": {\"a\": 1, \"b\": 2}}");
    assert_eq!(llama.tool_calls, [ToolCall::new("call_0".into(), "add".into(), "{\"a\":1,\"b\":2}".into())]);
}

/// The grammars compile against the real vocabulary, for every format and choice, with
/// `$defs` in a schema; a schema the library cannot compile is refused when compiled.
#[test]
fn call_grammars_compile_with_llguidance() {
    let (_, file) = common::open_model();
    let vocabulary = GrammarVocabulary::new(Arc::new(Tokenizer::from_gguf(&file).unwrap())).unwrap();
    let nested = Tool::function(
        "book",
        None,
        json!({
            "type": "object",
            "properties": {"guest": {"$ref": "#/$defs/person"}, "nights": {"type": "integer", "minimum": 1}},
            "required": ["guest"],
            "$defs": {"person": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}
        }),
    );
    let tools = [weather(), add(), nested, Tool::function("ping", None, json!({}))];
    for format in [ToolFormat::Hermes, ToolFormat::LlamaJson] {
        for choice in [ToolChoice::Required, ToolChoice::Function("book".into()), ToolChoice::Function("ping".into())] {
            for parallel in [false, true] {
                let call = format.grammar(&tools, &choice, parallel).unwrap().unwrap();
                if let Err(e) = vocabulary.compile(&call.grammar) {
                    panic!("{format:?} {choice}: {e}\n{:?}", call.grammar);
                }
            }
        }
    }
    let odd = Tool::function("odd", None, json!({"type": "object", "properties": {"x": {"type": "integer", "if": {}}}}));
    let call = ToolFormat::Hermes.grammar(&[add(), odd], &ToolChoice::Required, false).unwrap().unwrap();
    let Err(err) = vocabulary.compile(&call.grammar) else { panic!("compiled a schema with `if`") };
    assert_eq!(
        call.explain(err).to_string(),
        "the parameters of tool \"odd\" cannot be compiled: Unimplemented keys: [\"if\"]"
    );
}

fn load(template: Option<&str>) -> Engine<CpuBackend> {
    let (mut source, mut file) = common::open_model();
    if let Some(template) = template {
        file.metadata.insert("tokenizer.chat_template".into(), MetaValue::String(template.into()));
    }
    let options = LoadOptions { context: 1024, ..LoadOptions::default() };
    Engine::load(CpuBackend::new(2), &file, &mut source, &options, &mut |_| {}).unwrap()
}

fn sampling(temperature: f32, max_tokens: usize) -> GenerateOptions {
    GenerateOptions {
        max_tokens,
        sampling: SamplingParams { temperature, seed: Some(7), ..SamplingParams::default() },
        ..GenerateOptions::default()
    }
}

/// Generates an answer to `messages`, constrained as `choice` asks, and reads it as it streams.
fn answer(
    engine: &mut Engine<CpuBackend>,
    messages: &[Message],
    tools: &[Tool],
    choice: &ToolChoice,
    options: &GenerateOptions,
) -> (ParsedAnswer, FinishReason) {
    let prompt_options = PromptOptions { tools: tools.to_vec(), tool_choice: choice.clone(), ..PromptOptions::default() };
    let prompt = engine.chat_prompt(messages, &prompt_options).unwrap();
    let format = prompt.tool_format.expect("a template with tools");
    // OpenAI's `parallel_tool_calls` is on unless turned off: a required answer may make several.
    let constraint = format.grammar(tools, choice, true).unwrap().map(|call| engine.constraint(&call.grammar).unwrap());
    let mut stream = ToolCallStream::new(format);
    let mut streamed = ToolStep::default();
    let generation = pollster::block_on(engine.generate_constrained(&prompt.tokens, options, constraint, &mut |text| {
        let step = stream.push(text);
        streamed.content.push_str(&step.content);
        streamed.calls.extend(step.calls);
        ControlFlow::Continue(())
    }))
    .unwrap();
    let (last, answer) = stream.finish();
    streamed.content.push_str(&last.content);
    streamed.calls.extend(last.calls);
    assert_eq!((&streamed.content, &streamed.calls), (&answer.content, &answer.tool_calls));
    assert_eq!(answer, torchlight::tools::parse(format, &generation.text));
    println!("{choice} at {}: {:?} {:?}", options.sampling.temperature, generation.finish_reason, generation.text);
    (answer, generation.finish_reason)
}

/// Each call names one of `tools` and its arguments validate against that tool's schema.
fn check_calls(answer: &ParsedAnswer, tools: &[Tool]) {
    assert!(!answer.tool_calls.is_empty(), "no call: {answer:?}");
    for call in &answer.tool_calls {
        let tool = tools.iter().find(|t| t.name() == call.function.name).unwrap_or_else(|| panic!("{call:?}"));
        let arguments: Value = serde_json::from_str(&call.function.arguments).unwrap();
        let validator = jsonschema::validator_for(&tool.function.parameters).unwrap();
        assert!(validator.is_valid(&arguments), "{} does not validate against {}", call.function.arguments, tool.function.parameters);
    }
}

#[test]
fn a_model_without_tool_support_refuses_tools() {
    let engine = load(None);
    let question = [Message::new("user", "What is the weather in Paris?")];
    let options = PromptOptions { tools: vec![weather()], ..PromptOptions::default() };
    let err = engine.chat_prompt(&question, &options).unwrap_err();
    assert!(matches!(err, EngineError::Chat(ChatError::Tool(ToolError::NoToolSupport))), "{err:?}");
    assert_eq!(err.to_string(), "the model's chat template has no tool support");
    // `"none"` asks for no tools: the prompt is the one without them.
    let none = PromptOptions { tool_choice: ToolChoice::None, ..options };
    let prompt = engine.chat_prompt(&question, &none).unwrap();
    assert_eq!(prompt.tool_format, None);
    assert_eq!(prompt.tokens, engine.chat_prompt(&question, &PromptOptions::default()).unwrap().tokens);
}

/// The test model with Qwen2.5's template: a required call always parses and validates, for
/// any tool or a named one, greedy and sampled; and the loop's next turn, with the call and its
/// result in the prompt, generates an answer.
#[test]
fn required_calls_validate_and_the_loop_runs() {
    let mut engine = load(Some(&template_source("qwen2.5")));
    let tools = [weather(), add()];
    let ask = |text: &str| vec![Message::new("user", text)];
    for temperature in [0.0, 1.0] {
        let options = sampling(temperature, 200);
        for (question, choice) in [
            ("What is the weather in Paris?", ToolChoice::Required),
            ("What is 2 + 40?", ToolChoice::Required),
            ("What is 2 + 40?", ToolChoice::Function("add".into())),
            ("What is 2 + 40?", ToolChoice::Function("get_weather".into())),
        ] {
            let (answer, finish) = answer(&mut engine, &ask(question), &tools, &choice, &options);
            check_calls(&answer, &tools);
            if let ToolChoice::Function(name) = &choice {
                assert!(answer.tool_calls.iter().all(|call| call.function.name == *name), "{answer:?}");
            }
            assert_eq!(answer.finish_reason(finish), "tool_calls");
            assert_eq!(answer.content, "");
        }
    }

    // The loop: the call just made and its result go back through the template, with the
    // tools still offered; the model answers (in text or with another call).
    let (first, _) = answer(&mut engine, &ask("What is the weather in Paris?"), &tools, &ToolChoice::Function("get_weather".into()), &sampling(0.0, 200));
    let call = first.tool_calls[0].clone();
    let mut messages = ask("What is the weather in Paris?");
    messages.push(Message { tool_calls: Some(vec![call.clone()]), ..Message::new("assistant", first.content) });
    messages.push(Message { tool_call_id: Some(call.id), ..Message::new("tool", "{\"temperature\": 21, \"unit\": \"celsius\"}") });
    let prompt = engine.chat_prompt(&messages, &PromptOptions { tools: tools.to_vec(), ..PromptOptions::default() }).unwrap();
    let text = engine.tokenizer.decode(&prompt.tokens);
    assert!(text.contains("<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "), "{text}");
    assert!(text.ends_with("<tool_response>\n{\"temperature\": 21, \"unit\": \"celsius\"}\n</tool_response><|im_end|>\n<|im_start|>assistant\n"), "{text}");
    let (next, finish) = answer(&mut engine, &messages, &tools, &ToolChoice::Auto, &sampling(0.0, 48));
    assert!(!next.content.is_empty() || !next.tool_calls.is_empty(), "{next:?}");
    assert_ne!(finish, FinishReason::Aborted);
}

/// The same with Llama 3.2's template and syntax, greedy: the answer is the call.
#[test]
fn llama_json_required_call_validates() {
    let mut engine = load(Some(&template_source("llama3.2")));
    let tools = [weather(), add()];
    let question = [Message::new("user", "What is the weather in Paris?")];
    for choice in [ToolChoice::Required, ToolChoice::Function("add".into())] {
        let (answer, finish) = answer(&mut engine, &question, &tools, &choice, &sampling(0.0, 200));
        check_calls(&answer, &tools);
        assert_eq!(answer.tool_calls.len(), 1);
        assert_eq!(answer.finish_reason(finish), "tool_calls");
    }
}
