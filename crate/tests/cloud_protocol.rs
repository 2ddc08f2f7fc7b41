//! The cloud fallback's protocol: Server-Sent Events in any split, OpenAI chat completions
//! whole and streamed (as llama-cpp-python and OpenAI send them), and failed responses. A
//! stream cut short must fail, never pass for a whole answer, and no error may quote more of
//! what the endpoint sent than its own error message.

use torchlight::cloud::{ChatStream, CloudError, Completion, Delta, ProtocolError, SseParser, StreamEnd, Usage};

/// The events in `input`, checked to be the same however it arrives: whole, split in two at
/// every byte, and one byte at a time.
fn sse_events(input: &[u8]) -> Vec<String> {
    let mut whole = SseParser::default();
    let events = whole.push(input).unwrap();
    for cut in 0..=input.len() {
        let mut parser = SseParser::default();
        let mut split = parser.push(&input[..cut]).unwrap();
        split.extend(parser.push(&input[cut..]).unwrap());
        assert_eq!(split, events, "split at byte {cut}");
        assert_eq!(parser.pending(), whole.pending(), "split at byte {cut}");
    }
    let mut parser = SseParser::default();
    let bytewise: Vec<String> = input.iter().flat_map(|b| parser.push(std::slice::from_ref(b)).unwrap()).collect();
    assert_eq!(bytewise, events, "one byte at a time");
    events
}

/// The pieces of text a chat stream gives and how it ends, checked to be the same however
/// its bytes arrive. (Tool calls and logprobs: crate/src/cloud/tests.rs.)
fn chat_stream(input: &str) -> (Vec<String>, Result<StreamEnd, CloudError>) {
    let input = input.as_bytes();
    let mut whole = ChatStream::default();
    let pieces = texts(whole.push(input).unwrap());
    let end = whole.end();
    for cut in 0..=input.len() {
        let mut stream = ChatStream::default();
        let mut split = texts(stream.push(&input[..cut]).unwrap());
        split.extend(texts(stream.push(&input[cut..]).unwrap()));
        assert_eq!(split, pieces, "split at byte {cut}");
        assert_eq!(format!("{:?}", stream.end()), format!("{end:?}"), "split at byte {cut}");
    }
    (pieces, end)
}

/// The text of each delta, which in these streams is all there is.
fn texts(deltas: Vec<Delta>) -> Vec<String> {
    deltas.into_iter().map(|delta| delta.content.expect("a piece of text")).collect()
}

fn stream_end(finish_reason: Option<&str>, usage: Option<Usage>) -> StreamEnd {
    StreamEnd { finish_reason: finish_reason.map(str::to_owned), tool_calls: Vec::new(), logprobs: None, usage }
}

