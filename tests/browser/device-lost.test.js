// A lost GPU device (here: Chromium's GPU process crashed over CDP) fails the engine's requests
// with code device_lost (or, for a local-first engine with a cloud, answers from the cloud after
// consent, saying why), and a new Torchlight.load afterwards works.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { MODEL, openPage } from "./browser.js";
import { startFakeCloud } from "./cloud-servers.js";

let browser, page, cloud;

before(async () => {
  cloud = await startFakeCloud();
  ({ browser, page } = await openPage());
});

after(async () => {
  await browser?.close();
  await cloud?.stop();
});

/** Loads the model, then answers one-token requests: `ask()` resolves to "answered" or the error's code. */
function withEngine(body) {
  return page.evaluate(
    async ([model, body]) => {
      const engine = await Torchlight.load(model, { contextLength: 64, backend: "gpu" });
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
  // A second engine, local-first with a cloud endpoint.
  await page.evaluate(
    async ([model, baseURL]) => {
      window.fallback = await Torchlight.load(model, {
        contextLength: 64,
        backend: "gpu",
        cloud: { baseURL, model: "fake", consent: async (r) => (window.reason = r.reason, "once") },
      });
    },
    [MODEL, `${cloud.origin}/ok/v1`],
  );
  const cdp = await browser.newBrowserCDPSession();
  await cdp.send("Browser.crashGpuProcess");

  const rescued = await page.evaluate(async () => {
    const reply = await fallback.chat.completions.create({ messages: [{ role: "user", content: "Hi" }], max_tokens: 1 });
    await fallback.unload();
    return { route: reply.route, content: reply.choices[0].message.content, asked: window.reason };
  });
  assert.deepEqual(rescued, { route: { used: "cloud", reason: "device_lost" }, content: "fine", asked: "device_lost" });

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
