// The cloud fallback, only with consent. Playwright counts every request the page makes to the
// cloud origins; the endpoints are llama.cpp's real OpenAI-compatible server on the test model
// and a misbehaving one of the tests' own (cloud-servers.js).

import assert from "node:assert/strict";
import { after, afterEach, before, test } from "node:test";

import { MODEL, openPage } from "./browser.js";
import { TOOL_CALLS, startFakeCloud, startLlamaServer } from "./cloud-servers.js";

const PROMPT = "Name one colour of the rainbow.";
const API_KEY = "sk-torchlight-test-4f9a";

let browser, page, llama, fake;
/** Every request the page made to a cloud origin: `{ origin, method }`. */
const sent = [];
const consoleText = [];

before(async () => {
  [llama, fake] = await Promise.all([startLlamaServer(), startFakeCloud()]);
  ({ browser, page } = await openPage());
  const origins = [new URL(llama.baseURL).origin, fake.origin];
  page.on("request", (r) => {
    const origin = new URL(r.url()).origin;
    if (origins.includes(origin)) sent.push({ origin, method: r.method() });
  });
  page.on("console", (m) => consoleText.push(m.text()));
});

// A test that failed because the reference endpoint died says so.
afterEach(() => {
  const crash = llama?.crashed();
  if (crash) throw new Error(crash);
});

after(async () => {
  await browser?.close();
  llama?.stop();
  await fake?.stop();
});

/** Requests to the llama.cpp server from now on: call the result to read them. */
function countRequests() {
  const origin = new URL(llama.baseURL).origin;
  const start = sent.length;
  return () => sent.slice(start).filter((r) => r.origin === origin);
}
const posts = (requests) => requests.filter((r) => r.method === "POST").length;

/**
 * Makes `window.engine`, loaded with `options` and a cloud whose consent callback answers
 * `decision` ("throw" throws, null leaves the callback out) and records what it was asked in
 * `window.asked`.
 */
function loadEngine(options, { baseURL = llama.baseURL, decision = "once", apiKey = API_KEY, rememberKey = false } = {}) {
  return page.evaluate(
    async ([model, options, baseURL, decision, apiKey, rememberKey]) => {
      window.asked = [];
      const consent = async (request) => {
        window.asked.push(request);
        if (decision === "throw") throw new Error("the dialog broke");
        return decision;
      };
      const cloud = { baseURL, model: "smollm2", apiKey, rememberKey, ...(decision === null ? {} : { consent }) };
      window.engine = await Torchlight.load(options.url ?? model, { ...options, cloud });
      return { localError: engine.localError?.code ?? null };
    },
    [MODEL, options, baseURL, decision, apiKey, rememberKey],
  );
}

/** One request on `window.engine`: its text, finish reason and route, or its error. */
function ask(params = {}) {
  return page.evaluate(
    async ([prompt, params]) => {
      try {
        const reply = await engine.chat.completions.create({ messages: [{ role: "user", content: prompt }], max_tokens: 8, temperature: 0, ...params });
        return { content: reply.choices[0].message.content, finish: reply.choices[0].finish_reason, route: reply.route, usage: reply.usage };
      } catch (e) {
        return { code: e.code, message: e.message, retryAfter: e.retryAfter };
      }
    },
    [PROMPT, params],
  );
}

const asked = () => page.evaluate(() => window.asked.map(({ reason, endpoint, model, estimatedTokens, messages }) => ({ reason, endpoint, model, estimatedTokens, messages })));

test("without a consent callback, or when it denies or throws, nothing is sent", async () => {
  const requests = countRequests();
  for (const decision of [null, "deny", "throw", "maybe"]) {
    await loadEngine({ route: "cloud-only" }, { decision });
    const reply = await ask();
    assert.equal(reply.code, "consent_denied", `${decision}: ${JSON.stringify(reply)}`);
  }
  assert.deepEqual(requests(), []);
});

