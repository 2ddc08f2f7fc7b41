// What cannot succeed fails fast with a TorchlightError whose code says why: loads before any
// weight is downloaded (in the worker and in the page alike), requests before any GPU work.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { MODEL, openPage } from "./browser.js";

let browser, page;

before(async () => {
  ({ browser, page } = await openPage());
});

after(async () => {
  await browser?.close();
});

/** What `Torchlight.load` rejects with, as plain data. */
function loadError(url, options) {
  return page.evaluate(
    async ([url, options]) => {
      try {
        await Torchlight.load(url, options);
        return null;
      } catch (e) {
        return { code: e.code, message: e.message, isTorchlightError: e instanceof TorchlightError };
      }
    },
    [url, options],
  );
}

const CASES = [
  ["a URL that is not there", "/models/no-such-model.gguf", "network", /HTTP 404/],
  ["a file that is not GGUF", "/not-a-model.gguf", "not_gguf", /not a GGUF file/],
  // 1.5 MB: inside the header, past the first request's prefix (so the prefix grows first).
  ["a file cut inside its header", `${MODEL}?length=1500000`, "truncated", /truncated/],
  ["a file cut inside its tensor data", `${MODEL}?length=50000000`, "truncated", /outside the file/],
];

for (const worker of [true, false]) {
  for (const [what, url, code, message] of CASES) {
    test(`${what} fails with code ${code} (worker: ${worker})`, async () => {
      const error = await loadError(url, { worker });
      assert.ok(error, "the load succeeded");
      assert.equal(error.code, code, error.message);
      assert.ok(error.isTorchlightError);
      assert.match(error.message, message);
    });
  }
}

test("after every failure above, the cache lists only complete models", async () => {
  const listed = await page.evaluate(() => Torchlight.cache.list());
  assert.ok(listed.every((m) => m.complete), JSON.stringify(listed));
});

test("a load whose signal has fired fails with code aborted", async () => {
  const error = await page.evaluate(() =>
    Torchlight.load("/models/no-such-model.gguf", { signal: AbortSignal.abort() }).catch((e) => e.code),
  );
  assert.equal(error, "aborted");
});

test("requests the engine cannot take fail with their codes, before any GPU work", async () => {
  const errors = await page.evaluate(async (model) => {
    const engine = await Torchlight.load(model, { contextLength: 16 });
    const codeOf = (params) => engine.chat.completions.create(params).then(() => null, (e) => e.code);
    const messages = [{ role: "user", content: "What is the capital of France?" }];
    const result = {
      contextLength: engine.contextLength,
      overflow: await codeOf({ messages }),
      temperature: await codeOf({ messages, temperature: -1 }),
      noMessages: await codeOf({}),
      badMessage: await codeOf({ messages: [{ role: "user" }] }),
    };
    await engine.unload();
    result.afterUnload = await codeOf({ messages });
    return result;
  }, MODEL);
  assert.deepEqual(errors, {
    contextLength: 16,
    overflow: "context_overflow",
    temperature: "invalid_request",
    noMessages: "invalid_request",
    badMessage: "invalid_request",
    afterUnload: "aborted",
  });
});
