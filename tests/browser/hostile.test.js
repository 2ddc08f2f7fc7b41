// A model file is untrusted input. Every hostile variant of the test model that
// tests/hostile/make_hostile.py writes (target/hostile/, listed in its manifest.json) goes
// through the package as its `generate` says a chat request must end: "error", the load or, if
// it loads, a chat request rejects within 5 s with a TorchlightError whose code puts the fault on
// the file and whose message contains `expect`; "clean", it answers (the control file); "error
// or runs", either (a template that is legitimate once its filter is bounded). Meanwhile the
// page's own timers keep running, and after them all the test model loads and answers. Each load
// runs with a watchdog short enough that a core which hangs fails here (`unresponsive`) in time.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, test } from "node:test";

import { MODEL, modelPath, openPage } from "./browser.js";

const HOSTILE = "/target/hostile/";
/** The codes that put the fault on the file. */
const FILE_CODES = ["invalid_model", "unsupported_arch", "truncated", "does_not_fit"];
/** The longest a refusal may take. */
const LIMIT_MS = 5000;
/** A hang is ended well inside LIMIT_MS (the page looks at the silence every second). */
const WATCHDOG_MS = 3000;
/** The longest the page's own timers may be held up meanwhile. */
const PAGE_GAP_MS = 500;

const manifest = JSON.parse(
  await readFile(modelPath(`${HOSTILE}manifest.json`), "utf8").catch((e) => {
    throw new Error(`no hostile corpus: run tests/hostile/make_hostile.py first (${e.message})`);
  }),
);

let browser, page;

before(async () => {
  ({ browser, page } = await openPage());
});

after(async () => {
  await browser?.close();
});

/**
 * Loads `url` and, if it loads, asks for a short answer, while a timer ticks on the page every
 * 50 ms: `{ step, code, message, isTorchlightError, ms, longestGap }`, the step that failed
 * ("load" or "chat"; "answered" if none did) and how long it took, and the longest the timer
 * was held up. The file is dropped from the weight cache after.
 */
function refusal(url) {
  return page.evaluate(
    async ([url, watchdogMs]) => {
      let last = performance.now();
      let longestGap = 0;
      const timer = setInterval(() => {
        const now = performance.now();
        longestGap = Math.max(longestGap, now - last - 50);
        last = now;
      }, 50);
      let step = "load";
      let start = performance.now();
      let engine;
      try {
        engine = await Torchlight.load(url, { contextLength: 256, watchdogMs });
        step = "chat";
        start = performance.now();
        await engine.chat.completions.create({ messages: [{ role: "user", content: "Hi" }], max_tokens: 4 });
        return { step: "answered", ms: performance.now() - start, longestGap };
      } catch (e) {
        const ms = performance.now() - start;
        return { step, code: e.code, message: e.message, isTorchlightError: e instanceof TorchlightError, ms, longestGap };
      } finally {
        clearInterval(timer);
        await engine?.unload();
        await Torchlight.cache.delete(url);
      }
    },
    [url, WATCHDOG_MS],
  );
}

for (const entry of manifest) {
  test(`${entry.file} (${entry.class}: ${entry.what}): ${entry.generate}`, async () => {
    assert.ok(["error", "clean", "error or runs"].includes(entry.generate), `generate ${JSON.stringify(entry.generate)} is not a case`);
    const outcome = await refusal(`${HOSTILE}${entry.file}`);
    console.log(`# ${entry.file}: ${outcome.step} ${outcome.code ?? ""} after ${outcome.ms.toFixed(0)} ms: ${outcome.message ?? ""}`);
    assert.ok(outcome.longestGap < PAGE_GAP_MS, `the page's timer was held up ${outcome.longestGap} ms`);
    if (outcome.step === "answered") {
      assert.notEqual(entry.generate, "error", "the hostile file loaded and answered");
      return;
    }
    assert.notEqual(entry.generate, "clean", `it failed: ${outcome.message}`);
    assert.ok(outcome.isTorchlightError, "not a TorchlightError");
    assert.ok(FILE_CODES.includes(outcome.code), `code ${outcome.code}: ${outcome.message}`);
    assert.ok(outcome.message.includes(entry.expect), `the message does not name "${entry.expect}"`);
    assert.ok(outcome.ms < LIMIT_MS, `the ${outcome.step} took ${outcome.ms} ms to fail`);
  });
}

test("after every hostile file, the test model loads and answers", async () => {
  const reply = await page.evaluate(async (model) => {
    const engine = await Torchlight.load(model, { contextLength: 256 });
    try {
      const reply = await engine.chat.completions.create({ messages: [{ role: "user", content: "Hi" }], max_tokens: 4, temperature: 0 });
      return reply.usage.completion_tokens;
    } finally {
      await engine.unload();
    }
  }, MODEL);
  assert.equal(reply, 4);
});
