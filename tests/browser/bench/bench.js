// Torchlight and @wllama/wllama (llama.cpp in wasm) side by side in headless Chromium, on the
// same GGUF and the same chat prompt: load from the network, load from each one's cache, time
// to first token and decode speed, medians over --runs. A benchmark, not a test: it prints
// numbers. Run by pkg-scripts/bench-browser.sh, which serves the page and sets
// TORCHLIGHT_TEST_URL.
//
// Every measurement gets a fresh browser profile, so the first load finds an empty cache;
// the profile is on disk, as a user's is, so the second load reads a real disk cache.

import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

import { MODEL } from "../browser.js";
import { median } from "./median.js";

const USAGE = "usage: bench.js [--runs N] [--tokens N] [--prompt TEXT] [--backends cpu,gpu] [--model /models/FILE.gguf]";
function usage(message) {
  console.error(`${message}\n${USAGE}`);
  process.exit(2);
}

let options;
try {
  ({ values: options } = parseArgs({
    options: {
      runs: { type: "string", default: "3" },
      tokens: { type: "string", default: "8" },
      prompt: { type: "string", default: "Write a short story about a lighthouse keeper." },
      // Torchlight's backends to measure: its CPU backend (wasm SIMD), and WebGPU (here
      // SwiftShader, which emulates a GPU on the CPU: slow, and no guide to a real GPU).
      backends: { type: "string", default: "cpu,gpu" },
      // A GGUF the server serves (by default the SmolLM2 test model).
      model: { type: "string", default: MODEL },
    },
  }));
} catch (e) {
  usage(e.message);
}
const runs = Number(options.runs);
const backends = options.backends.split(",");
if (!backends.length || backends.some((b) => !["cpu", "gpu"].includes(b))) usage("--backends lists cpu and/or gpu");
const tokens = Number(options.tokens);
// Decode speed needs a second token.
if (!(Number.isInteger(runs) && runs >= 1 && Number.isInteger(tokens) && tokens >= 2)) {
  usage("--runs must be at least 1, --tokens at least 2");
}

const BASE_URL = process.env.TORCHLIGHT_TEST_URL;
if (!BASE_URL) usage("TORCHLIGHT_TEST_URL is not set: run pkg-scripts/bench-browser.sh");

// The browser tests' flags (browser.js), WebGPU on.
const ARGS = [
  "--no-sandbox",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--enable-unsafe-webgpu",
];
const CHROMIUM = process.env.CHROMIUM ?? execFileSync("sh", ["-c", "command -v chromium"], { encoding: "utf8" }).trim();

/** Opens the bench page in a fresh profile, runs `work(page)`, and throws the profile away. */
async function withPage(work) {
  const profile = await mkdtemp(join(tmpdir(), "torchlight-bench-"));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: ARGS });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    // Nothing here should fail: name what did (a failed module import only says "404").
    page.on("response", (r) => r.status() >= 400 && console.error(`[page] ${r.status()} ${r.url()}`));
    page.on("console", (m) => m.type() === "error" && console.error(`[page] ${m.text()}`));
    page.on("pageerror", (e) => console.error(`[page] ${e}`));
    await page.goto(`${BASE_URL}/bench/`);
    await page.waitForFunction(() => window.bench);
    return await work(page);
  } finally {
    await context.close();
    await rm(profile, { recursive: true, force: true });
  }
}

const facts = await withPage((page) => page.evaluate(() => bench.facts()));
// wasm threads share memory, which needs SharedArrayBuffer, which needs isolation.
const threadCounts = facts.crossOriginIsolated ? [1, 2] : [1];
const torchlights = backends.flatMap((backend) =>
  backend === "gpu"
    ? [{ name: "torchlight gpu", run: "torchlight", backend }]
    : threadCounts.map((threads) => ({ name: `torchlight cpu ${threads}T`, run: "torchlight", backend, threads })),
);
const wllamas = threadCounts.map((threads) => ({ name: `wllama ${threads}T`, run: "wllama", threads }));
const engines = [...torchlights, ...wllamas];

const seconds = (ms) => (ms / 1000).toFixed(2);
const results = new Map(engines.map(({ name }) => [name, []]));
// Runs take turns across engines, so a busy spell on the machine does not land on one engine.
for (let i = 1; i <= runs; i++) {
  for (const { name, run, threads, backend } of engines) {
    const args = { model: options.model, prompt: options.prompt, tokens, threads, backend };
    const r = await withPage((page) => page.evaluate(([run, args]) => bench[run](args), [run, args]));
    results.get(name).push(r);
    console.error(
      `# run ${i}/${runs} ${name}: load ${seconds(r.coldMs)} s (network), ${seconds(r.warmMs)} s (cache, ` +
        `${r.warmRequests} requests), ${r.promptTokens} prompt tokens, first token ${seconds(r.ttftMs)} s, ` +
        `${r.completionTokens} tokens at ${r.decodeTokensPerS.toFixed(2)} tokens/s: ${JSON.stringify(r.text)}`,
    );
  }
}