test('"once" asks before each request and sends exactly one request each time', async () => {
  const requests = countRequests();
  await loadEngine({ route: "cloud-only" }, { decision: "once" });
  const first = await ask();
  const second = await ask();
  for (const reply of [first, second]) {
    assert.ok(reply.content, JSON.stringify(reply));
    assert.deepEqual(reply.route, { used: "cloud", reason: "requested" });
    assert.equal(reply.usage.completion_tokens, 8);
  }
  assert.equal(second.content, first.content, "greedy answers from the same server");
  assert.equal(posts(requests()), 2);
  const questions = await asked();
  assert.equal(questions.length, 2);
  assert.deepEqual(questions[0].messages, [{ role: "user", content: PROMPT }]);
  assert.equal(questions[0].endpoint, llama.baseURL);
  assert.equal(questions[0].model, "smollm2");
  assert.equal(questions[0].reason, "requested");
  assert.ok(questions[0].estimatedTokens > 0);
});

test('"always" is remembered across a reload until revoked', async () => {
  const requests = countRequests();
  await loadEngine({ route: "cloud-only" }, { decision: "always" });
  assert.ok((await ask()).content);
  assert.equal((await asked()).length, 1);

  await page.reload();
  await page.waitForFunction(() => window.Torchlight);
  await loadEngine({ route: "cloud-only" }, { decision: "deny" });
  assert.ok((await ask()).content, "the remembered decision let it through");
  assert.equal((await asked()).length, 0, "it asked again");
  const listed = await page.evaluate(() => engine.consent.list());
  assert.deepEqual(listed.map(({ endpoint, decision }) => ({ endpoint, decision })), [{ endpoint: new URL(llama.baseURL).origin, decision: "always" }]);
  assert.equal(posts(requests()), 2);

  await page.evaluate((url) => engine.consent.revoke(url), llama.baseURL);
  assert.deepEqual(await page.evaluate(() => Torchlight.consent.list()), []);
  const denied = await ask();
  assert.equal(denied.code, "consent_denied");
  assert.equal((await asked()).length, 1);
  assert.equal(posts(requests()), 2, "a request went out after the revoke");
});

test("the API key is sent, and stored only when the page asks", async () => {
  const storedText = () =>
    page.evaluate(async () => {
      const open = (name) => new Promise((resolve, reject) => Object.assign(indexedDB.open(name), { onsuccess: (e) => resolve(e.target.result), onerror: reject }));
      const all = (store) => new Promise((resolve) => Object.assign(store.getAll(), { onsuccess: (e) => resolve(e.target.result) }));
      let text = JSON.stringify({ ...localStorage });
      for (const { name } of await indexedDB.databases()) {
        if (name === "torchlight") continue; // model chunks: bytes, not text
        const db = await open(name);
        for (const store of db.objectStoreNames) text += JSON.stringify(await all(db.transaction(store).objectStore(store)));
        db.close();
      }
      return text;
    });
  const base = `${fake.origin}/ok/v1`;
  await loadEngine({ route: "cloud-only" }, { baseURL: base, decision: "always" });
  assert.equal((await ask()).content, "fine");
  assert.equal(fake.requests.filter((r) => r.scenario === "ok" && r.method === "POST").at(-1).authorization, `Bearer ${API_KEY}`);
  assert.ok(!(await storedText()).includes(API_KEY), "the key was stored without being asked to");
  await page.evaluate((url) => Torchlight.consent.revoke(url), base);

  await loadEngine({ route: "cloud-only" }, { baseURL: base, decision: "always", rememberKey: true });
  assert.equal((await ask()).content, "fine");
  assert.ok((await storedText()).includes(API_KEY));
  // A later engine without the key uses the stored one.
  await loadEngine({ route: "cloud-only" }, { baseURL: base, decision: "deny", apiKey: null });
  assert.equal((await ask()).content, "fine");
  assert.equal(fake.requests.filter((r) => r.method === "POST").at(-1).authorization, `Bearer ${API_KEY}`);
  await page.evaluate((url) => Torchlight.consent.revoke(url), base);
  assert.ok(!(await storedText()).includes(API_KEY), "revoke left the key behind");
});

