// The CPU backend on several threads: on a cross-origin isolated page (a second test server,
// sending COOP and COEP) the package loads the threaded wasm core and lends Web Workers to its
// pool. Chromium here has no WebGPU adapter, as on Linux, so `backend: "auto"` is the CPU.
// Threads must not change a single token: each output row is computed whole by one thread.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { MODEL, nativeGenerate, openPage } from "./browser.js";
import { serve } from "./server.js";

const PROMPT = "What is the capital of France?";
const MAX_TOKENS = 8;

let server, browser, page;

before(async () => {
  server = await serve({ isolated: true });
  ({ browser, page } = await openPage({ webgpu: false, baseUrl: server.url }));
});

after(async () => {
  await browser?.close();
  server?.close();
});

/** Loads the model with `options`, answers PROMPT greedily, and unloads. */
function answer(options) {
  return page.evaluate(
    async ([model, options, content, max_tokens]) => {
      const engine = await Torchlight.load(model, options);
      try {
        const reply = await engine.chat.completions.create({ messages: [{ role: "user", content }], max_tokens, temperature: 0 });
        return { reply, threads: engine.threads, stats: await engine.stats() };
      } finally {
        await engine.unload();
      }
    },
    [MODEL, options, PROMPT, MAX_TOKENS],
  );
}

const decodeRate = (reply) => ((reply.usage.completion_tokens - 1) / (reply.timings.decode_ms / 1000)).toFixed(1);

test("an isolated page offers one CPU thread per core", async () => {
  const { caps, cores } = await page.evaluate(async () => ({ caps: await Torchlight.probe(), cores: navigator.hardwareConcurrency }));
  assert.equal(caps.crossOriginIsolated, true);
  assert.equal(caps.backend, "cpu");
  assert.equal(caps.cpuThreads, Math.min(cores, 8));
});

test("on 2 threads the greedy tokens are the native CPU backend's, as on 1", async () => {
  const native = nativeGenerate(PROMPT, MAX_TOKENS, "cpu");
  const one = await answer({ threads: 1 });
  const two = await answer({ threads: 2 });
  assert.equal(one.threads, 1);
  assert.equal(two.threads, 2);
  assert.equal(two.stats.threads, 2);
  // Two threads run the threaded core: its memory is shared, so the workers can see it.
  assert.deepEqual(two.reply.route, { used: "local", backend: "cpu" });
  assert.deepEqual(one.reply.tokens, native.tokens);
  assert.deepEqual(two.reply.tokens, native.tokens);
  assert.equal(two.reply.choices[0].message.content, native.text);
  console.log(`# cpu decode in the browser: 1 thread ${decodeRate(one.reply)} tokens/s, 2 threads ${decodeRate(two.reply)} tokens/s`);
});

test("an aborted stream on 2 threads stops within a token or two, and the engine goes on", async () => {
  const result = await page.evaluate(async (model) => {
    const engine = await Torchlight.load(model, { threads: 2 });
    const controller = new AbortController();
    const messages = [{ role: "user", content: "Count from one to one hundred." }];
    const stream = await engine.chat.completions.create({ messages, max_tokens: 200, temperature: 0, stream: true, signal: controller.signal });
    let pieces = 0;
    let code = null;
    try {
      for await (const chunk of stream) if (chunk.choices[0].delta.content && ++pieces === 1) controller.abort();
    } catch (e) {
      code = e.code;
    }
    const next = await engine.chat.completions.create({ messages: [{ role: "user", content: "Hi" }], max_tokens: 2 });
    await engine.unload();
    return { pieces, code, next: next.usage.completion_tokens };
  }, MODEL);
  assert.equal(result.code, "aborted");
  assert.ok(result.pieces <= 4, `${result.pieces} pieces arrived`);
  assert.equal(result.next, 2);
});

test("threads must be a whole number of at least 1", async () => {
  const code = await page.evaluate((model) => Torchlight.load(model, { threads: 0 }).then(() => null, (e) => e.code), MODEL);
  assert.equal(code, "invalid_request");
});
