// Tool calling and logprobs through the package, in its worker. The test model's own template
// has no tools, so it is loaded with Qwen2.5's (the `chatTemplate` option), which shows tools
// and reads calls as `<tool_call>` blocks: a required call parses, names the tool and its
// arguments validate (ajv), streamed `delta.tool_calls` join to the same, a whole loop (call,
// tool result, answer) runs; a model without tool support refuses tools; logprobs and
// logit_bias behave as OpenAI's API says. On the CPU backend, and a required call on WebGPU.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";

import Ajv2020 from "ajv/dist/2020.js";

import { MODEL, openPage } from "./browser.js";

const QWEN_TEMPLATE = readFileSync(new URL("../../crate/tests/data/qwen2.5_chat_template.jinja", import.meta.url), "utf8");
const TIMEOUT = 600_000;

const WEATHER = {
  type: "function",
  function: {
    name: "get_weather",
    description: "The current weather in a city.",
    parameters: {
      type: "object",
      properties: { city: { type: "string" }, unit: { type: "string", enum: ["celsius", "fahrenheit"] } },
      required: ["city", "unit"],
      additionalProperties: false,
    },
  },
};
const TIME = {
  type: "function",
  function: { name: "get_time", description: "The time in a timezone.", parameters: { type: "object", properties: { timezone: { type: "string" } }, required: ["timezone"] } },
};
const QUESTION = [{ role: "user", content: "What is the weather like in Paris?" }];

const ajv = new Ajv2020({ strict: false });
const validates = (schema, json) => ajv.validate(schema, JSON.parse(json));

/** Loads the test model in `page` as `window.engine`, with Qwen2.5's template. */
function load(page, backend) {
  return page.evaluate(
    async ([model, backend, chatTemplate]) => {
      window.engine = await Torchlight.load(model, { backend, chatTemplate });
    },
    [MODEL, backend, QWEN_TEMPLATE],
  );
}

