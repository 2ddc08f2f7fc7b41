// Chromium as it ships on Linux: `navigator.gpu` is there but gives no adapter. `backend:
// "auto"` runs the model on the CPU backend (wasm SIMD), with the native CPU backend's greedy
// tokens.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { MODEL, nativeGenerate, openPage } from "./browser.js";

const PROMPT = "What is the capital of France?";
const MAX_TOKENS = 8;

let browser, page;

before(async () => {
  ({ browser, page } = await openPage({ webgpu: false }));
});

after(async () => {
  await browser?.close();
});

test("without a WebGPU adapter, auto picks the CPU, and it fits", async () => {
  const { caps, estimate } = await page.evaluate(async (model) => ({ caps: await Torchlight.probe(), estimate: await Torchlight.estimate(model) }), MODEL);
  assert.equal(caps.webgpu, false);
  assert.equal(caps.backend, "cpu");
  // This page is not cross-origin isolated: no shared memory, so one thread (threads.test.js).
  assert.equal(caps.crossOriginIsolated, false);
  assert.equal(caps.cpuThreads, 1);
  assert.equal(estimate.backend, "cpu");
  assert.equal(estimate.fits, true, estimate.reasons.join());
});

test("greedy tokens on the CPU in the browser are the native CPU backend's", async () => {
  const native = nativeGenerate(PROMPT, MAX_TOKENS, "cpu");
  const reply = await page.evaluate(
    async ([model, content, max_tokens]) => {
      window.engine = await Torchlight.load(model, { threads: 4 });
      const reply = await engine.chat.completions.create({ messages: [{ role: "user", content }], max_tokens, temperature: 0 });
      return { ...reply, threads: engine.threads };
    },
    [MODEL, PROMPT, MAX_TOKENS],
  );
  assert.equal(reply.threads, 1, "threads asked for on a page that is not isolated");
  assert.deepEqual(reply.route, { used: "local", backend: "cpu" });
  assert.deepEqual(reply.tokens, native.tokens);
  assert.equal(reply.choices[0].message.content, native.text);
  const decode = (reply.usage.completion_tokens - 1) / (reply.timings.decode_ms / 1000);
  console.log(`# cpu in the browser: time to first token ${(reply.timings.prefill_ms / 1000).toFixed(2)} s for ${reply.usage.prompt_tokens} tokens, decode ${decode.toFixed(1)} tokens/s`);
});

test("a conversation's next turn prefills only its new tokens, with the same answer", async () => {
  const turns = await page.evaluate(async (content) => {
    const ask = (messages, extra) => engine.chat.completions.create({ messages, max_tokens: 8, temperature: 0, ...extra });
    const first = await ask([{ role: "user", content }]);
    const messages = [
      { role: "user", content },
      { role: "assistant", content: first.choices[0].message.content },
      { role: "user", content: "And of Italy?" },
    ];
    const cached = await ask(messages);
    const whole = await ask(messages, { cache_prompt: false });
    return { first: first.usage, cached: { ...cached.usage, tokens: cached.tokens }, whole: { ...whole.usage, tokens: whole.tokens } };
  }, PROMPT);
  const reused = turns.cached.prompt_tokens_details.cached_tokens;
  assert.ok(reused >= turns.first.prompt_tokens && reused < turns.cached.prompt_tokens, JSON.stringify(turns));
  assert.equal(turns.whole.prompt_tokens_details.cached_tokens, 0);
  assert.deepEqual(turns.cached.tokens, turns.whole.tokens);
});

test("an aborted stream on the CPU, in the worker, stops within a token or two", async () => {
  const result = await page.evaluate(async () => {
    const controller = new AbortController();
    const messages = [{ role: "user", content: "Count from one to one hundred." }];
    const stream = await engine.chat.completions.create({ messages, max_tokens: 200, temperature: 0, stream: true, signal: controller.signal });
    let pieces = 0;
    try {
      for await (const chunk of stream) if (chunk.choices[0].delta.content && ++pieces === 1) controller.abort();
      return { pieces, code: null };
    } catch (e) {
      return { pieces, code: e.code };
    }
  });
  assert.equal(result.code, "aborted");
  // The worker hears the abort between tokens: a few more may already be on their way.
  assert.ok(result.pieces <= 4, `${result.pieces} pieces arrived`);
  const next = await page.evaluate(() => engine.chat.completions.create({ messages: [{ role: "user", content: "Hi" }], max_tokens: 2 }));
  assert.equal(next.usage.completion_tokens, 2);
  await page.evaluate(() => engine.unload());
});