test("a streamed cloud answer matches the non-streamed one, and aborting it ends the stream", async () => {
  const requests = countRequests();
  await loadEngine({ route: "cloud-only" }, { decision: "once" });
  const whole = await ask({ max_tokens: 12 });
  const streamed = await page.evaluate(async (prompt) => {
    const stream = await engine.chat.completions.create({ messages: [{ role: "user", content: prompt }], max_tokens: 12, temperature: 0, stream: true });
    let text = "";
    let last;
    for await (const chunk of stream) {
      text += chunk.choices[0].delta.content ?? "";
      last = chunk;
    }
    return { text, finish: last.choices[0].finish_reason, route: last.route };
  }, PROMPT);
  assert.equal(streamed.text, whole.content);
  assert.equal(streamed.finish, whole.finish);
  assert.deepEqual(streamed.route, { used: "cloud", reason: "requested" });

  const aborted = await page.evaluate(async (prompt) => {
    const controller = new AbortController();
    const stream = await engine.chat.completions.create({ messages: [{ role: "user", content: prompt }], max_tokens: 400, temperature: 0, stream: true, signal: controller.signal });
    let pieces = 0;
    try {
      for await (const chunk of stream) if (chunk.choices[0].delta.content && ++pieces === 2) controller.abort();
      return { pieces, code: null };
    } catch (e) {
      return { pieces, code: e.code };
    }
  }, PROMPT);
  assert.deepEqual(aborted, { pieces: 2, code: "aborted" });
  assert.ok((await ask()).content, "the engine takes the next request");
  assert.equal(posts(requests()), 4);
});

test("local-first turns to the cloud, after consent, when the model cannot load or the prompt does not fit", async () => {
  const requests = countRequests();
  assert.deepEqual(await loadEngine({ url: "/models/no-such-model.gguf" }, { decision: "once" }), { localError: "network" });
  const missing = await ask();
  assert.deepEqual(missing.route, { used: "cloud", reason: "load_failed" });
  assert.equal((await asked())[0].reason, "load_failed");

  await loadEngine({ contextLength: 16 }, { decision: "once" });
  const long = await ask();
  assert.deepEqual(long.route, { used: "cloud", reason: "context_overflow" });
  assert.equal((await asked())[0].reason, "context_overflow");
  assert.equal(posts(requests()), 2);
  await page.evaluate(() => engine.unload());
});

test("local-only never calls the cloud", async () => {
  const requests = countRequests();
  await loadEngine({ route: "local-only", contextLength: 16 }, { decision: "always" });
  assert.equal((await ask()).code, "context_overflow");
  assert.equal((await ask({ route: "cloud" })).code, "invalid_request");
  assert.deepEqual(await asked(), []);
  assert.deepEqual(requests(), []);
  await page.evaluate(() => engine.unload());
});

test("each cloud failure has its code, and nothing is sent twice", async () => {
  const cases = [
    ["unauthorized", false, "cloud_auth", /401.*Incorrect API key provided/],
    ["forbidden", false, "cloud_auth", /403/],
    ["limited", false, "cloud_rate_limited", /429.*Rate limit reached/],
    ["broken", false, "cloud_error", /503/],
    ["garbage", false, "cloud_protocol", /JSON/],
    ["bad-sse", true, "cloud_protocol", /JSON/],
  ];
  for (const [scenario, stream, code, message] of cases) {
    await loadEngine({ route: "cloud-only" }, { baseURL: `${fake.origin}/${scenario}/v1`, decision: "once" });
    const reply = stream
      ? await page.evaluate(async (prompt) => {
          try {
            for await (const _ of await engine.chat.completions.create({ messages: [{ role: "user", content: prompt }], stream: true }));
            return {};
          } catch (e) {
            return { code: e.code, message: e.message };
          }
        }, PROMPT)
      : await ask();
    assert.equal(reply.code, code, `${scenario}: ${JSON.stringify(reply)}`);
    assert.match(reply.message, message);
    if (scenario === "limited") assert.equal(reply.retryAfter, 7);
    assert.equal(fake.requests.filter((r) => r.scenario === scenario && r.method === "POST").length, 1, scenario);
  }

  // A closed port: unreachable, reported as such.
  await loadEngine({ route: "cloud-only" }, { baseURL: "http://127.0.0.1:9/v1", decision: "once" });
  assert.equal((await ask()).code, "cloud_unreachable");
});

