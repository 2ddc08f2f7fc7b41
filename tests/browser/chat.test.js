// The model in the browser: the same greedy tokens as the native CLI on each backend,
// streaming, and abort. The model is loaded once for the whole file: on WebGPU in a worker, and
// on the CPU (wasm SIMD) in the page. Generation on SwiftShader is slow (seconds per token), so
// answers are a few tokens long.

import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { MODEL, nativeGenerate, openPage } from "./browser.js";

const PROMPT = "What is the capital of France?";
const MAX_TOKENS = 6;
const TIMEOUT = 10 * 60_000;

let browser, page, nonStreamed;

before(async () => {
  ({ browser, page } = await openPage());
  const loads = await page.evaluate(async (model) => {
    const load = async (worker, backend) => {
      const start = performance.now();
      const progress = [];
      const engine = await Torchlight.load(model, { worker, backend, onProgress: (p) => progress.push(p) });
      return { engine, ms: performance.now() - start, progress };
    };
    const inWorker = await load(true, "gpu");
    const inPage = await load(false, "cpu");
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
    const streamed = progress.filter((p) => p.phase === phase);
    assert.deepEqual(streamed.at(-1), { phase, loadedBytes: size, totalBytes: size, fromCache });
    assert.deepEqual(progress.slice(-2).map((p) => p.phase), ["upload", "compile"]);
  }
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

for (const [where, backend] of [["worker", "gpu"], ["page", "cpu"]]) {
  test(`greedy tokens in the browser on the ${backend} are the native CLI's`, { timeout: TIMEOUT }, async () => {
    const native = nativeGenerate(PROMPT, MAX_TOKENS, backend);
    const reply = await page.evaluate(
      ([where, content, max_tokens]) =>
        engines[where].chat.completions.create({ messages: [{ role: "user", content }], max_tokens, temperature: 0 }),
      [where, PROMPT, MAX_TOKENS],
    );
    report(`${backend} in the ${where}, first request`, reply);
    assert.deepEqual(reply.route, { used: "local", backend });
    assert.deepEqual(reply.tokens, native.tokens);
    assert.equal(reply.choices[0].message.content, native.text);
    assert.equal(reply.choices[0].finish_reason, native.finish_reason);
    assert.equal(reply.usage.prompt_tokens, native.prompt_tokens);
    assert.equal(reply.usage.completion_tokens, MAX_TOKENS);
    assert.equal(reply.usage.total_tokens, native.prompt_tokens + MAX_TOKENS);
    if (backend === "cpu") nonStreamed = reply.choices[0].message.content;
  });
}

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
  // A token takes tens of milliseconds even on the CPU, and the page gets a turn between
  // tokens: chunks that came together would be a buffered stream. (The text a detokenizer held
  // back may follow the last token's at once.)
  const gaps = pieces.slice(1).map((p, i) => p.at - pieces[i].at);
  assert.ok(gaps.filter((gap) => gap > 5).length >= gaps.length - 1, `gaps between chunks: ${gaps.join(", ")} ms`);
  assert.equal(pieces.map(({ chunk }) => chunk.choices[0].delta.content).join(""), nonStreamed);
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