fn protocol_error(result: Result<impl std::fmt::Debug, CloudError>) -> ProtocolError {
    match result {
        Err(CloudError::Protocol(e)) => e,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

// Server-Sent Events.

#[test]
fn lf_crlf_and_cr_line_endings_give_the_same_events() {
    let lf = "data: one\n\ndata: two\ndata: lines\n\n";
    let expected = strings(&["one", "two\nlines"]);
    assert_eq!(sse_events(lf.as_bytes()), expected);
    assert_eq!(sse_events(lf.replace('\n', "\r\n").as_bytes()), expected);
    assert_eq!(sse_events(lf.replace('\n', "\r").as_bytes()), expected);
    assert_eq!(sse_events(b"data: one\r\n\rdata: two\rdata: lines\n\r\n"), expected);
}

#[test]
fn a_crlf_split_across_pushes_is_one_line_ending() {
    let mut parser = SseParser::default();
    assert_eq!(parser.push(b"data: a\r").unwrap(), Vec::<String>::new());
    // Were the LF an empty line of its own, it would end the event before "b".
    assert_eq!(parser.push(b"\ndata: b\r").unwrap(), Vec::<String>::new());
    assert_eq!(parser.push(b"").unwrap(), Vec::<String>::new());
    assert_eq!(parser.push(b"\n\r").unwrap(), strings(&["a\nb"]));
    assert!(!parser.pending());
}

#[test]
fn comments_and_other_fields_are_read_and_dropped() {
    let input = b": keep-alive\n\nevent: message\nid: 7\nretry: 1000\nfoo: bar\ndata: x\n: inside\n\n\
        event: ping\nid: 8\n\n:\n\n";
    assert_eq!(sse_events(input), strings(&["x"]));
}

#[test]
fn data_fields_follow_the_standard() {
    // One space after the colon is dropped and no more; no colon is an empty value; an empty
    // data line still counts; a field name is exact.
    let input = b"data:x\n\ndata:  two spaces\n\ndata\ndata\n\ndata:\n\nData: not data\n\ndata : not data\n\n";
    assert_eq!(sse_events(input), strings(&["x", " two spaces", "\n", ""]));
}

#[test]
fn utf8_split_anywhere_is_whole_again() {
    let input = "\u{FEFF}data: héllo, 世界 🦀\n\ndata: ünï\r\n\r\n";
    assert_eq!(sse_events(input.as_bytes()), strings(&["héllo, 世界 🦀", "ünï"]));
}

#[test]
fn invalid_utf8_fails() {
    let mut parser = SseParser::default();
    assert!(parser.push(b"data: \xC3").unwrap().is_empty());
    assert!(matches!(parser.push(b"(\n\n"), Err(ProtocolError::InvalidUtf8)));
    assert!(matches!(SseParser::default().push(b"data: \xFF\xFE\n\n"), Err(ProtocolError::InvalidUtf8)));
}

#[test]
fn an_unfinished_event_is_pending() {
    let pending_after = |input: &[u8]| {
        let mut parser = SseParser::default();
        parser.push(input).unwrap();
        parser.pending()
    };
    assert!(!pending_after(b""));
    assert!(pending_after(b"da"));
    assert!(pending_after(b"data: x"));
    assert!(pending_after(b"data: x\n"));
    assert!(pending_after(b"data: x\r"));
    assert!(pending_after(b"event: x\n"));
    assert!(!pending_after(b"data: x\n\n"));
    assert!(!pending_after(b"data: x\r\n\r\n"));
    assert!(!pending_after(b": keep-alive\n"));
}

// Streamed chat completions.

/// As llama-cpp-python's server streams it, verbatim.
const LLAMA_CPP_PYTHON_STREAM: &str = concat!(
    r#"data: {"id": "chatcmpl-df92", "model": "x", "created": 1795563482, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"role": "assistant"}, "logprobs": null, "finish_reason": null}]}"#,
    "\r\n\r\n",
    r#"data: {"id": "chatcmpl-df92", "model": "x", "created": 1795563482, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "Hello"}, "logprobs": null, "finish_reason": null}]}"#,
    "\r\n\r\n",
    r#"data: {"id": "chatcmpl-df92", "model": "x", "created": 1795563482, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "!"}, "logprobs": null, "finish_reason": null}]}"#,
    "\r\n\r\n",
    r#"data: {"id": "chatcmpl-df92", "model": "x", "created": 1795563482, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": " How"}, "logprobs": null, "finish_reason": null}]}"#,
    "\r\n\r\n",
    r#"data: {"id": "chatcmpl-df92", "model": "x", "created": 1795563482, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "logprobs": null, "finish_reason": "length"}]}"#,
    "\r\n\r\n",
    "data: [DONE]\r\n\r\n",
);

/// As OpenAI streams with `stream_options.include_usage`: the count in a last chunk of its
/// own, with no choices.
const OPENAI_STREAM: &str = concat!(
    r#"data: {"id":"chatcmpl-B9","object":"chat.completion.chunk","created":1795563482,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-B9","object":"chat.completion.chunk","created":1795563482,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-B9","object":"chat.completion.chunk","created":1795563482,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":" there ✨"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-B9","object":"chat.completion.chunk","created":1795563482,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-B9","object":"chat.completion.chunk","created":1795563482,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12,"prompt_tokens_details":{"cached_tokens":0}}}"#,
    "\n\n",
    "data: [DONE]\n\n",
);

#[test]
fn a_llama_cpp_python_stream_reads_whole() {
    let (pieces, end) = chat_stream(LLAMA_CPP_PYTHON_STREAM);
    assert_eq!(pieces, strings(&["Hello", "!", " How"]));
    assert_eq!(end.unwrap(), stream_end(Some("length"), None));
}

#[test]
fn an_openai_stream_counts_usage_in_its_last_chunk() {
    let (pieces, end) = chat_stream(OPENAI_STREAM);
    assert_eq!(pieces, strings(&["Hi", " there ✨"]));
    let usage = Usage { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 };
    assert_eq!(end.unwrap(), stream_end(Some("stop"), Some(usage)));
}

#[test]
fn keep_alive_comments_between_chunks_change_nothing() {
    let with_comments =
        format!(": ping\n\n{}: ping\n\n", LLAMA_CPP_PYTHON_STREAM.replace("\r\n\r\n", "\r\n: ping\r\n\r\n"));
    let (pieces, end) = chat_stream(&with_comments);
    assert_eq!(pieces, strings(&["Hello", "!", " How"]));
    assert_eq!(end.unwrap().finish_reason.as_deref(), Some("length"));
}

#[test]
fn a_stream_cut_anywhere_before_its_finish_fails() {
    let finish = LLAMA_CPP_PYTHON_STREAM.find(r#""finish_reason": "length""#).unwrap();
    // The CR of the empty line after it ends the finishing event.
    let finished = finish + LLAMA_CPP_PYTHON_STREAM[finish..].find("\r\n\r").unwrap() + 3;
    let end_after = |cut| {
        let mut stream = ChatStream::default();
        stream.push(&LLAMA_CPP_PYTHON_STREAM.as_bytes()[..cut]).unwrap();
        stream.end()
    };
    for cut in 0..finished {
        let error = protocol_error(end_after(cut));
        assert!(matches!(error, ProtocolError::Cut | ProtocolError::CutMidEvent), "cut at byte {cut}: {error:?}");
    }
    assert!(end_after(finished).is_ok());
}

#[test]
fn a_cut_says_whether_it_fell_inside_an_event() {
    let after_deltas = LLAMA_CPP_PYTHON_STREAM.split_inclusive("\r\n\r\n").take(3).collect::<String>();
    let (pieces, end) = chat_stream(&after_deltas);
    assert_eq!(pieces, strings(&["Hello", "!"]));
    let error = protocol_error(end);
    assert!(matches!(error, ProtocolError::Cut));
    assert_eq!(error.to_string(), "the cloud stream ended before the answer was complete");

    let mid_event = &LLAMA_CPP_PYTHON_STREAM[..after_deltas.len() + 40];
    let (_, end) = chat_stream(mid_event);
    assert!(matches!(protocol_error(end), ProtocolError::CutMidEvent));
}

#[test]
fn a_finish_reason_without_done_is_whole_and_so_is_done_without_a_finish_reason() {
    let without_done = LLAMA_CPP_PYTHON_STREAM.replace("data: [DONE]\r\n\r\n", "");
    assert_eq!(chat_stream(&without_done).1.unwrap().finish_reason.as_deref(), Some("length"));
    // A [DONE] whose empty line never came is dropped, as the standard says; the answer was
    // finished before it.
    let done_unended = LLAMA_CPP_PYTHON_STREAM.trim_end();
    assert_eq!(chat_stream(done_unended).1.unwrap().finish_reason.as_deref(), Some("length"));

    let (pieces, end) = chat_stream("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: [DONE]\n\n");
    assert_eq!(pieces, strings(&["a"]));
    assert_eq!(end.unwrap(), stream_end(None, None));
}

#[test]
fn malformed_json_in_a_stream_fails_without_quoting_it() {
    let mut stream = ChatStream::default();
    let error = protocol_error(stream.push(b"data: {\"choices\": [{\"delta\": {\"content\": \"secret\"\n\n"));
    assert!(matches!(error, ProtocolError::StreamJson(_)));
    let message = error.to_string();
    assert!(message.starts_with("the cloud endpoint sent malformed JSON in its stream: "), "{message}");
    assert!(!message.contains("secret"), "{message}");
}

#[test]
fn chunks_of_the_wrong_shape_fail_without_quoting_them() {
    for chunk in [
        r#"{"choices": "secret"}"#,
        r#"{"id": "secret"}"#,
        r#"{"choices": [{"text": "secret", "finish_reason": null}]}"#,
        r#"{"choices": [{"delta": "secret"}]}"#,
        r#"{"choices": [{"delta": {"content": ["secret"]}}]}"#,
        r#"{"choices": [{"delta": {}, "finish_reason": ["secret"]}]}"#,
        r#"{"choices": [], "usage": {"prompt_tokens": "secret"}}"#,
        r#"{"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 99999999999, "total_tokens": 1}}"#,
    ] {
        let error = protocol_error(ChatStream::default().data(chunk));
        assert!(matches!(error, ProtocolError::NotChunk(_)), "{chunk}: {error:?}");
        assert!(!error.to_string().contains("secret"), "{error}");
    }
}

#[test]
fn an_error_in_the_stream_is_the_servers() {
    let mut stream = ChatStream::default();
    let input = concat!(
        r#"data: {"choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}"#,
        "\n\n",
        r#"data: {"error":{"message":"the model crashed","type":"server_error","code":500}}"#,
        "\n\n",
    );
    match stream.push(input.as_bytes()) {
        Err(CloudError::Reported { message }) => assert_eq!(message.as_deref(), Some("the model crashed")),
        other => panic!("expected a reported error, got {other:?}"),
    }
    let error = ChatStream::default().data(r#"{"error": {"code": 500}}"#).unwrap_err();
    assert!(matches!(error, CloudError::Reported { message: None }));
    assert_eq!(error.to_string(), "the cloud endpoint reported an error");
}

#[test]
fn data_after_done_fails() {
    let mut stream = ChatStream::default();
    stream.push(LLAMA_CPP_PYTHON_STREAM.as_bytes()).unwrap();
    let error = protocol_error(stream.push(b"data: {\"choices\":[]}\n\n"));
    assert!(matches!(error, ProtocolError::AfterDone));
    let mut stream = ChatStream::default();
    assert!(matches!(protocol_error(stream.push(b"data: [DONE]\n\ndata: [DONE]\n\n")), ProtocolError::AfterDone));
    // What is no event after [DONE] is no data.
    let mut stream = ChatStream::default();
    assert_eq!(stream.push(b"data: [DONE]\n\n: bye\n\nevent: end\n\n").unwrap(), Vec::<Delta>::new());
    assert!(stream.end().is_ok());
}

#[test]
fn invalid_utf8_in_a_stream_is_a_protocol_error() {
    let error = protocol_error(ChatStream::default().push(b"data: \xFF\n\n"));
    assert!(matches!(error, ProtocolError::InvalidUtf8));
}

// Whole chat completions.

/// As llama-cpp-python's server answers without `stream`, verbatim.
const LLAMA_CPP_PYTHON_BODY: &str = r#"{"id":"chatcmpl-8f3a","object":"chat.completion","created":1795563482,"model":"x","choices":[{"index":0,"message":{"content":"Hello! How can I","role":"assistant"},"logprobs":null,"finish_reason":"length"}],"usage":{"prompt_tokens":31,"completion_tokens":5,"total_tokens":36}}"#;

#[test]
fn a_llama_cpp_python_body_reads_whole() {
    let completion = Completion::parse(LLAMA_CPP_PYTHON_BODY).unwrap();
    assert_eq!(
        completion,
        Completion {
            content: "Hello! How can I".into(),
            tool_calls: Vec::new(),
            logprobs: None,
            finish_reason: "length".into(),
            usage: Some(Usage { prompt_tokens: 31, completion_tokens: 5, total_tokens: 36 }),
        }
    );
}

#[test]
fn a_null_content_is_empty_and_usage_is_optional() {
    let body = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[]},"finish_reason":"tool_calls"}]}"#;
    let completion = Completion::parse(body).unwrap();
    assert_eq!(
        completion,
        Completion {
            content: String::new(),
            tool_calls: Vec::new(),
            logprobs: None,
            finish_reason: "tool_calls".into(),
            usage: None
        }
    );
}