test("a stream cut before its end fails after the text it did get, never passing for a whole answer", async () => {
  await loadEngine({ route: "cloud-only" }, { baseURL: `${fake.origin}/cut/v1`, decision: "once" });
  const result = await page.evaluate(async (prompt) => {
    let text = "";
    try {
      for await (const chunk of await engine.chat.completions.create({ messages: [{ role: "user", content: prompt }], stream: true })) {
        text += chunk.choices[0].delta.content ?? "";
      }
      return { text, code: null };
    } catch (e) {
      return { text, code: e.code };
    }
  }, PROMPT);
  assert.deepEqual(result, { text: "Hello", code: "cloud_protocol" });
  assert.equal(fake.requests.filter((r) => r.scenario === "cut" && r.method === "POST").length, 1);
});

const WEATHER_TOOL = {
  type: "function",
  function: {
    name: "get_weather",
    description: "The weather in a city now.",
    parameters: {
      type: "object",
      properties: { city: { type: "string" }, unit: { enum: ["celsius", "fahrenheit"] } },
      required: ["city"],
      additionalProperties: false,
    },
  },
};

/** The fake endpoint's `tools` scenario's POSTs so far, with their bodies. */
const toolPosts = () => fake.requests.filter((r) => r.scenario === "tools" && r.method === "POST");

test("response_format, tools and OpenAI's other fields go to the cloud unchanged, and the calls come back", async () => {
  const fields = {
    response_format: {
      type: "json_schema",
      json_schema: { name: "weather", strict: true, schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false } },
    },
    tools: [WEATHER_TOOL],
    tool_choice: { type: "function", function: { name: "get_weather" } },
    parallel_tool_calls: true,
    logprobs: true,
    top_logprobs: 3,
    logit_bias: { 1000: -100, 2000: 5 },
  };
  const before = toolPosts().length;
  await loadEngine({ route: "cloud-only" }, { baseURL: `${fake.origin}/tools/v1`, decision: "once" });
  const reply = await page.evaluate(
    async ([prompt, fields]) => {
      const reply = await engine.chat.completions.create({ messages: [{ role: "user", content: prompt }], max_tokens: 32, top_k: 5, ...fields });
      return { message: reply.choices[0].message, finish: reply.choices[0].finish_reason, route: reply.route };
    },
    [PROMPT, fields],
  );
  assert.deepEqual(reply.message.tool_calls, TOOL_CALLS);
  assert.equal(reply.finish, "tool_calls");
  assert.deepEqual(reply.route, { used: "cloud", reason: "requested" });
  assert.equal(toolPosts().length, before + 1, "one request");
  const { body } = toolPosts().at(-1);
  for (const [key, value] of Object.entries(fields)) assert.deepEqual(body[key], value, key);
  assert.equal(body.max_tokens, 32);
  assert.equal(body.stream, false);
  assert.ok(!("top_k" in body), "Torchlight's own top_k went to the cloud");
});

