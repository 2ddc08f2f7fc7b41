// The model in the browser: the same greedy tokens as the native CLI, streaming, and abort.
// Generation on SwiftShader is slow (seconds per token), so answers are a few tokens long and
// the model is loaded once for the whole file: once in a worker and once in the page.

import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { MODEL, nativeGenerate, openPage } from "./browser.js";

const PROMPT = "What is the capital of France?";
const MAX_TOKENS = 6;
const TIMEOUT = 10 * 60_000;

let browser, page, native, nonStreamed;

before(async () => {
  ({ browser, page } = await openPage());
  const loads = await page.evaluate(async (model) => {
    const load = async (worker) => {
      const start = performance.now();
      const progress = [];
      const engine = await Torchlight.load(model, { worker, onProgress: (p) => progress.push(p) });
      return { engine, ms: performance.now() - start, progress };
    };
    const inWorker = await load(true);
    const inPage = await load(false);
    window.engines = { worker: inWorker.engine, page: inPage.engine };
    const { engine: _w, ...worker } = inWorker;
    const { engine: _p, ...page } = inPage;
    return { worker, page };
  }, MODEL);
  const size = statSync(fileURLToPath(new URL(`../..${MODEL}`, import.meta.url))).size;
  for (const [where, { ms, progress }] of Object.entries(loads)) {
    console.log(`# load (${where}): ${(ms / 1000).toFixed(2)} s for ${size} bytes`);
    const loaded = progress.map((p) => p.loadedBytes);
    assert.deepEqual(loaded, [...loaded].sort((a, b) => a - b), "progress only goes forward");
    // The first load downloads the model into the weight cache; the second reads it from there.
    const fromCache = where === "page";
    const phase = fromCache ? "cache" : "download";
    assert.deepEqual(progress.at(-1), { phase, loadedBytes: size, totalBytes: size, fromCache });
  }
  native = nativeGenerate(PROMPT, MAX_TOKENS);
}, { timeout: TIMEOUT });

after(async () => {
  await page?.evaluate(() => Promise.all(Object.values(window.engines ?? {}).map((e) => e.unload())));
  await browser?.close();
});

function report(what, { usage, timings }) {
  const ttft = (timings.prefill_ms / 1000).toFixed(2);
  const decode = ((usage.completion_tokens - 1) / (timings.decode_ms / 1000)).toFixed(2);
  console.log(`# ${what}: ${usage.prompt_tokens} prompt tokens, time to first token ${ttft} s, decode ${decode} tokens/s`);
}

test("greedy tokens in the browser are the native CLI's", { timeout: TIMEOUT }, async () => {
  const reply = await page.evaluate(
    ([content, max_tokens]) =>
      engines.worker.chat.completions.create({ messages: [{ role: "user", content }], max_tokens, temperature: 0 }),
    [PROMPT, MAX_TOKENS],
  );
  report("worker, first request", reply);
  assert.deepEqual(reply.tokens, native.tokens);
  assert.equal(reply.choices[0].message.content, native.text);
  assert.equal(reply.choices[0].finish_reason, native.finish_reason);
  assert.equal(reply.usage.prompt_tokens, native.prompt_tokens);
  assert.equal(reply.usage.completion_tokens, MAX_TOKENS);
  assert.equal(reply.usage.total_tokens, native.prompt_tokens + MAX_TOKENS);
  nonStreamed = reply.choices[0].message.content;
});

test("a stream's chunks arrive one by one and add up to the answer", { timeout: TIMEOUT }, async () => {
  const chunks = await page.evaluate(
    async ([content, max_tokens]) => {
      const stream = await engines.page.chat.completions.create({
        messages: [{ role: "user", content }],
        max_tokens,
        temperature: 0,
        stream: true,
      });
      const chunks = [];
      for await (const chunk of stream) chunks.push({ at: performance.now(), chunk });
      return chunks;
    },
    [PROMPT, MAX_TOKENS],
  );
  const last = chunks.at(-1).chunk;
  report("page, streamed", last);
  const pieces = chunks.filter(({ chunk }) => chunk.choices[0].delta.content);
  assert.ok(pieces.length >= 3, `${pieces.length} chunks with text`);
  // Tokens take seconds each here: chunks that came together would be a buffered stream.
  for (let i = 1; i < pieces.length; i++) {
    const gap = pieces[i].at - pieces[i - 1].at;
    assert.ok(gap > 50, `chunk ${i} came ${gap} ms after the one before`);
  }
  assert.equal(pieces.map(({ chunk }) => chunk.choices[0].delta.content).join(""), nonStreamed ?? native.text);
  assert.equal(chunks[0].chunk.choices[0].delta.role, "assistant");
  assert.equal(last.choices[0].finish_reason, "length");
  assert.equal(last.usage.completion_tokens, MAX_TOKENS);
  assert.ok(chunks.every(({ chunk }) => chunk.object === "chat.completion.chunk" && chunk.id === last.id));
});

test("an aborted stream ends with code aborted, and the engine takes the next request", { timeout: TIMEOUT }, async () => {
  const result = await page.evaluate(async () => {
    const messages = [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Count to ten." },
    ];
    const engine = engines.worker;
    const caught = (e) => ({ code: e.code, isTorchlightError: e instanceof TorchlightError });

    const controller = new AbortController();
    const { signal } = controller;
    const stream = await engine.chat.completions.create({ messages, max_tokens: 64, temperature: 0, stream: true, signal });
    const pieces = [];
    let error = null;
    try {
      for await (const chunk of stream) {
        if (chunk.choices[0].delta.content) {
          pieces.push(chunk.choices[0].delta.content);
          controller.abort();
        }
      }
    } catch (e) {
      error = caught(e);
    }

    // A request whose signal fired before it started never runs.
    let early = null;
    await engine.chat.completions
      .create({ messages, max_tokens: 1, signal: AbortSignal.abort() })
      .catch((e) => (early = caught(e)));

    const next = await engine.chat.completions.create({ messages, max_tokens: 2, temperature: 0 });
    return { pieces, error, early, next };
  });
  assert.deepEqual(result.error, { code: "aborted", isTorchlightError: true });
  assert.deepEqual(result.early, { code: "aborted", isTorchlightError: true });
  // The abort message reaches the worker while it decodes the next token; it stops after that one.
  assert.ok(result.pieces.length >= 1 && result.pieces.length <= 3, `${result.pieces.length} pieces before the stop`);
  assert.equal(result.next.choices[0].finish_reason, "length");
  assert.equal(result.next.usage.completion_tokens, 2);
  assert.ok(result.next.choices[0].message.content.length > 0);
});
