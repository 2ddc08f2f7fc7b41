// The IndexedDB weight cache: a second load makes no request for the model, a dropped download
// resumes from its last whole chunk, and a deleted model downloads again. No tokens are
// generated here: loading is what these tests are about, and generation is slow on SwiftShader.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { MODEL, modelRequests as requestsFor, openPage } from "./browser.js";

/** The cache's chunk size (cache.js): resumed downloads start at a multiple of it. */
const CHUNK_SIZE = 4 << 20;
const BASE_URL = process.env.TORCHLIGHT_TEST_URL;

let browser, page;

before(async () => {
  ({ browser, page } = await openPage());
});

after(async () => {
  await browser?.close();
});


const rangeStart = (r) => Number(/^bytes=(\d+)-/.exec(r.range)?.[1]);

/**
 * Loads `url` and unloads it at once: how long it took, which progress phases it went through
 * and the engine's memory stats, or its error.
 */
function load(url) {
  return page.evaluate(async (url) => {
    const phases = new Set();
    const start = performance.now();
    try {
      // On the GPU: the weights stream through wasm memory without staying in it.
      const engine = await Torchlight.load(url, { backend: "gpu", onProgress: (p) => phases.add(`${p.phase}:${p.fromCache}`) });
      const ms = Math.round(performance.now() - start);
      const stats = await engine.stats();
      await engine.unload();
      return { ms, phases: [...phases], stats };
    } catch (e) {
      return { code: e.code, message: e.message };
    }
  }, url);
}

/** The cache's entry for `url`, or null. */
function cached(url) {
  return page.evaluate(
    async (url) => (await Torchlight.cache.list()).find((m) => m.url === new URL(url, location.href).href) ?? null,
    url,
  );
}

/** SHA-256 (hex) of the chunks the cache holds for `url`, end to end, read straight from IndexedDB. */
function cachedSha256(url) {
  return page.evaluate(async (url) => {
    const key = new URL(url, location.href).href;
    const request = (r) => new Promise((resolve, reject) => Object.assign(r, { onsuccess: () => resolve(r.result), onerror: () => reject(r.error) }));
    const db = await request(indexedDB.open("torchlight"));
    const chunks = await request(db.transaction("chunks").objectStore("chunks").getAll(IDBKeyRange.bound([key, 0], [key, Infinity])));
    db.close();
    const whole = new Uint8Array(chunks.reduce((n, c) => n + c.bytes.length, 0));
    let at = 0;
    for (const { bytes } of chunks) {
      whole.set(bytes, at);
      at += bytes.length;
    }
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", whole));
    return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
  }, url);
}

async function fileSha256() {
  const hash = createHash("sha256");
  for await (const bytes of createReadStream(fileURLToPath(new URL(`../..${MODEL}`, import.meta.url)))) hash.update(bytes);
  return hash.digest("hex");
}

async function reloadPage() {
  await page.reload();
  await page.waitForFunction(() => window.Torchlight);
}

test("a second load, after a page reload, reads the model from the cache with no request for it", async () => {
  const url = `${MODEL}?cache=twice`;
  const first = await load(url);
  assert.ok(first.ms, first.message);
  assert.deepEqual(first.phases, ["download:false", "upload:false", "compile:false"]);
  const entry = await cached(url);
  assert.equal(entry?.complete, true);
  // The weights streamed through: wasm memory (whose size is its peak) never held the model.
  const { backend, wasmMemoryBytes, modelBytes } = first.stats;
  assert.equal(backend, "gpu");
  assert.ok(wasmMemoryBytes < entry.bytes / 3, `wasm memory ${wasmMemoryBytes} bytes for a ${entry.bytes}-byte model`);
  assert.ok(modelBytes > entry.bytes * 0.9, `${modelBytes} bytes on the GPU`);
  console.log(`# peak wasm memory during the load: ${(wasmMemoryBytes / 2 ** 20).toFixed(1)} MiB; GPU buffers ${(modelBytes / 2 ** 20).toFixed(1)} MiB`);

  await reloadPage();
  const requests = (await requestsFor(url)).length;
  const second = await load(url);
  assert.ok(second.ms, second.message);
  assert.equal((await requestsFor(url)).length, requests, "the cached load made requests for the model");
  assert.deepEqual(second.phases, ["cache:true", "upload:true", "compile:true"]);
  assert.equal((await cached(url))?.complete, true);
  console.log(`# load from the network: ${first.ms} ms; from the cache: ${second.ms} ms (${entry.bytes} bytes)`);
});

