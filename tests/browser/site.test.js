// The demo site (www/, built into www/dist by pkg-scripts/build-site.sh) as a person uses it,
// served from a sub-path (/app/) to prove its paths are relative: pick the test model, chat,
// go offline and chat again, open a .gguf from disk, a thinking model's folded reasoning,
// delete a model, no-WebGPU browsers, a phone viewport and accessibility. Screenshots go to
// tests/browser/output/.

import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import {
  MODEL,
  THINKING_MODEL,
  launch,
  modelPath,
  modelRequests,
  nativeGenerate,
  removeThinkingModel,
  writeThinkingModel,
} from "./browser.js";

const SITE = `${process.env.TORCHLIGHT_TEST_URL}/app/`;
const OUTPUT = fileURLToPath(new URL("./output/", import.meta.url));
const MODEL_FILE = modelPath(MODEL);
const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
const PROMPT = "What is the capital of France?";
const TOKENS = 8;

let browser, context, page;

before(async () => {
  await mkdir(OUTPUT, { recursive: true });
  browser = await launch();
  context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  page = await context.newPage();
  page.on("pageerror", (e) => console.error(`[page] ${e}`));
  // Any confirm() the site shows (say, before deleting a model) is answered yes.
  page.on("dialog", (dialog) => dialog.accept());
  await openSite(page);
});

after(async () => {
  await browser?.close();
});

async function openSite(p) {
  await p.goto(SITE);
  await p.waitForSelector("#model-select option");
}

/** Chooses the test model in the catalog and loads it. */
async function pickTestModel(p) {
  const value = await p.$eval("#model-select", (s) => [...s.options].find((o) => /SmolLM2/.test(o.textContent)).value);
  await p.selectOption("#model-select", value);
  await p.click("#model-load");
}

/** The package's cache listing, as the site's own copy of the package sees it. */
function cachedModels(p) {
  return p.evaluate(async () => (await import(new URL("pkg/index.js", location.href))).Torchlight.cache.list());
}

/** Waits for the load in progress to end; returns the status line. */
async function loaded(p) {
  await p.waitForFunction(() => /cached on this device/.test(document.querySelector("#load-status")?.textContent ?? ""), null, { timeout: 120_000 });
  return p.textContent("#load-status");
}

/** Sends `prompt` greedily with the settings a test needs; resolves to the finished answer. */
async function chat(p, prompt) {
  await p.fill("#temperature", "0");
  await p.fill("#max-tokens", `${TOKENS}`);
  await p.fill("#system-prompt", "");
  const answers = await p.locator(".message.assistant").count();
  await p.fill("#prompt", prompt);
  await p.press("#prompt", "Enter");
  const answer = p.locator(".message.assistant").nth(answers);
  await answer.and(p.locator('[data-done="true"]')).waitFor({ timeout: 300_000 });
  return {
    text: (await answer.locator(".content").innerText()).trim(),
    badge: (await answer.locator(".badge").innerText()).trim(),
    stats: (await answer.locator(".stats").innerText()).trim(),
  };
}

test("pick the test model, watch it load, and get the engine's greedy answer", async () => {
  // The site runs where `backend: "auto"` puts it: here, the CPU (SwiftShader is a fallback adapter).
  const native = nativeGenerate(PROMPT, TOKENS, "cpu");
  await pickTestModel(page);
  // Not cached yet: the site says what it needs and asks before downloading.
  await page.waitForSelector("#download-consent[open]");
  assert.match(await page.textContent("#download-consent"), /98(\.\d)? MB/);
  await page.click("#download-confirm");
  const status = await loaded(page);
  assert.match(status, /cached on this device/);
  const progress = await page.$eval("#load-progress", (e) => [e.value, e.max]);
  assert.equal(progress[0], progress[1]);

  const answer = await chat(page, PROMPT);
  assert.equal(answer.text.replace(/\s+/g, " "), native.text.trim().replace(/\s+/g, " "));
  assert.match(answer.badge, /on this device/);
  assert.match(answer.stats, /tokens\/s/);
  await page.screenshot({ path: `${OUTPUT}site-desktop.png` });
});

