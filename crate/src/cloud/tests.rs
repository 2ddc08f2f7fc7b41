//! Tool calls and log probabilities, whole and streamed, as OpenAI, llama.cpp's server
//! (`llama-server`) and llama-cpp-python send them; and the shapes a malformed call fails on.
//! (Text, SSE and failed responses: crate/tests/cloud_protocol.rs.)

use serde_json::{json, Value};

use super::*;

/// What a chat stream gives and how it ends, checked to be the same however its bytes arrive:
/// whole, or split in two at every byte.
fn chat_stream(input: &str) -> (Vec<Delta>, Result<StreamEnd, CloudError>) {
    let input = input.as_bytes();
    let mut whole = ChatStream::default();
    let deltas = whole.push(input).unwrap();
    let end = whole.end();
    for cut in 0..=input.len() {
        let mut stream = ChatStream::default();
        let mut split = stream.push(&input[..cut]).unwrap();
        split.extend(stream.push(&input[cut..]).unwrap());
        assert_eq!(split, deltas, "split at byte {cut}");
        assert_eq!(format!("{:?}", stream.end()), format!("{end:?}"), "split at byte {cut}");
    }
    (deltas, end)
}

/// SSE events, one per chunk.
fn events(chunks: &[Value]) -> String {
    chunks.iter().map(|chunk| format!("data: {chunk}\n\n")).chain(["data: [DONE]\n\n".to_owned()]).collect()
}

/// The message of the tool-call error `result` failed with.
fn tool_call_error(result: Result<impl std::fmt::Debug, CloudError>) -> String {
    match result {
        Err(CloudError::Protocol(e @ ProtocolError::ToolCall { .. })) => e.to_string(),
        other => panic!("expected a malformed tool call, got {other:?}"),
    }
}

fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
    ToolCall {
        id: id.into(),
        kind: ToolKind::Function,
        function: FunctionCall { name: name.into(), arguments: arguments.into() },
    }
}

/// What JS sees.
fn js(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap()
}

// Whole answers.

/// OpenAI, two parallel calls, verbatim but for the ids.
const OPENAI_TOOL_CALLS_BODY: &str = r#"{"id":"chatcmpl-C3x","object":"chat.completion","created":1795563482,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_Qf3","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},{"id":"call_Zk9","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}],"refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":82,"completion_tokens":48,"total_tokens":130,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_560af6e559"}"#;

