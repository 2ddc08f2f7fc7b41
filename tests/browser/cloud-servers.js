// The cloud endpoints the cloud tests talk to, on loopback:
// - llama.cpp's own OpenAI-compatible server (llama-cpp-python's `llama_cpp.server`) serving the
//   test model: a real endpoint, started and stopped by the tests;
// - a small misbehaving one of the tests' own, one failure per path prefix, that counts every
//   request it gets and records the Authorization header.

import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";

import { MODEL } from "./browser.js";

async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * llama.cpp's server on the test model: `{ baseURL, stop(), crashed() }` once it has answered a
 * one-token completion. llama.cpp built with the wrong flags segfaults on some CPUs (AMX Xeons)
 * at its first decode: that is reported as the reference crashing, at start and, through
 * `crashed()` (a message, or null), after any test, never as a failure of Torchlight's.
 */
export async function startLlamaServer() {
  const python = process.env.TORCHLIGHT_LLAMA_PYTHON;
  if (!python) throw new Error("TORCHLIGHT_LLAMA_PYTHON is not set: run pkg-scripts/test-browser.sh");
  const port = await freePort();
  const model = fileURLToPath(new URL(`../..${MODEL}`, import.meta.url));
  const args = ["-m", "llama_cpp.server", "--model", model, "--host", "127.0.0.1", "--port", `${port}`, "--n_ctx", "2048", "--n_threads", "1"];
  const child = spawn(python, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr = (stderr + d).slice(-4000)));
  let stopped = false;
  const crashed = () =>
    child.signalCode && !stopped
      ? `REFERENCE CRASHED: llama.cpp's server (the cloud tests' endpoint) died of ${child.signalCode}. This is the ` +
        "reference failing, not Torchlight; pkg-scripts/setup-llama-server.sh builds it for this CPU (no native flags, " +
        `no AMX). Its last output: ${stderr}`
      : null;
  const stop = () => {
    stopped = true;
    child.kill();
  };
  const baseURL = `http://127.0.0.1:${port}/v1`;
  for (let i = 0; i < 240; i++) {
    if (child.exitCode !== null || child.signalCode) throw new Error(crashed() ?? `llama_cpp.server exited: ${stderr}`);
    if (await fetch(`${baseURL}/models`).then((r) => r.ok, () => false)) {
      // Listening is not decoding: the crash on AMX comes with the first token.
      const decoded = await fetch(`${baseURL}/chat/completions`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ messages: [{ role: "user", content: "Hi" }], max_tokens: 1 }),
      }).then((r) => r.ok, () => false);
      await new Promise((resolve) => setTimeout(resolve, 100));
      if (!decoded || child.signalCode) {
        const message = crashed() ?? `llama_cpp.server could not complete one token: ${stderr}`;
        stop();
        throw new Error(message);
      }
      return { baseURL, stop, crashed };
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  stop();
  throw new Error(`llama_cpp.server did not answer within 60 s: ${stderr}`);
}

/** A well-formed answer in the OpenAI shape, streamed or not. */
const COMPLETION = JSON.stringify({
  id: "chatcmpl-fake",
  object: "chat.completion",
  created: 1,
  model: "fake",
  choices: [{ index: 0, message: { role: "assistant", content: "fine" }, finish_reason: "stop" }],
  usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 },
});
const chunk = (delta, finish_reason = null) =>
  `data: ${JSON.stringify({ object: "chat.completion.chunk", choices: [{ index: 0, delta, finish_reason }] })}\n\n`;

/** The calls the `tools` scenario answers with, whole. */
export const TOOL_CALLS = [
  { id: "call_Qf3", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris","unit":"celsius"}' } },
  { id: "call_Zk9", type: "function", function: { name: "get_weather", arguments: '{"city":"Oslo"}' } },
];

/** TOOL_CALLS as OpenAI streams them: a call opens with its id, type and name, then its arguments come a few characters a chunk. */
function toolCallStream() {
  let events = chunk({ role: "assistant", content: null });
  TOOL_CALLS.forEach(({ id, type, function: { name, arguments: text } }, index) => {
    events += chunk({ tool_calls: [{ index, id, type, function: { name, arguments: "" } }] });
    for (let at = 0; at < text.length; at += 4) events += chunk({ tool_calls: [{ index, function: { arguments: text.slice(at, at + 4) } }] });
  });
  return `${events}${chunk({}, "tool_calls")}data: [DONE]\n\n`;
}

/** What each path prefix answers to `POST {prefix}/v1/chat/completions` (`body`: the request's, parsed). */
const SCENARIOS = {
  ok: (res) => res.writeHead(200, { "Content-Type": "application/json" }).end(COMPLETION),
  unauthorized: (res) =>
    res.writeHead(401, { "Content-Type": "application/json" }).end(JSON.stringify({ error: { message: "Incorrect API key provided" } })),
  forbidden: (res) => res.writeHead(403).end("forbidden"),
  limited: (res) =>
    res.writeHead(429, { "Retry-After": "7", "Content-Type": "application/json" }).end(JSON.stringify({ error: { message: "Rate limit reached" } })),
  broken: (res) => res.writeHead(503).end("<html>upstream down</html>"),
  garbage: (res) => res.writeHead(200, { "Content-Type": "application/json" }).end('{"choices": [{"message": '),
  "bad-sse": (res) => res.writeHead(200, { "Content-Type": "text/event-stream" }).end(`${chunk({ content: "Hel" })}data: {not json\n\n`),
  // Two pieces, then the connection closes with neither a finish_reason nor [DONE].
  cut: (res) => res.writeHead(200, { "Content-Type": "text/event-stream" }).end(`${chunk({ role: "assistant" })}${chunk({ content: "Hel" })}${chunk({ content: "lo" })}`),
  // TOOL_CALLS, streamed or whole as the request asked, the whole answer with null content as OpenAI's.
  tools: (res, body) =>
    body?.stream
      ? res.writeHead(200, { "Content-Type": "text/event-stream" }).end(toolCallStream())
      : res.writeHead(200, { "Content-Type": "application/json" }).end(
          JSON.stringify({
            object: "chat.completion",
            choices: [{ index: 0, message: { role: "assistant", content: null, tool_calls: TOOL_CALLS }, logprobs: null, finish_reason: "tool_calls" }],
            usage: { prompt_tokens: 30, completion_tokens: 20, total_tokens: 50 },
          }),
        ),
};

/**
 * The misbehaving endpoint: `{ origin, requests, stop() }`; `requests` lists `{ scenario, method,
 * authorization, body }`, `body` the JSON request body as sent (null until it has arrived, or without one).
 */
export async function startFakeCloud() {
  const requests = [];
  const server = createServer((req, res) => {
    const scenario = req.url.split("/")[1];
    const request = { scenario, method: req.method, authorization: req.headers.authorization ?? null, body: null };
    requests.push(request);
    res.setHeader("Access-Control-Allow-Origin", "*");
    res.setHeader("Access-Control-Expose-Headers", "Retry-After");
    if (req.method === "OPTIONS") {
      res.setHeader("Access-Control-Allow-Headers", "authorization, content-type");
      res.setHeader("Access-Control-Allow-Methods", "POST");
      return res.writeHead(204).end();
    }
    let text = "";
    req.setEncoding("utf8");
    req.on("data", (piece) => (text += piece));
    req.on("end", () => {
      try {
        request.body = text ? JSON.parse(text) : null;
      } catch {
        request.body = text;
      }
      (SCENARIOS[scenario] ?? ((r) => r.writeHead(404).end()))(res, request.body);
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  return { origin, requests, stop: () => new Promise((resolve) => server.close(resolve)) };
}