test("offline, the site opens from its service worker, loads the model from IndexedDB and answers", async () => {
  await page.evaluate(async () => void (await navigator.serviceWorker.ready));
  await context.setOffline(true);
  try {
    await page.reload();
    await page.waitForSelector("#model-select option");
    assert.ok(await page.evaluate(() => navigator.serviceWorker.controller !== null), "the service worker does not control the page");
    await pickTestModel(page);
    await loaded(page);
    const answer = await chat(page, "Say hello.");
    assert.ok(answer.text.length > 0);
    assert.match(answer.badge, /on this device/);
  } finally {
    await context.setOffline(false);
  }
});

test("a .gguf opened from disk loads with no network request for weights", async () => {
  const before = (await modelRequests()).length;
  await page.setInputFiles("#model-file", MODEL_FILE);
  // A file needs no download consent: nothing is downloaded.
  await loaded(page);
  assert.equal((await modelRequests()).length, before);
  const cached = await cachedModels(page);
  assert.ok(cached.some((m) => m.url.startsWith("file:") && m.complete), JSON.stringify(cached));
});

test("a thinking model's reasoning is folded away above its answer", async () => {
  await writeThinkingModel();
  try {
    // Its template opens a think block in the prompt, so all of the answer is reasoning.
    const native = nativeGenerate(PROMPT, TOKENS, "cpu", THINKING_MODEL);
    await page.setInputFiles("#model-file", modelPath(THINKING_MODEL));
    await page.waitForFunction(() => /^Ready: .*thinking-test/.test(document.querySelector("#load-status").textContent), null, {
      timeout: 120_000,
    });
    await page.click("#new-chat");
    const answer = await chat(page, PROMPT);
    assert.equal(answer.text, "");
    const reasoning = page.locator(".message.assistant .reasoning");
    assert.equal(await reasoning.count(), 1);
    assert.equal(await reasoning.evaluate((details) => details.open), false, "the reasoning is shown unfolded");
    assert.equal((await reasoning.locator("summary").innerText()).trim(), "Reasoning");
    assert.equal(await reasoning.locator(".reasoning-text").textContent(), native.text.trim());
    // Stored with the conversation, it is folded the same way when shown again.
    await page.reload();
    await page.waitForSelector(".message.assistant .reasoning:not([open])");
    assert.equal(await reasoning.locator(".reasoning-text").textContent(), native.text.trim());
  } finally {
    const url = (await cachedModels(page)).find((m) => m.url.includes("thinking-test"))?.url;
    if (url) await page.evaluate(async (url) => (await import(new URL("pkg/index.js", location.href))).Torchlight.cache.delete(url), url);
    await removeThinkingModel();
  }
});

test("deleting a model in the storage panel removes it from the cache", async () => {
  const target = (await cachedModels(page)).find((m) => m.url.includes("SmolLM2"))?.url;
  assert.ok(target);
  const item = page.locator(`#storage .cached-model[data-url="${target}"]`);
  await item.locator(".delete").click();
  await item.waitFor({ state: "detached" });
  assert.ok(!(await cachedModels(page)).some((m) => m.url === target));
});

test("a new version announces itself, and takes over only when asked", async () => {
  // A new deployment: the same site with another version in its service worker.
  const sw = fileURLToPath(new URL("../../www/dist/sw.js", import.meta.url));
  const original = await readFile(sw, "utf8");
  const next = original.replace(/const VERSION = "([0-9a-f]+)"/, 'const VERSION = "$1-next"');
  assert.notEqual(next, original);
  await writeFile(sw, next);
  try {
    await page.evaluate(async () => (await navigator.serviceWorker.getRegistration()).update());
    await page.waitForSelector("#update-ready", { state: "visible" });
    assert.doesNotMatch(await page.textContent("#app-version"), /-next/, "the new version took over unasked");
    await Promise.all([page.waitForEvent("load"), page.click("#update-reload")]);
    await page.waitForFunction(() => /-next/.test(document.querySelector("#app-version")?.textContent ?? ""));
  } finally {
    await writeFile(sw, original);
  }
});