describe("tools on the CPU backend, in the worker", () => {
  let browser, page;

  before(async () => {
    ({ browser, page } = await openPage({ webgpu: false }));
    await load(page, "cpu");
  });

  after(async () => {
    await browser?.close();
  });

  test("tool_choice required gives one call whose arguments validate, at temperature 0 and 1", { timeout: TIMEOUT }, async () => {
    const replies = await page.evaluate(
      async ([messages, tools]) => {
        const ask = (temperature) => engine.chat.completions.create({ messages, tools, tool_choice: "required", temperature, seed: 3, max_tokens: 200 });
        return [await ask(0), await ask(1)];
      },
      [QUESTION, [WEATHER, TIME]],
    );
    for (const reply of replies) {
      const [choice] = reply.choices;
      assert.equal(choice.finish_reason, "tool_calls", JSON.stringify(choice));
      // One call: `parallel_tool_calls` is off unless asked for.
      assert.equal(choice.message.tool_calls.length, 1);
      assert.equal(choice.message.content, null);
      for (const call of choice.message.tool_calls) {
        assert.equal(call.type, "function");
        assert.match(call.id, /^call_/);
        const tool = [WEATHER, TIME].find((t) => t.function.name === call.function.name);
        assert.ok(tool, `a call to ${call.function.name}`);
        assert.equal(typeof call.function.arguments, "string");
        assert.ok(validates(tool.function.parameters, call.function.arguments), call.function.arguments);
      }
    }
  });

  test("a named function is called; streamed delta.tool_calls join to the non-streamed call", { timeout: TIMEOUT }, async () => {
    const result = await page.evaluate(
      async ([messages, tools]) => {
        const request = { messages, tools, tool_choice: { type: "function", function: { name: "get_weather" } }, temperature: 0, max_tokens: 200 };
        const whole = await engine.chat.completions.create(request);
        const stream = await engine.chat.completions.create({ ...request, stream: true });
        const pieces = [];
        let finish = null;
        for await (const chunk of stream) {
          pieces.push(...(chunk.choices[0].delta.tool_calls ?? []));
          finish = chunk.choices[0].finish_reason ?? finish;
        }
        return { whole: whole.choices[0], pieces, finish };
      },
      [QUESTION, [WEATHER, TIME]],
    );
    assert.equal(result.whole.finish_reason, "tool_calls");
    assert.deepEqual(result.whole.message.tool_calls.map((c) => c.function.name), ["get_weather"]);
    // OpenAI's streaming: pieces with the same index join (ids and names once, arguments appended).
    const joined = [];
    for (const { index, id, type, function: f } of result.pieces) {
      joined[index] ??= { id, type, function: { name: f.name, arguments: "" } };
      joined[index].function.arguments += f.arguments ?? "";
    }
    assert.deepEqual(joined, result.whole.message.tool_calls);
    assert.equal(result.finish, "tool_calls");
  });

  test("a whole loop: the call, the tool's result, and an answer in text", { timeout: TIMEOUT }, async () => {
    const result = await page.evaluate(
      async ([messages, tools]) => {
        const first = await engine.chat.completions.create({ messages, tools, tool_choice: "required", temperature: 0, max_tokens: 200 });
        const call = first.choices[0].message.tool_calls[0];
        const loop = [
          ...messages,
          first.choices[0].message,
          { role: "tool", tool_call_id: call.id, content: JSON.stringify({ temperature: 18, sky: "cloudy" }) },
        ];
        const answer = await engine.chat.completions.create({ messages: loop, tools, temperature: 0, max_tokens: 40 });
        return { prompt: answer.usage.prompt_tokens, firstPrompt: first.usage.prompt_tokens, answer: answer.choices[0] };
      },
      [QUESTION, [WEATHER]],
    );
    assert.ok(result.prompt > result.firstPrompt, "the call and its result are in the second prompt");
    assert.ok(["stop", "length", "tool_calls"].includes(result.answer.finish_reason));
    assert.ok(result.answer.message.content.length > 0 || result.answer.message.tool_calls?.length > 0);
  });

  test("bad tools are refused with invalid_request naming the problem", { timeout: TIMEOUT }, async () => {
    const errors = await page.evaluate(
      async ([messages, weather]) => {
        const fail = (extra) =>
          engine.chat.completions.create({ messages, max_tokens: 4, ...extra }).then(
            () => null,
            (e) => ({ code: e.code, message: e.message }),
          );
        return {
          unnamed: await fail({ tools: [{ type: "function", function: { description: "no name" } }] }),
          unknownChoice: await fail({ tools: [weather], tool_choice: { type: "function", function: { name: "get_time" } } }),
          requiredWithout: await fail({ tool_choice: "required" }),
          withFormat: await fail({ tools: [weather], response_format: { type: "json_object" } }),
        };
      },
      [QUESTION, WEATHER],
    );
    for (const [what, error] of Object.entries(errors)) assert.equal(error?.code, "invalid_request", `${what}: ${JSON.stringify(error)}`);
    assert.match(errors.unnamed.message, /name/);
    assert.match(errors.unknownChoice.message, /get_time/);
    assert.match(errors.withFormat.message, /response_format/);
  });

  test("a model whose template has no tool support refuses tools", { timeout: TIMEOUT }, async () => {
    const error = await page.evaluate(
      async ([model, messages, tools]) => {
        const plain = await Torchlight.load(model, { backend: "cpu" });
        try {
          await plain.chat.completions.create({ messages, tools, max_tokens: 4 });
          return null;
        } catch (e) {
          return { code: e.code, message: e.message };
        } finally {
          await plain.unload();
        }
      },
      [MODEL, QUESTION, [WEATHER]],
    );
    assert.equal(error?.code, "invalid_request");
    assert.match(error.message, /tool/);
  });

  test("logprobs: each token's, the top alternatives, and logit_bias", { timeout: TIMEOUT }, async () => {
    const result = await page.evaluate(async () => {
      const messages = [{ role: "user", content: "Is the sky blue? Answer yes or no." }];
      const greedy = await engine.chat.completions.create({ messages, max_tokens: 5, temperature: 0, logprobs: true, top_logprobs: 3 });
      const first = greedy.tokens[0];
      const banned = await engine.chat.completions.create({ messages, max_tokens: 5, temperature: 0, logit_bias: { [first]: -100 } });
      const stream = await engine.chat.completions.create({ messages, max_tokens: 5, temperature: 0, logprobs: true, top_logprobs: 3, stream: true });
      const streamed = [];
      for await (const chunk of stream) streamed.push(...(chunk.choices[0]?.logprobs?.content ?? []));
      const tooMany = await engine.chat.completions.create({ messages, logprobs: true, top_logprobs: 21 }).catch((e) => e.code);
      const badKey = await engine.chat.completions.create({ messages, logit_bias: { hello: 5 } }).catch((e) => e.code);
      return { greedy, banned: banned.tokens, streamed, tooMany, badKey };
    });
    const { content } = result.greedy.choices[0].logprobs;
    assert.equal(content.length, result.greedy.tokens.length);
    for (const entry of content) {
      assert.ok(entry.logprob <= 0 && Number.isFinite(entry.logprob));
      assert.equal(entry.top_logprobs.length, 3);
      // Greedy: the chosen token is the most likely one.
      assert.equal(entry.top_logprobs[0].token, entry.token);
      assert.ok(Math.abs(entry.top_logprobs[0].logprob - entry.logprob) < 1e-6);
      assert.equal(Buffer.from(entry.bytes).toString("utf8"), entry.token);
    }
    assert.equal(content.map((e) => e.token).join(""), result.greedy.choices[0].message.content);
    assert.notEqual(result.banned[0], result.greedy.tokens[0]);
    assert.deepEqual(result.streamed, content);
    assert.equal(result.tooMany, "invalid_request");
    assert.equal(result.badKey, "invalid_request");
  });
});

describe("tools on WebGPU (SwiftShader)", () => {
  let browser, page;

  before(async () => {
    ({ browser, page } = await openPage());
    await load(page, "gpu");
  });

  after(async () => {
    await browser?.close();
  });

  test("tool_choice required gives a call whose arguments validate", { timeout: TIMEOUT }, async () => {
    const reply = await page.evaluate(
      async ([messages, tools]) => ({ backend: engine.backend, ...(await engine.chat.completions.create({ messages, tools, tool_choice: "required", temperature: 0, max_tokens: 200 })) }),
      [QUESTION, [WEATHER]],
    );
    assert.equal(reply.backend, "gpu");
    const [choice] = reply.choices;
    assert.equal(choice.finish_reason, "tool_calls");
    assert.equal(choice.message.tool_calls[0].function.name, "get_weather");
    assert.ok(validates(WEATHER.function.parameters, choice.message.tool_calls[0].function.arguments));
  });
});