#[test]
fn an_openai_answer_with_two_calls_and_null_content() {
    let completion = Completion::parse(OPENAI_TOOL_CALLS_BODY).unwrap();
    assert_eq!(
        completion,
        Completion {
            content: String::new(),
            tool_calls: vec![
                call("call_Qf3", "get_weather", r#"{"city":"Paris"}"#),
                call("call_Zk9", "get_weather", r#"{"city":"Oslo"}"#),
            ],
            logprobs: None,
            finish_reason: "tool_calls".into(),
            usage: Some(Usage { prompt_tokens: 82, completion_tokens: 48, total_tokens: 130 }),
        }
    );
    assert_eq!(
        js(&completion),
        json!({
            "content": "",
            "tool_calls": [
                { "id": "call_Qf3", "type": "function", "function": { "name": "get_weather", "arguments": "{\"city\":\"Paris\"}" } },
                { "id": "call_Zk9", "type": "function", "function": { "name": "get_weather", "arguments": "{\"city\":\"Oslo\"}" } },
            ],
            "finish_reason": "tool_calls",
            "usage": { "prompt_tokens": 82, "completion_tokens": 48, "total_tokens": 130 },
        })
    );
}

#[test]
fn a_llama_server_answer_with_a_call() {
    let body = r#"{"choices":[{"finish_reason":"tool_calls","index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"},"id":"xW4gNUm5qPjJ0aHJk8bTcyXc4QLBRRjs"}]}}],"created":1795563482,"model":"qwen2.5","system_fingerprint":"b6500-2c7e7e8","object":"chat.completion","usage":{"completion_tokens":21,"prompt_tokens":190,"total_tokens":211},"id":"chatcmpl-Ym5","timings":{"prompt_n":190,"prompt_ms":201.3,"predicted_n":21,"predicted_ms":300.1}}"#;
    let completion = Completion::parse(body).unwrap();
    assert_eq!(completion.tool_calls, [call("xW4gNUm5qPjJ0aHJk8bTcyXc4QLBRRjs", "get_weather", r#"{"city":"Paris"}"#)]);
    assert_eq!(completion.content, "");
    assert_eq!(completion.finish_reason, "tool_calls");
}

#[test]
fn a_llama_cpp_python_answer_with_a_call_and_its_deprecated_function_call() {
    let body = r#"{"id":"chatcmpl-6b1","object":"chat.completion","created":1795563482,"model":"x","choices":[{"index":0,"message":{"role":"assistant","content":null,"function_call":{"name":"pick_colour","arguments":"{\"colour\": \"red\"}"},"tool_calls":[{"id":"call__0_pick_colour_cmpl-6b1","type":"function","function":{"name":"pick_colour","arguments":"{\"colour\": \"red\"}"}}]},"logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":40,"completion_tokens":9,"total_tokens":49}}"#;
    let completion = Completion::parse(body).unwrap();
    assert_eq!(completion.tool_calls, [call("call__0_pick_colour_cmpl-6b1", "pick_colour", r#"{"colour": "red"}"#)]);
}

#[test]
fn logprobs_pass_through_as_sent() {
    let logprobs = json!({
        "content": [
            { "token": "Red", "logprob": -0.0012, "bytes": [82, 101, 100], "top_logprobs": [
                { "token": "Red", "logprob": -0.0012, "bytes": [82, 101, 100] },
                { "token": "Blue", "logprob": -6.8, "bytes": [66, 108, 117, 101] },
            ] },
            { "token": ".", "logprob": -0.3, "bytes": [46], "top_logprobs": [] },
        ],
        "refusal": null,
    });
    let body = json!({
        "object": "chat.completion",
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": "Red." }, "logprobs": logprobs, "finish_reason": "stop" }],
    });
    let completion = Completion::parse(&body.to_string()).unwrap();
    assert_eq!(completion.content, "Red.");
    assert_eq!(completion.logprobs, Some(logprobs.clone()));
    assert!(completion.tool_calls.is_empty());
    assert_eq!(
        js(&completion),
        json!({ "content": "Red.", "logprobs": logprobs, "finish_reason": "stop", "usage": null })
    );
}

#[test]
fn malformed_calls_in_a_whole_answer_name_the_field_and_never_the_value() {
    let with_calls = |calls: Value| {
        json!({ "choices": [{ "message": { "content": null, "tool_calls": calls }, "finish_reason": "tool_calls" }] })
            .to_string()
    };
    let good = json!({ "id": "call_1", "type": "function", "function": { "name": "f", "arguments": "{}" } });
    let with = |key: &str, value: Value| {
        let mut call = good.clone();
        call[key] = value;
        call
    };
    let with_function = |key: &str, value: Value| {
        let mut call = good.clone();
        call["function"][key] = value;
        call
    };
    let without = |key: &str| {
        let mut call = good.clone();
        call.as_object_mut().unwrap().remove(key);
        call
    };
    let without_in_function = |key: &str| {
        let mut call = good.clone();
        call["function"].as_object_mut().unwrap().remove(key);
        call
    };
    for (calls, message) in [
        (json!("secret"), "choices[0].message.tool_calls is not a list"),
        (json!({ "secret": 1 }), "choices[0].message.tool_calls is not a list"),
        (json!([good, "secret"]), "choices[0].message.tool_calls[1] is not an object"),
        (json!([without("id")]), "choices[0].message.tool_calls[0].id is missing"),
        (json!([with("id", json!(["secret"]))]), "choices[0].message.tool_calls[0].id is not a string"),
        (json!([without("type")]), "choices[0].message.tool_calls[0].type is missing"),
        (json!([with("type", json!("secret"))]), "choices[0].message.tool_calls[0].type is not \"function\""),
        (json!([without("function")]), "choices[0].message.tool_calls[0].function is missing"),
        (json!([with("function", json!("secret"))]), "choices[0].message.tool_calls[0].function is not an object"),
        (json!([without_in_function("name")]), "choices[0].message.tool_calls[0].function.name is missing"),
        (json!([with_function("name", json!(7))]), "choices[0].message.tool_calls[0].function.name is not a string"),
        (json!([without_in_function("arguments")]), "choices[0].message.tool_calls[0].function.arguments is missing"),
        // Arguments as an object rather than JSON text, as Ollama's own API has them.
        (
            json!([good, with_function("arguments", json!({ "city": "secret" }))]),
            "choices[0].message.tool_calls[1].function.arguments is not a string",
        ),
    ] {
        let error = tool_call_error(Completion::parse(&with_calls(calls)));
        assert_eq!(error, format!("the cloud endpoint sent a malformed tool call: {message}"));
    }

    let body = r#"{"choices": [{"message": {"content": "a"}, "logprobs": "secret", "finish_reason": "stop"}]}"#;
    let Err(CloudError::Protocol(error @ ProtocolError::NotCompletion(_))) = Completion::parse(body) else {
        panic!("expected a shape error");
    };
    assert!(error.to_string().ends_with("choices[0].logprobs is not an object"), "{error}");
}

// Streamed answers.

/// OpenAI streaming two parallel calls: each opens with its id, type and name and empty
/// arguments, then the arguments come a few characters a chunk.
fn openai_tool_stream() -> String {
    let chunk = |delta: Value, finish_reason: Value| {
        json!({
            "id": "chatcmpl-C4", "object": "chat.completion.chunk", "created": 1795563482,
            "model": "gpt-4o-mini-2024-07-18", "service_tier": "default", "system_fingerprint": "fp_560af6e559",
            "choices": [{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason }],
            "usage": null,
        })
    };
    let opens = |index: u32, id: &str| json!({ "tool_calls": [{ "index": index, "id": id, "type": "function", "function": { "name": "get_weather", "arguments": "" } }] });
    let arguments =
        |index: u32, text: &str| json!({ "tool_calls": [{ "index": index, "function": { "arguments": text } }] });
    let mut first = opens(0, "call_Qf3");
    first["role"] = json!("assistant");
    first["content"] = Value::Null;
    first["refusal"] = Value::Null;
    let mut chunks = vec![chunk(first, Value::Null)];
    for piece in ["{\"ci", "ty\":", "\"Pa", "ris\"", "}"] {
        chunks.push(chunk(arguments(0, piece), Value::Null));
    }
    chunks.push(chunk(opens(1, "call_Zk9"), Value::Null));
    for piece in ["{\"ci", "ty\":\"Os", "lo\"}"] {
        chunks.push(chunk(arguments(1, piece), Value::Null));
    }
    chunks.push(chunk(json!({}), json!("tool_calls")));
    chunks.push(json!({
        "id": "chatcmpl-C4", "object": "chat.completion.chunk", "created": 1795563482, "model": "gpt-4o-mini-2024-07-18",
        "choices": [], "usage": { "prompt_tokens": 82, "completion_tokens": 48, "total_tokens": 130 },
    }));
    events(&chunks)
}

#[test]
fn an_openai_stream_of_two_calls_joins_to_the_whole_answer() {
    let (deltas, end) = chat_stream(&openai_tool_stream());
    assert_eq!(deltas.len(), 10);
    assert!(deltas.iter().all(|d| d.content.is_none() && d.logprobs.is_empty() && d.tool_calls.len() == 1));
    let end = end.unwrap();
    let whole = Completion::parse(OPENAI_TOOL_CALLS_BODY).unwrap();
    assert_eq!(end.tool_calls, whole.tool_calls);
    assert_eq!(end.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(end.usage, whole.usage);

    // The pieces are passed on as they came, for the page's own chunks.
    assert_eq!(
        js(&deltas[0]),
        json!({ "tool_calls": [{ "index": 0, "id": "call_Qf3", "type": "function", "function": { "name": "get_weather", "arguments": "" } }] })
    );
    assert_eq!(js(&deltas[1]), json!({ "tool_calls": [{ "index": 0, "function": { "arguments": "{\"ci" } }] }));
    assert_eq!(
        js(&end),
        json!({
            "finish_reason": "tool_calls",
            "tool_calls": js(&whole.tool_calls),
            "usage": { "prompt_tokens": 82, "completion_tokens": 48, "total_tokens": 130 },
        })
    );
}

#[test]
fn a_llama_server_stream_joins_arguments_split_token_by_token() {
    let chunk = |delta: Value, finish_reason: Value| {
        json!({
            "choices": [{ "finish_reason": finish_reason, "index": 0, "delta": delta }],
            "created": 1795563482, "id": "chatcmpl-Ym5", "model": "qwen2.5", "system_fingerprint": "b6500-2c7e7e8",
            "object": "chat.completion.chunk",
        })
    };
    let mut chunks = vec![
        chunk(json!({ "role": "assistant", "content": null }), Value::Null),
        chunk(
            json!({ "tool_calls": [{ "index": 0, "id": "xW4gNUm5", "type": "function", "function": { "name": "get_weather", "arguments": "{\"" } }] }),
            Value::Null,
        ),
    ];
    for piece in ["city", "\":", " \"", "Par", "is", "\",", " \"", "unit", "\":", " \"", "c", "\"}"] {
        chunks.push(chunk(json!({ "tool_calls": [{ "index": 0, "function": { "arguments": piece } }] }), Value::Null));
    }
    let mut last = chunk(json!({}), json!("tool_calls"));
    last["usage"] = json!({ "completion_tokens": 21, "prompt_tokens": 190, "total_tokens": 211 });
    last["timings"] = json!({ "prompt_n": 190, "prompt_ms": 201.3, "predicted_n": 21, "predicted_ms": 300.1 });
    chunks.push(last);

    let (deltas, end) = chat_stream(&events(&chunks));
    assert_eq!(deltas.len(), 13);
    let end = end.unwrap();
    assert_eq!(end.tool_calls, [call("xW4gNUm5", "get_weather", r#"{"city": "Paris", "unit": "c"}"#)]);
    assert_eq!(end.usage, Some(Usage { prompt_tokens: 190, completion_tokens: 21, total_tokens: 211 }));
}

#[test]
fn llama_cpp_python_repeats_the_id_and_name_in_every_piece() {
    let chunk = |delta: Value, finish_reason: Value| {
        json!({
            "id": "chatcmpl-6b1", "object": "chat.completion.chunk", "created": 1795563482, "model": "x",
            "choices": [{ "index": 0, "finish_reason": finish_reason, "logprobs": null, "delta": delta }],
        })
    };
    let piece = |text: &str| {
        json!({
            "role": null, "content": null,
            "function_call": { "name": "pick_colour", "arguments": text },
            "tool_calls": [{ "index": 0, "id": "call__0_pick_colour_cmpl-6b1", "type": "function", "function": { "name": "pick_colour", "arguments": text } }],
        })
    };
    let empty = json!({ "role": null, "content": null, "function_call": null, "tool_calls": null });
    let mut first = empty.clone();
    first["role"] = json!("assistant");
    let mut chunks = vec![chunk(first, Value::Null)];
    for text in ["{", "\"colour\"", ":", " \"", "red", "\"", "}"] {
        chunks.push(chunk(piece(text), Value::Null));
    }
    chunks.push(chunk(empty, json!("tool_calls")));

    let (deltas, end) = chat_stream(&events(&chunks));
    assert_eq!(deltas.len(), 7);
    assert_eq!(end.unwrap().tool_calls, [call("call__0_pick_colour_cmpl-6b1", "pick_colour", r#"{"colour": "red"}"#)]);
}

#[test]
fn text_then_a_call_in_one_stream() {
    let chunks = [
        json!({ "choices": [{ "index": 0, "delta": { "role": "assistant", "content": "Let me check" } }] }),
        json!({ "choices": [{ "index": 0, "delta": { "content": " the weather." } }] }),
        json!({ "choices": [{ "index": 0, "delta": { "tool_calls": [{ "index": 0, "id": "call_1", "type": "function", "function": { "name": "get_weather" } }] } }] }),
        json!({ "choices": [{ "index": 0, "delta": { "tool_calls": [{ "index": 0, "function": { "arguments": "{}" } }] } }] }),
        json!({ "choices": [{ "index": 0, "delta": {}, "finish_reason": "tool_calls" }] }),
    ];
    let (deltas, end) = chat_stream(&events(&chunks));
    let text: String = deltas.iter().filter_map(|d| d.content.as_deref()).collect();
    assert_eq!(text, "Let me check the weather.");
    assert_eq!(
        js(&deltas[2]),
        json!({ "tool_calls": [{ "index": 0, "id": "call_1", "type": "function", "function": { "name": "get_weather" } }] })
    );
    assert_eq!(end.unwrap().tool_calls, [call("call_1", "get_weather", "{}")]);
}

#[test]
fn streamed_logprobs_come_with_their_text_and_join_at_the_end() {
    // llama.cpp's server with `logprobs: true, top_logprobs: 2`: an entry per token.
    let entry = |id: u32, token: &str, logprob: f64| {
        json!({ "id": id, "token": token, "bytes": token.as_bytes(), "logprob": logprob, "top_logprobs": [
            { "id": id, "token": token, "bytes": token.as_bytes(), "logprob": logprob },
            { "id": 3164, "token": "Blue", "bytes": [66, 108, 117, 101], "logprob": -1.6 },
        ] })
    };
    let chunk = |content: &str, entries: Value| json!({ "choices": [{ "finish_reason": null, "index": 0, "delta": { "content": content }, "logprobs": { "content": entries } }], "object": "chat.completion.chunk" });
    let (red, dot) = (entry(6318, "Red", -0.41), entry(30, ".", -0.02));
    let chunks = [
        json!({ "choices": [{ "finish_reason": null, "index": 0, "delta": { "role": "assistant", "content": null } }] }),
        chunk("Red", json!([red])),
        chunk(".", json!([dot])),
        // OpenAI's finishing chunk: logprobs with neither text nor entries.
        json!({ "choices": [{ "finish_reason": "stop", "index": 0, "delta": {}, "logprobs": { "content": null, "refusal": null } }] }),
    ];
    let (deltas, end) = chat_stream(&events(&chunks));
    assert_eq!(deltas.len(), 2);
    assert_eq!(js(&deltas[0]), json!({ "content": "Red", "logprobs": [red] }));
    let end = end.unwrap();
    assert_eq!(end.logprobs, Some(Logprobs { content: vec![red, dot] }));
    assert!(end.tool_calls.is_empty());

    // Without logprobs, none at the end either.
    let plain = [
        json!({ "choices": [{ "index": 0, "delta": { "content": "a" }, "logprobs": null, "finish_reason": "stop" }] }),
    ];
    let (_, end) = chat_stream(&events(&plain));
    assert_eq!(js(&end.unwrap()), json!({ "finish_reason": "stop", "usage": null }));
}

#[test]
fn malformed_pieces_name_the_field_and_never_the_value() {
    let chunk = |pieces: Value| json!({ "choices": [{ "index": 0, "delta": { "tool_calls": pieces } }] }).to_string();
    for (pieces, message) in [
        (json!("secret"), "choices[0].delta.tool_calls is not a list"),
        (json!(["secret"]), "choices[0].delta.tool_calls[0] is not an object"),
        (
            json!([{ "id": "secret", "function": { "arguments": "{}" } }]),
            "choices[0].delta.tool_calls[0].index is not a call's index",
        ),
        (json!([{ "index": 0 }, { "index": -1 }]), "choices[0].delta.tool_calls[1].index is not a call's index"),
        (json!([{ "index": "0" }]), "choices[0].delta.tool_calls[0].index is not a call's index"),
        (json!([{ "index": 4294967296u64 }]), "choices[0].delta.tool_calls[0].index is not a call's index"),
        (json!([{ "index": 0, "id": 5 }]), "choices[0].delta.tool_calls[0].id is not a string"),
        (json!([{ "index": 0, "type": "secret" }]), "choices[0].delta.tool_calls[0].type is not \"function\""),
        (json!([{ "index": 0, "function": "secret" }]), "choices[0].delta.tool_calls[0].function is not an object"),
        (
            json!([{ "index": 0, "function": { "name": ["secret"] } }]),
            "choices[0].delta.tool_calls[0].function.name is not a string",
        ),
        (
            json!([{ "index": 0, "function": { "arguments": { "city": "secret" } } }]),
            "choices[0].delta.tool_calls[0].function.arguments is not a string",
        ),
    ] {
        let error = tool_call_error(ChatStream::default().data(&chunk(pieces)));
        assert_eq!(error, format!("the cloud endpoint sent a malformed tool call: {message}"));
    }

    let logprobs = r#"{"choices": [{"index": 0, "delta": {"content": "a"}, "logprobs": {"content": "secret"}}]}"#;
    let Err(CloudError::Protocol(error @ ProtocolError::NotChunk(_))) = ChatStream::default().data(logprobs) else {
        panic!("expected a shape error");
    };
    assert!(error.to_string().ends_with("choices[0].logprobs.content is not a list"), "{error}");
}

#[test]
fn a_call_whose_id_or_name_changes_or_never_comes_fails() {
    let piece = |piece: Value| json!({ "choices": [{ "index": 0, "delta": { "tool_calls": [piece] } }] }).to_string();
    let opens =
        piece(json!({ "index": 1, "id": "call_1", "type": "function", "function": { "name": "f", "arguments": "" } }));

    let mut stream = ChatStream::default();
    stream.data(&opens).unwrap();
    let error = tool_call_error(stream.data(&piece(json!({ "index": 1, "id": "call_2" }))));
    assert_eq!(
        error,
        "the cloud endpoint sent a malformed tool call: choices[0].delta.tool_calls[index 1].id changed in the middle of the stream"
    );
    let mut stream = ChatStream::default();
    stream.data(&opens).unwrap();
    let error = tool_call_error(stream.data(&piece(json!({ "index": 1, "function": { "name": "g" } }))));
    assert!(error.ends_with("choices[0].delta.tool_calls[index 1].function.name changed in the middle of the stream"));

    let done = r#"{"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}"#;
    for (pieces, message) in [
        (
            vec![json!({ "index": 0, "function": { "name": "f", "arguments": "{}" } })],
            "tool_calls[index 0].id never came",
        ),
        (
            vec![json!({ "index": 0, "id": "call_1", "function": { "arguments": "{}" } })],
            "tool_calls[index 0].function.name never came",
        ),
        (
            vec![
                json!({ "index": 0, "id": "call_1", "function": { "name": "f", "arguments": "{}" } }),
                json!({ "index": 2, "function": { "arguments": "{}" } }),
            ],
            "tool_calls[index 2].id never came",
        ),
    ] {
        let mut stream = ChatStream::default();
        for p in pieces {
            stream.data(&piece(p)).unwrap();
        }
        stream.data(done).unwrap();
        let error = tool_call_error(stream.end());
        assert_eq!(error, format!("the cloud endpoint sent a malformed tool call: choices[0].delta.{message}"));
    }
}

#[test]
fn calls_join_by_index_not_by_arrival() {
    // Interleaved pieces of two calls, the second call opened first.
    let piece = |piece: Value| json!({ "choices": [{ "index": 0, "delta": { "tool_calls": [piece] } }] });
    let chunks = [
        piece(json!({ "index": 1, "id": "b", "type": "function", "function": { "name": "g", "arguments": "[1" } })),
        piece(json!({ "index": 0, "id": "a", "type": "function", "function": { "name": "f", "arguments": "[" } })),
        piece(json!({ "index": 1, "function": { "arguments": ",2]" } })),
        piece(json!({ "index": 0, "function": { "arguments": "]" } })),
        json!({ "choices": [{ "index": 0, "delta": {}, "finish_reason": "tool_calls" }] }),
    ];
    let (_, end) = chat_stream(&events(&chunks));
    assert_eq!(end.unwrap().tool_calls, [call("a", "f", "[]"), call("b", "g", "[1,2]")]);
}
