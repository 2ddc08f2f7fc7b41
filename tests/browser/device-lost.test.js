// A lost GPU device (here: Chromium's GPU process crashed over CDP) fails the engine's requests
// with code device_lost, and a new Torchlight.load afterwards works.

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

/** Loads the model, then answers one-token requests: `ask()` resolves to "answered" or the error's code. */
function withEngine(body) {
  return page.evaluate(
    async ([model, body]) => {
      const engine = await Torchlight.load(model, { contextLength: 64 });
      const messages = [{ role: "user", content: "Hi" }];
      const ask = () => engine.chat.completions.create({ messages, max_tokens: 1, temperature: 0 }).then(() => "answered", (e) => e.code);
      window.lostEngine = { engine, ask };
      return body === "ask" ? ask() : null;
    },
    [MODEL, body],
  );
}

test("a lost device fails requests with code device_lost; loading again works", async () => {
  await withEngine("load");
  const cdp = await browser.newBrowserCDPSession();
  await cdp.send("Browser.crashGpuProcess");

  const codes = await page.evaluate(async () => {
    const { engine, ask } = window.lostEngine;
    const codes = [await ask(), await ask()];
    await engine.unload();
    return codes;
  });
  assert.deepEqual(codes, ["device_lost", "device_lost"]);

  assert.equal(await withEngine("ask"), "answered");
  await page.evaluate(() => window.lostEngine.engine.unload());
});