test("a dropped download fails with code network, then resumes from its last whole chunk", async () => {
  const url = `${MODEL}?cache=resume`;
  // Past the header's request (one chunk), into the middle of the tensor data's.
  await fetch(`${BASE_URL}/__drop?url=${encodeURIComponent(url)}&after=40000000`);
  const first = await load(url);
  assert.equal(first.code, "network", first.message);
  assert.equal((await cached(url))?.complete, false);

  await reloadPage();
  const before = (await requestsFor(url)).length;
  const second = await load(url);
  assert.ok(second.ms, second.message);
  const resumed = (await requestsFor(url)).slice(before);
  assert.equal(resumed.length, 1, JSON.stringify(resumed));
  const start = rangeStart(resumed[0]);
  assert.ok(start > 0 && start % CHUNK_SIZE === 0, `resumed at byte ${start}`);
  console.log(`# resumed at byte ${start} (chunk ${start / CHUNK_SIZE})`);
  assert.equal((await cached(url))?.complete, true);
  assert.equal(await cachedSha256(url), await fileSha256());
});

test("a file changed on the server since its first chunks were cached fails with code integrity; the next load starts over", async () => {
  const url = `${MODEL}?cache=changed`;
  const control = (what, query) => fetch(`${BASE_URL}/__${what}?url=${encodeURIComponent(url)}&${query}`);
  await control("etag", `etag=${encodeURIComponent('"v1"')}`);
  await control("drop", "after=40000000");
  assert.equal((await load(url)).code, "network");
  assert.equal((await cached(url))?.complete, false);

  await control("etag", `etag=${encodeURIComponent('"v2"')}`);
  const changed = await load(url);
  assert.equal(changed.code, "integrity", changed.message);
  assert.match(changed.message, /changed since it was cached/);
  assert.equal(await cached(url), null, "the stale part was kept");

  const fresh = await load(url);
  assert.ok(fresh.ms, fresh.message);
  assert.equal((await cached(url))?.complete, true);
  assert.equal(await cachedSha256(url), await fileSha256());
});

test("a corrupt chunk and a missing one are fetched again, each by range", async () => {
  const url = `${MODEL}?cache=resume`;
  await page.evaluate(async (url) => {
    const key = new URL(url, location.href).href;
    const request = (r) => new Promise((resolve, reject) => Object.assign(r, { onsuccess: () => resolve(r.result), onerror: () => reject(r.error) }));
    const db = await request(indexedDB.open("torchlight"));
    const chunks = db.transaction("chunks", "readwrite").objectStore("chunks");
    const record = await request(chunks.get([key, 3]));
    record.bytes[1000] ^= 0xff;
    await request(chunks.put(record, [key, 3]));
    await request(chunks.delete([key, 7]));
    db.close();
  }, url);
  const before = (await requestsFor(url)).length;
  const reload = await load(url);
  assert.ok(reload.ms, reload.message);
  const refetched = (await requestsFor(url)).slice(before).map((r) => r.range);
  assert.deepEqual(refetched, [3, 7].map((i) => `bytes=${i * CHUNK_SIZE}-${(i + 1) * CHUNK_SIZE - 1}`));
  assert.equal(await cachedSha256(url), await fileSha256());
});

test("a deleted model is downloaded again", async () => {
  const url = `${MODEL}?cache=twice`;
  await page.evaluate((url) => Torchlight.cache.delete(url), url);
  assert.equal(await cached(url), null);
  const requests = (await requestsFor(url)).length;
  const again = await load(url);
  assert.ok(again.ms, again.message);
  const fetched = (await requestsFor(url)).slice(requests);
  assert.ok(fetched.some((r) => rangeStart(r) === 0), JSON.stringify(fetched));
  assert.equal((await cached(url))?.complete, true);
  const { usage, quota } = await page.evaluate(() => Torchlight.cache.usage());
  assert.ok(usage > 0 && quota >= usage, `usage ${usage} of ${quota}`);
});

test("a File from disk loads through the cache with no request at all, and a second load reads the cache", async () => {
  const result = await page.evaluate(async (model) => {
    // The test gets the bytes over HTTP; the load itself must not.
    const file = new File([await (await fetch(model)).blob()], "picked.gguf", { lastModified: 1700000000000 });
    const count = async () => (await (await fetch("/__log")).json()).length;
    const before = await count();
    const phases = [];
    const first = await Torchlight.load(file, { onProgress: (p) => phases.push(`${p.phase}:${p.fromCache}`) });
    const model1 = first.model;
    await first.unload();
    const again = [];
    await (await Torchlight.load(file, { onProgress: (p) => again.push(`${p.phase}:${p.fromCache}`) })).unload();
    const entry = (await Torchlight.cache.list()).find((m) => m.url.startsWith("file:"));
    return { requests: (await count()) - before, model: model1, phases: [...new Set(phases)], again: [...new Set(again)], entry };
  }, MODEL);
  assert.equal(result.requests, 0);
  assert.equal(result.model, "picked.gguf");
  assert.deepEqual(result.phases, ["download:false", "upload:false", "compile:false"]);
  assert.deepEqual(result.again, ["cache:true", "upload:true", "compile:true"]);
  assert.equal(result.entry?.complete, true);
  assert.equal(result.entry.bytes, 98362432);
  assert.equal(result.entry.url, "file:///picked.gguf?bytes=98362432&modified=1700000000000");
});