#[test]
fn bodies_that_are_not_completions_fail_without_quoting_them() {
    let error = protocol_error(Completion::parse("<html>secret</html>"));
    assert!(matches!(error, ProtocolError::BodyJson(_)));
    assert!(error.to_string().starts_with("the cloud endpoint sent a malformed JSON body: "), "{error}");
    assert!(!error.to_string().contains("secret"), "{error}");
    let cut = &LLAMA_CPP_PYTHON_BODY[..LLAMA_CPP_PYTHON_BODY.len() - 10];
    assert!(matches!(protocol_error(Completion::parse(cut)), ProtocolError::BodyJson(_)));

    for body in [
        r#"{"choices": []}"#,
        r#"{"choices": "secret"}"#,
        // A legacy /v1/completions answer.
        r#"{"object":"text_completion","choices":[{"text":"secret","index":0,"finish_reason":"stop"}]}"#,
        r#"{"choices": [{"message": {"content": "secret"}}]}"#,
        r#"{"choices": [{"message": {"content": {"secret": 1}}, "finish_reason": "stop"}]}"#,
        r#"{"choices": [{"message": {"content": "a"}, "finish_reason": "stop"}], "usage": {"total_tokens": 1}}"#,
    ] {
        let error = protocol_error(Completion::parse(body));
        assert!(matches!(error, ProtocolError::NotCompletion(_)), "{body}: {error:?}");
        assert!(!error.to_string().contains("secret"), "{error}");
    }
}

