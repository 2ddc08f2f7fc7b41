// The prompt cache in a conversation: four turns of chat on one engine in headless Chromium,
// each turn's time to first token with the cache (the default) and with `cache_prompt: false`
// (a whole prefill), medians over --runs. A benchmark, not a test: it prints numbers. Run by
// `pkg-scripts/bench-browser.sh --conversation`, which serves the page.

import { parseArgs } from "node:util";

import { MODEL, openPage } from "../browser.js";
import { median } from "./median.js";

const QUESTIONS = ["Tell me about lighthouses.", "Why are they painted in stripes?", "Who keeps them today?", "Write a haiku about one."];

const { values: options } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    tokens: { type: "string", default: "48" },
    backend: { type: "string", default: "cpu" },
  },
});
const [runs, tokens] = [Number(options.runs), Number(options.tokens)];

/** One conversation: per turn, its prompt tokens, those reused, and both times to first token. */
async function conversation(page) {
  return page.evaluate(
    async ([model, questions, max_tokens, backend]) => {
      const engine = await Torchlight.load(model, { backend });
      try {
        const messages = [];
        const turns = [];
        for (const content of questions) {
          messages.push({ role: "user", content });
          const ask = (extra) => engine.chat.completions.create({ messages, max_tokens, temperature: 0, ...extra });
          const cached = await ask({});
          const whole = await ask({ cache_prompt: false });
          turns.push({
            prompt: cached.usage.prompt_tokens,
            reused: cached.usage.prompt_tokens_details.cached_tokens,
            cachedMs: cached.timings.prefill_ms,
            wholeMs: whole.timings.prefill_ms,
            same: cached.tokens.join() === whole.tokens.join(),
          });
          messages.push({ role: "assistant", content: cached.choices[0].message.content });
        }
        return { turns, threads: engine.threads };
      } finally {
        await engine.unload();
      }
    },
    [MODEL, QUESTIONS, tokens, options.backend],
  );
}

const { browser, page } = await openPage({ webgpu: options.backend === "gpu" });
const results = [];
let threads;
try {
  for (let i = 0; i < runs; i++) {
    const run = await conversation(page);
    threads = run.threads;
    results.push(run.turns);
  }
} finally {
  await browser.close();
}

console.log(`${options.backend} backend, ${threads} thread(s); ${QUESTIONS.length} turns of up to ${tokens} greedy tokens; medians of ${runs} run(s)`);
console.log("turn  prompt tokens  reused  first token, cached (s)  first token, whole prefill (s)  ratio  same answer");
QUESTIONS.forEach((_, t) => {
  const turn = results.map((run) => run[t]);
  const [cached, whole] = [median(turn.map((r) => r.cachedMs)) / 1000, median(turn.map((r) => r.wholeMs)) / 1000];
  const same = turn.every((r) => r.same) ? "yes" : "NO";
  const cells = [t + 1, turn[0].prompt, turn[0].reused, cached.toFixed(2), whole.toFixed(2), `${(whole / cached).toFixed(1)}x`, same];
  const widths = [4, 13, 6, 23, 31, 5, 11];
  console.log(cells.map((c, i) => String(c).padStart(widths[i])).join("  "));
});
