// Torchlight.estimate: what a model needs and whether it fits, from its header alone. It reads
// a few MiB by range requests (never the weights) and stores nothing; for a cached model it
// makes no request at all.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { MODEL, modelRequests as requestsFor, openPage } from "./browser.js";

let browser, page;

before(async () => {
  ({ browser, page } = await openPage());
});

after(async () => {
  await browser?.close();
});

/** Bytes a `bytes=a-b` request asked for. */
function rangeLength(range) {
  const [, start, end] = /^bytes=(\d+)-(\d+)$/.exec(range);
  return Number(end) - Number(start) + 1;
}

function estimate(url, options) {
  return page.evaluate(
    ([url, options]) => Torchlight.estimate(url, options).catch((e) => ({ code: e.code, message: e.message })),
    [url, options],
  );
}

test("the test model fits; the estimate reads only its header and matches what a load allocates", async () => {
  const url = `${MODEL}?estimate=header`;
  const found = await estimate(url, { contextLength: 512 });
  assert.equal(found.fits, true, found.message ?? found.reasons?.join());
  assert.deepEqual(found.reasons, []);
  assert.equal(found.architecture, "llama");
  assert.equal(found.quantization, "Q4_1");
  assert.equal(found.contextLength, 512);
  assert.equal(found.bytes, 98362432);
  assert.equal(found.cached, false);
  assert.equal(found.kvBytes, 2 * 30 * 512 * 192 * 4);
  assert.equal(found.gpuBytes, found.weightBytes + found.kvBytes + found.activationBytes);

  const requests = await requestsFor(url);
  const fetched = requests.reduce((n, r) => n + rangeLength(r.range), 0);
  assert.ok(fetched < 8 << 20, `the estimate fetched ${fetched} bytes: ${JSON.stringify(requests)}`);
  const listed = await page.evaluate(() => Torchlight.cache.list());
  assert.deepEqual(listed, [], "the estimate stored something");
  console.log(`# estimate: ${requests.length} range request(s), ${fetched} bytes; GPU ${(found.gpuBytes / 2 ** 20).toFixed(1)} MiB`);

  const allocated = await page.evaluate(async (url) => {
    const engine = await Torchlight.load(url, { contextLength: 512, backend: "gpu" });
    const { modelBytes } = await engine.stats();
    await engine.unload();
    return modelBytes;
  }, url);
  const off = Math.abs(found.gpuBytes - allocated) / allocated;
  assert.ok(off < 0.01, `estimated ${found.gpuBytes} GPU bytes, the load allocated ${allocated}`);
});

test("a cached model is estimated from the cache, with no request", async () => {
  const url = `${MODEL}?estimate=header`;
  const before = (await requestsFor(url)).length;
  const found = await estimate(url);
  assert.equal(found.cached, true);
  assert.equal(found.fits, true, found.reasons?.join());
  assert.equal(found.contextLength, 2048);
  assert.equal((await requestsFor(url)).length, before);
});

test("what is not a model is refused with the load's error codes", async () => {
  assert.equal((await estimate("/not-a-model.gguf")).code, "not_gguf");
  assert.equal((await estimate("/models/no-such-model.gguf")).code, "network");
  assert.equal((await estimate(`${MODEL}?length=1500000`)).code, "truncated");
});