#[test]
fn an_error_body_with_a_success_status_is_the_servers() {
    let error = Completion::parse(r#"{"error":{"message":"model not loaded","type":"invalid_request_error"}}"#);
    match error {
        Err(CloudError::Reported { message }) => assert_eq!(message.as_deref(), Some("model not loaded")),
        other => panic!("expected a reported error, got {other:?}"),
    }
}

// Failed responses.

const OPENAI_ERROR_BODY: &str = r#"{"error":{"message":"Incorrect API key provided: sk-abc***xyz.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;

#[test]
fn auth_failures_are_401_and_403() {
    for status in [401, 403] {
        let error = CloudError::from_response(status, None, OPENAI_ERROR_BODY);
        assert!(matches!(error, CloudError::Auth { status: s, .. } if s == status), "{error:?}");
        assert_eq!(
            error.to_string(),
            format!(
                "the cloud endpoint refused the credentials (HTTP {status}): Incorrect API key provided: sk-abc***xyz."
            )
        );
    }
}

#[test]
fn rate_limits_read_retry_after_in_seconds() {
    let retry_after = |header| match CloudError::from_response(429, header, "") {
        CloudError::RateLimited { retry_after_seconds, message: None } => retry_after_seconds,
        other => panic!("expected a rate limit, got {other:?}"),
    };
    assert_eq!(retry_after(Some("20")), Some(20.0));
    assert_eq!(retry_after(Some(" 0 ")), Some(0.0));
    assert_eq!(retry_after(Some("1.5")), Some(1.5));
    assert_eq!(retry_after(None), None);
    // An HTTP-date is left to the caller's own back-off.
    assert_eq!(retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")), None);
    for nonsense in ["", "-5", "+5", "inf", "NaN", "1e3", "1.2.3", "."] {
        assert_eq!(retry_after(Some(nonsense)), None, "{nonsense:?}");
    }

    let error = CloudError::from_response(
        429,
        Some("20"),
        r#"{"error":{"message":"Rate limit reached for requests","type":"requests","code":"rate_limit_exceeded"}}"#,
    );
    assert_eq!(
        error.to_string(),
        "the cloud endpoint is rate limiting requests (HTTP 429), retry in 20 s: Rate limit reached for requests"
    );
    assert_eq!(
        CloudError::from_response(429, None, "").to_string(),
        "the cloud endpoint is rate limiting requests (HTTP 429)"
    );
}

#[test]
fn every_other_failure_is_the_servers() {
    for status in [400, 404, 405, 408, 413, 422, 300, 500, 502, 503, 504] {
        let error = CloudError::from_response(status, Some("20"), "");
        assert!(matches!(error, CloudError::Server { status: s, message: None } if s == status), "{error:?}");
        assert_eq!(error.to_string(), format!("the cloud request failed with HTTP {status}"));
    }
    // llama.cpp's server, when the prompt does not fit.
    let body = r#"{"error":{"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error","n_prompt_tokens":9000,"n_ctx":4096}}"#;
    assert_eq!(
        CloudError::from_response(400, None, body).to_string(),
        "the cloud request failed with HTTP 400: the request exceeds the available context size, try increasing it"
    );
}

#[test]
fn a_failed_body_is_never_echoed_beyond_the_servers_message() {
    for body in [
        "<html><body>502 Bad Gateway: secret</body></html>",
        r#"{"detail": "secret"}"#,
        r#"{"error": "secret"}"#,
        r#"{"error": {"type": "secret"}}"#,
        r#"{"error": {"message": "   "}}"#,
        r#"{"message": "secret", "prompt": "secret"}"#,
    ] {
        let error = CloudError::from_response(500, None, body);
        assert!(matches!(error, CloudError::Server { status: 500, message: None }), "{body}: {error:?}");
        assert_eq!(error.to_string(), "the cloud request failed with HTTP 500");
    }

    // A server message that quotes the prompt is cut to 200 characters.
    let long = format!("Invalid prompt: {}", "é".repeat(1000));
    let body = serde_json::json!({ "error": { "message": long } }).to_string();
    let CloudError::Server { message: Some(message), .. } = CloudError::from_response(400, None, &body) else {
        panic!("expected the server's message");
    };
    assert_eq!(message.chars().count(), 201);
    assert!(long.starts_with(message.trim_end_matches('…')));
    assert!(message.ends_with('…'));
}
