// A storage quota too small for the model: the load fails with code quota_exceeded, says how much
// it needs, and leaves nothing in the cache. Its own browser, so the quota is set before the
// page ever opens the cache.

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

test("a quota too small for the model fails mid-download with code quota_exceeded, and keeps nothing", async () => {
  const origin = new URL(page.url()).origin;
  const cdp = await page.context().newCDPSession(page);
  // Half the model's 98 MB, set before the page opens the cache: IndexedDB checks it when a
  // connection opens. Chromium's navigator.storage.estimate() reports a fixed quota (so sites
  // cannot fingerprint the disk), so the download starts, and IndexedDB refuses a chunk.
  await cdp.send("Storage.overrideQuotaForOrigin", { origin, quotaSize: 50e6 });
  try {
    const error = await page.evaluate(
      (url) => Torchlight.load(url).then(() => null, (e) => ({ code: e.code, message: e.message })),
      `${MODEL}?quota=small`,
    );
    assert.equal(error.code, "quota_exceeded", error.message);
    assert.match(error.message, /needs 98\.4 MB of storage, but the browser refused to store more after [2-6]\d\.\d MB of it/);
    const listed = await page.evaluate(() => Torchlight.cache.list());
    assert.ok(!listed.some((m) => m.url.endsWith("?quota=small")), JSON.stringify(listed));
    const { usage } = await page.evaluate(() => Torchlight.cache.usage());
    assert.ok(usage < 10e6, `${usage} bytes still stored`);

    // A local-first engine with a cloud answers from there instead, saying why.
    const rescued = await page.evaluate(
      async ([url, baseURL]) => {
        const engine = await Torchlight.load(url, { cloud: { baseURL, model: "fake", consent: async () => "once" } });
        const reply = await engine.chat.completions.create({ messages: [{ role: "user", content: "Hi" }] });
        return { localError: engine.localError.code, route: reply.route };
      },
      [`${MODEL}?quota=small`, `${cloud.origin}/ok/v1`],
    );
    assert.deepEqual(rescued, { localError: "quota_exceeded", route: { used: "cloud", reason: "does_not_fit" } });
  } finally {
    await cdp.send("Storage.overrideQuotaForOrigin", { origin });
  }
});

test("a quota the browser reports as too small fails before any byte is stored, saying what is needed and free", async () => {
  const url = `${MODEL}?quota=reported`;
  // As browsers that report their real quota do (Chromium's is fixed; see above). The page's
  // own navigator is the one a worker-less load asks.
  const [estimate, error] = await page.evaluate(async (url) => {
    navigator.storage.estimate = async () => ({ usage: 10e6, quota: 60e6 });
    try {
      const estimate = await Torchlight.estimate(url);
      const error = await Torchlight.load(url, { worker: false }).then(() => null, (e) => ({ code: e.code, message: e.message }));
      return [estimate, error];
    } finally {
      delete navigator.storage.estimate;
    }
  }, url);
  const shortfall = /it needs 98\.4 MB of storage, but only 50\.0 MB of this site's 60\.0 MB is free/;
  assert.equal(estimate.fits, false);
  assert.match(estimate.reasons.join("\n"), shortfall);
  assert.equal(error?.code, "quota_exceeded", error?.message);
  assert.match(error.message, shortfall);
  const listed = await page.evaluate(() => Torchlight.cache.list());
  assert.ok(!listed.some((m) => m.url.endsWith("?quota=reported")), JSON.stringify(listed));
});