test("a streamed tool call comes in pieces that join, by index, to the whole answer's calls", async () => {
  const before = toolPosts().length;
  await loadEngine({ route: "cloud-only" }, { baseURL: `${fake.origin}/tools/v1`, decision: "once" });
  const streamed = await page.evaluate(
    async ([prompt, tool]) => {
      const stream = await engine.chat.completions.create({
        messages: [{ role: "user", content: prompt }],
        tools: [tool],
        stream: true,
        stream_options: { include_usage: true },
      });
      // As an OpenAI client joins them.
      const calls = [];
      let pieces = 0;
      let finish = null;
      for await (const chunk of stream) {
        const choice = chunk.choices[0];
        if (!choice) continue; // include_usage's last chunk
        for (const { index, id, type, function: fn } of choice.delta.tool_calls ?? []) {
          pieces++;
          const call = (calls[index] ??= { id: "", type: "", function: { name: "", arguments: "" } });
          if (id) call.id = id;
          if (type) call.type = type;
          if (fn?.name) call.function.name = fn.name;
          call.function.arguments += fn?.arguments ?? "";
        }
        finish = choice.finish_reason ?? finish;
      }
      return { calls, pieces, finish };
    },
    [PROMPT, WEATHER_TOOL],
  );
  assert.deepEqual(streamed.calls, TOOL_CALLS);
  assert.ok(streamed.pieces > 2 * TOOL_CALLS.length, `the arguments came in pieces (${streamed.pieces})`);
  assert.equal(streamed.finish, "tool_calls");
  const { body } = toolPosts().at(-1);
  assert.equal(body.stream, true);
  assert.deepEqual(body.stream_options, { include_usage: true });
  assert.deepEqual(body.tools, [WEATHER_TOOL]);

  // What the cloud layer gives the engine: each chunk's pieces as they came, then the calls joined.
  const direct = await page.evaluate(
    async ([baseURL, prompt]) => {
      const { Cloud } = await import("/pkg/cloud.js");
      const cloud = new Cloud({ baseURL, model: "fake", consent: async () => "once" });
      const deltas = [];
      const result = await cloud.generate({ messages: [{ role: "user", content: prompt }] }, (delta) => deltas.push(delta), undefined, { reason: "requested", stream: true });
      return { deltas, result };
    },
    [`${fake.origin}/tools/v1`, PROMPT],
  );
  assert.deepEqual(direct.deltas[0], { tool_calls: [{ index: 0, id: "call_Qf3", type: "function", function: { name: "get_weather", arguments: "" } }] });
  assert.deepEqual(direct.deltas[1], { tool_calls: [{ index: 0, function: { arguments: '{"ci' } }] });
  assert.equal(direct.deltas.length, streamed.pieces);
  const { content, tool_calls, finish_reason } = direct.result;
  assert.deepEqual({ content, tool_calls, finish_reason }, { content: "", tool_calls: TOOL_CALLS, finish_reason: "tool_calls" });
  assert.equal(toolPosts().length, before + 2);
});

test("Torchlight's own grammar and regex are refused for the cloud, before consent, with nothing sent", async () => {
  const requests = countRequests();
  const before = fake.requests.length;
  for (const baseURL of [llama.baseURL, `${fake.origin}/ok/v1`]) {
    await loadEngine({ route: "cloud-only" }, { baseURL, decision: "always" });
    for (const [field, params] of [
      ["grammar", { grammar: 'start: "yes" | "no"' }],
      ["regex", { regex: "(yes|no)" }],
      ["grammar", { grammar: "start: /[a-z]+/", stream: true }],
    ]) {
      const reply = params.stream
        ? await page.evaluate(async ([prompt, params]) => {
            try {
              for await (const _ of await engine.chat.completions.create({ messages: [{ role: "user", content: prompt }], ...params }));
              return {};
            } catch (e) {
              return { code: e.code, message: e.message };
            }
          }, [PROMPT, params])
        : await ask(params);
      assert.equal(reply.code, "invalid_request", `${field}: ${JSON.stringify(reply)}`);
      assert.match(reply.message, new RegExp(`\`${field}\``));
    }
    assert.deepEqual(await asked(), [], "consent was asked");
  }
  assert.deepEqual(await page.evaluate(() => Torchlight.consent.list()), [], "an \"always\" was stored");
  assert.deepEqual(requests(), []);
  assert.equal(fake.requests.length, before);
});