/** Three significant digits: 0.127 tokens/s and 29.9 s alike. */
const fmt = (x) => (x >= 100 ? x.toFixed(0) : x.toPrecision(3));

const METRICS = [
  ["load from network (s)", (r) => r.coldMs / 1000],
  ["load from cache (s)", (r) => r.warmMs / 1000],
  ["time to first token (s)", (r) => r.ttftMs / 1000],
  ["decode (tokens/s)", (r) => r.decodeTokensPerS],
];
// Each CPU engine against wllama on as many threads, and against wllama on 1 (the issue's bar);
// the GPU against each.
const pairs = torchlights.flatMap((t) =>
  wllamas.filter((w) => t.backend === "gpu" || w.threads === t.threads || w.threads === 1).map((w) => [t.name, w.name]),
);
const header = ["", ...engines.map(({ name }) => name), ...pairs.map(([t, w]) => `${t}/${w}`)];
const rows = METRICS.map(([label, value]) => {
  const medians = new Map(engines.map(({ name }) => [name, median(results.get(name).map(value))]));
  const ratios = pairs.map(([t, w]) => medians.get(t) / medians.get(w));
  return [label, ...[...medians.values()].map(fmt), ...ratios.map((r) => `${fmt(r)}x`)];
});
const widths = header.map((_, c) => Math.max(...[header, ...rows].map((row) => row[c].length)));
const line = (row) => row.map((cell, c) => (c ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join("  ");

const cpu = cpus();
const version = async (path) => JSON.parse(await readFile(new URL(path, import.meta.url))).version;
const commit = execFileSync("git", ["describe", "--always", "--dirty"], { encoding: "utf8" }).trim();
const promptTokens = engines.map(({ name }) => `${name} ${results.get(name).map((r) => r.promptTokens).join("/")}`);
const { adapter } = facts;
console.log(`machine: ${cpu.length} cores (${cpu[0].model}), load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
console.log(
  `browser: Chromium ${facts.chromium}, hardwareConcurrency ${facts.hardwareConcurrency}, ` +
    `cross-origin isolated: ${facts.crossOriginIsolated ? "yes" : "no (2 threads skipped)"}`,
);
console.log(
  `WebGPU adapter: ${adapter ? `${adapter.vendor} ${adapter.architecture}${adapter.isFallbackAdapter ? " (fallback adapter)" : ""}` : "none"}`,
);
console.log(
  `engines: torchlight ${await version("../../../pkg/package.json")} (git ${commit}, in a worker: ${backends.join(" and ")}, the CPU one on ${threadCounts.join(" and ")} thread(s)); ` +
    `@wllama/wllama ${await version("../node_modules/@wllama/wllama/package.json")} ` +
    `(llama.cpp ${facts.llamaCpp}, wasm on the CPU, in a worker)`,
);
console.log(`model: ${options.model}; prompt ${JSON.stringify(options.prompt)} as a user message through the model's chat template`);
console.log(`prompt tokens: ${promptTokens.join(", ")}; ${tokens} new tokens, greedy; medians of ${runs} run(s)`);
console.log();
console.log(line(header));
for (const row of rows) console.log(line(row));
console.log();
console.log(`caches: torchlight in IndexedDB (4 MiB chunks, SHA-256 checked); wllama in the origin private file
system (OPFS: the whole file, keyed by the SHA-1 of its URL). Loads are wall clock in the page up to a usable
engine, the engine's wasm fetched each time; time to first token is wall clock from the request to the first
streamed text; decode is each engine's own timing after the first token. A ratio above 1 is torchlight slower
for times, faster for tokens/s.`);

// Different prompt lengths make the times to first token incomparable (decode speeds still
// compare). They differ for a file without a chat template: Torchlight gives it its family's
// turns (Gemma's), llama.cpp's chat code ChatML.
const counts = new Set([...results.values()].flat().map((r) => r.promptTokens));
if (counts.size > 1) {
  console.log(`\nwarning: the engines prefilled different prompt lengths (${promptTokens.join(", ")}): the times to first token do not compare`);
}