test("a phone-sized viewport has no horizontal scrolling, and axe finds no serious violations", async () => {
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const p = await phone.newPage();
  try {
    await openSite(p);
    const overflow = await p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `${overflow} px of horizontal scrolling`);
    await p.screenshot({ path: `${OUTPUT}site-phone.png`, fullPage: true });
    await p.addScriptTag({ path: AXE });
    const violations = await p.evaluate(async () => (await axe.run()).violations.filter((v) => ["serious", "critical"].includes(v.impact)));
    assert.deepEqual(violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target).join(" ")}`), []);
  } finally {
    await phone.close();
  }
});

test("the benchmark page measures a model on the CPU, and passes axe", async () => {
  const p = await context.newPage();
  try {
    await p.goto(`${SITE}bench.html`);
    await p.waitForSelector("html[data-ready='true']");
    await p.selectOption("#bench-backend", "cpu");
    await p.fill("#bench-prompt", "16");
    await p.fill("#bench-tokens", "4");
    await p.fill("#bench-runs", "1");
    await p.click("#bench-run");
    const row = p.locator("#bench-table tbody tr").first();
    await row.waitFor({ timeout: 120_000 });
    const cells = await row.locator("td").allInnerTexts();
    assert.equal(cells[0], "cpu");
    // The site is cross-origin isolated, so the CPU backend takes every core (up to 8).
    const cores = await p.evaluate(() => navigator.hardwareConcurrency);
    assert.equal(cells[1], String(Math.min(cores, 8)));
    for (const number of cells.slice(1)) assert.ok(Number(number) > 0, cells.join(" | "));
    await p.addScriptTag({ path: AXE });
    const violations = await p.evaluate(async () => (await axe.run()).violations.filter((v) => ["serious", "critical"].includes(v.impact)));
    assert.deepEqual(violations.map((v) => v.id), []);
    console.log(`# benchmark page, cpu: ${cells.join(" | ")}`);
  } finally {
    await p.close();
  }
});

test("on a host that sends no isolation headers, the service worker isolates the site from the next visit", async () => {
  const p = await context.newPage();
  try {
    await p.goto(`${process.env.TORCHLIGHT_TEST_URL}/static-app/`);
    await p.waitForSelector("#model-select option");
    assert.equal(await p.evaluate(() => crossOriginIsolated), false);
    await p.evaluate(() => navigator.serviceWorker.ready);
    await p.reload();
    await p.waitForSelector("#model-select option");
    const { caps, cores } = await p.evaluate(async () => ({
      caps: await (await import(new URL("pkg/index.js", location.href))).Torchlight.probe(),
      cores: navigator.hardwareConcurrency,
    }));
    assert.equal(caps.crossOriginIsolated, true);
    assert.equal(caps.cpuThreads, Math.min(cores, 8));
    // The model (its URL here is new to the cache), its worker and its CPU threads all run
    // under isolation, served through the service worker.
    await pickTestModel(p);
    await p.waitForSelector("#download-consent[open]");
    await p.click("#download-confirm");
    await loaded(p);
    const answer = await chat(p, PROMPT);
    assert.ok(answer.text.length > 0);
    assert.match(answer.badge, /on this device/);
  } finally {
    await p.close();
  }
});

test("without WebGPU, the site says so and offers the cloud option", async () => {
  const plain = await launch({ webgpu: false });
  try {
    const p = await plain.newPage();
    await openSite(p);
    await p.waitForSelector("#no-webgpu", { state: "visible" });
    assert.ok(await p.isVisible("#use-cloud"));
    await p.screenshot({ path: `${OUTPUT}site-no-webgpu.png` });
  } finally {
    await plain.close();
  }
});