test("llama.cpp's server answers a schema with JSON that fits it, a named tool with a call, and logprobs", async () => {
  const requests = countRequests();
  await loadEngine({ route: "cloud-only" }, { decision: "once" });
  const COLOURS = ["red", "orange", "yellow", "green", "blue", "indigo", "violet"];
  const schema = { type: "object", properties: { colour: { type: "string", enum: COLOURS } }, required: ["colour"] };
  // llama-cpp-python's server takes a schema in `json_object` (Anyscale's form) and refuses OpenAI's
  // `json_schema` type (HTTP 500); llama.cpp's own llama-server takes both. Sent as given, either way.
  const json = await ask({ max_tokens: 40, response_format: { type: "json_object", schema } });
  assert.equal(json.code, undefined, JSON.stringify(json));
  assert.ok(COLOURS.includes(JSON.parse(json.content).colour), json.content);

  const logprobs = await page.evaluate(async (prompt) => {
    const reply = await engine.chat.completions.create({ messages: [{ role: "user", content: prompt }], max_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 2 });
    return { logprobs: reply.choices[0].logprobs, tokens: reply.usage.completion_tokens };
  }, PROMPT);
  assert.equal(logprobs.logprobs.content.length, logprobs.tokens);
  for (const entry of logprobs.logprobs.content) {
    assert.equal(typeof entry.token, "string");
    assert.ok(entry.logprob <= 0);
    assert.equal(entry.top_logprobs.length, 2);
  }

  const tool = { type: "function", function: { name: "pick_colour", description: "Picks a colour.", parameters: schema } };
  const named = { tools: [tool], tool_choice: { type: "function", function: { name: "pick_colour" } }, max_tokens: 40, temperature: 0 };
  const calls = await page.evaluate(
    async ([prompt, named]) => {
      const messages = [{ role: "user", content: prompt }];
      const whole = (await engine.chat.completions.create({ messages, ...named })).choices[0];
      const streamed = { name: "", arguments: "", ids: new Set() };
      let finish = null;
      for await (const chunk of await engine.chat.completions.create({ messages, ...named, stream: true })) {
        for (const piece of chunk.choices[0].delta.tool_calls ?? []) {
          if (piece.id) streamed.ids.add(piece.id);
          // llama-cpp-python repeats the name in every piece.
          streamed.name = piece.function?.name ?? streamed.name;
          streamed.arguments += piece.function?.arguments ?? "";
        }
        finish = chunk.choices[0].finish_reason ?? finish;
      }
      return { whole: { call: whole.message.tool_calls?.[0], finish: whole.finish_reason }, streamed: { ...streamed, ids: streamed.ids.size, finish } };
    },
    [PROMPT, named],
  );
  assert.equal(calls.whole.finish, "tool_calls");
  assert.equal(calls.whole.call.function.name, "pick_colour");
  assert.ok(COLOURS.includes(JSON.parse(calls.whole.call.function.arguments).colour), calls.whole.call.function.arguments);
  assert.deepEqual(calls.streamed, { name: "pick_colour", arguments: calls.whole.call.function.arguments, ids: 1, finish: "tool_calls" });
  assert.equal(posts(requests()), 4);
});

test("no prompt, answer or key reached the console", () => {
  const text = consoleText.join("\n");
  for (const secret of [PROMPT, API_KEY, "fine"]) assert.ok(!text.includes(secret), `the console shows ${secret}`);
});

test("with no WebGPU adapter, a local-first engine asked for the GPU answers from the cloud with reason no_webgpu", async () => {
  const { browser: plain, page: plainPage } = await openPage({ webgpu: false });
  try {
    const result = await plainPage.evaluate(async ([model, baseURL, prompt]) => {
      const reasons = [];
      const engine = await Torchlight.load(model, {
        backend: "gpu",
        cloud: { baseURL, model: "smollm2", consent: async (r) => (reasons.push(r.reason), "once") },
      });
      const reply = await engine.chat.completions.create({ messages: [{ role: "user", content: prompt }], max_tokens: 4, temperature: 0 });
      return { localError: engine.localError?.code, reasons, route: reply.route, content: reply.choices[0].message.content };
    }, [MODEL, llama.baseURL, PROMPT]);
    assert.equal(result.localError, "no_webgpu");
    assert.deepEqual(result.reasons, ["no_webgpu"]);
    assert.deepEqual(result.route, { used: "cloud", reason: "no_webgpu" });
    assert.ok(result.content);
  } finally {
    await plain.close();
  }
});
