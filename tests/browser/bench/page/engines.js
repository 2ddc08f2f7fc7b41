// The two engines measured the same way in the page: load over the network into an empty
// cache, load again from that cache, then one streamed greedy chat request. Load times and
// the time to first token are wall clock in the page, so both include their worker round trips.

import { Torchlight } from "/pkg/index.js";
import { Wllama } from "/vendor/wllama/index.js";

const WLLAMA_WASM = { default: "/vendor/wllama/wasm/wllama.wasm" };
// Both engines get the same KV cache size (wllama's default; Torchlight's is 2048).
const CONTEXT = 1024;

/** What the page knows about the machine. */
export async function facts() {
  const probe = await Torchlight.probe();
  return {
    // The user agent string says 156.0.0.0; the full version is a high-entropy value.
    chromium: (await navigator.userAgentData.getHighEntropyValues(["fullVersionList"])).fullVersionList.find(
      ({ brand }) => brand === "Chromium",
    )?.version,
    hardwareConcurrency: navigator.hardwareConcurrency,
    crossOriginIsolated,
    adapter: probe.adapter,
    llamaCpp: Wllama.getLibllamaVersion(),
  };
}

/** How many requests for /models/ the server has seen (its `/__log`). */
async function modelRequests() {
  return (await (await fetch("/__log")).json()).length;
}

async function timed(work) {
  const start = performance.now();
  const value = await work();
  return { value, ms: performance.now() - start };
}

/** Cold load, warm load and a chat on the warm engine, with the requests the warm load made. */
async function measure({ load, unload, chat, counts }) {
  const cold = await timed(load);
  await unload(cold.value);
  const before = await modelRequests();
  const warm = await timed(load);
  const warmRequests = (await modelRequests()) - before;
  try {
    return { coldMs: cold.ms, warmMs: warm.ms, warmRequests, ...(await streamed(() => chat(warm.value), counts)) };
  } finally {
    await unload(warm.value);
  }
}

/**
 * Time to the first chunk with text, as the page sees it, and the engine's own decode speed:
 * a stream's chunks can come in bursts (wllama's are polled from its worker), which would skew
 * a wall clock over a few tokens. `counts` reads tokens and decode time from the last chunk;
 * the first token ends the prefill, so decode covers the others.
 */
async function streamed(start, counts) {
  const t0 = performance.now();
  const stream = await start();
  let first = null;
  let last = null;
  let text = "";
  for await (const chunk of stream) {
    const content = chunk.choices[0]?.delta?.content;
    if (content) {
      first ??= performance.now();
      text += content;
    }
    last = chunk;
  }
  const { promptTokens, completionTokens, decodeMs } = counts(last);
  return {
    promptTokens,
    completionTokens,
    ttftMs: first - t0,
    decodeTokensPerS: (completionTokens - 1) / (decodeMs / 1000),
    text,
  };
}

const request = (prompt, tokens) => ({
  messages: [{ role: "user", content: prompt }],
  max_tokens: tokens,
  temperature: 0,
  stream: true,
});

export function torchlight({ model, prompt, tokens, backend, threads }) {
  return measure({
    load: () => Torchlight.load(model, { contextLength: CONTEXT, backend, threads }),
    unload: (engine) => engine.unload(),
    chat: (engine) => engine.chat.completions.create(request(prompt, tokens)),
    counts: ({ usage, timings }) => ({
      promptTokens: usage.prompt_tokens,
      completionTokens: usage.completion_tokens,
      decodeMs: timings.decode_ms,
    }),
  });
}

/**
 * wllama on the CPU (llama.cpp in wasm, SIMD) with `threads` threads; more than one needs a
 * cross-origin isolated page. Its cache is the origin's private file system (OPFS): the
 * whole file is downloaded there first, then read from there.
 */
export function wllama({ model, prompt, tokens, threads }) {
  return measure({
    load: async () => {
      const engine = new Wllama(WLLAMA_WASM, { suppressNativeLog: true });
      // Its compatibility mode fetches another build from a CDN; Chromium does not need it.
      engine.setCompat(null);
      // jinja: the model's own chat template, as Torchlight renders it; no GPU layers: the CPU.
      await engine.loadModelFromUrl(model, { n_threads: threads, n_gpu_layers: 0, n_ctx: CONTEXT, jinja: true });
      if (engine.getNumThreads() !== threads) throw new Error(`wllama runs ${engine.getNumThreads()} threads, not ${threads}`);
      return engine;
    },
    unload: (engine) => engine.exit(),
    chat: (engine) => engine.createChatCompletion(request(prompt, tokens)),
    // llama-server's timings: its last chunk has no usage. `predicted_ms` runs from the first
    // token, and `predicted_n` counts that token too.
    counts: ({ timings }) => ({
      promptTokens: timings.prompt_n + timings.cache_n,
      completionTokens: timings.predicted_n,
      decodeMs: timings.predicted_ms,
    }),
  });
}
