// The benchmark page: loads a model from the catalog on the chosen backend and measures prefill
// and decode speed over a few runs, with the numbers the engine itself reports. Models load
// through the same cache as the assistant, so a cached one needs no network.

import { Torchlight } from "../pkg/index.js";

const $ = (id) => document.getElementById(id);
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/** A prompt of `n` common words, about a token each (the chat template adds its own few dozen). */
const WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "and", "runs", "home"];
const promptOf = (n) => Array.from({ length: n }, (_, i) => WORDS[i % WORDS.length]).join(" ");

async function fillModels() {
  const catalog = await (await fetch("catalog.json")).json();
  for (const { name, url } of catalog) $("bench-model").append(new Option(name, url));
}

async function describeDevice() {
  const caps = await Torchlight.probe();
  const adapter = caps.adapter ? `${caps.adapter.vendor} ${caps.adapter.architecture}${caps.adapter.isFallbackAdapter ? " (software fallback)" : ""}` : "none";
  const isolation = caps.crossOriginIsolated ? "cross-origin isolated" : "not cross-origin isolated, so the CPU runs on 1 thread";
  $("bench-device").textContent = `WebGPU adapter: ${adapter}; auto picks the ${caps.backend.toUpperCase()}; ${navigator.hardwareConcurrency} logical cores; ${isolation}.`;
  $("bench-threads").value = caps.cpuThreads;
}

async function run() {
  $("bench-run").disabled = true;
  const [url, backend, threads] = [$("bench-model").value, $("bench-backend").value, Number($("bench-threads").value)];
  const [promptTokens, tokens, runs] = ["bench-prompt", "bench-tokens", "bench-runs"].map((id) => Number($(id).value));
  const results = [];
  let engine;
  try {
    $("bench-status").textContent = "Loading…";
    const start = performance.now();
    engine = await Torchlight.load(url, { backend, threads });
    const loadS = (performance.now() - start) / 1000;
    const messages = [{ role: "user", content: promptOf(promptTokens) }];
    for (let i = 1; i <= runs; i++) {
      $("bench-status").textContent = `Run ${i} of ${runs}…`;
      // Every run prefills the whole prompt, not a cache hit on the run before.
      const request = { messages, max_tokens: tokens, temperature: 0, cache_prompt: false };
      const { usage, timings } = await engine.chat.completions.create(request);
      results.push({
        prompt: usage.prompt_tokens,
        prefill: usage.prompt_tokens / (timings.prefill_ms / 1000),
        ttft: timings.prefill_ms / 1000,
        decode: (usage.completion_tokens - 1) / (timings.decode_ms / 1000),
      });
    }
    const row = [engine.backend, engine.threads, loadS.toFixed(2), results[0].prompt, ...["prefill", "ttft", "decode"].map((k) => median(results.map((r) => r[k])).toFixed(k === "ttft" ? 2 : 1))];
    const tr = document.createElement("tr");
    for (const cell of row) tr.append(Object.assign(document.createElement("td"), { textContent: cell }));
    $("bench-table").tBodies[0].append(tr);
    $("bench-status").textContent = `Done: ${runs} run(s) of ${tokens} tokens.`;
  } catch (e) {
    $("bench-status").textContent = `Failed (${e.code ?? "error"}): ${e.message}`;
  } finally {
    await engine?.unload();
    $("bench-run").disabled = false;
  }
}

$("bench-run").addEventListener("click", run);
await Promise.all([fillModels(), describeDevice()]);
document.documentElement.dataset.ready = "true";
