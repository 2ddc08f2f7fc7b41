// Structured output's cost in headless Chromium: one engine answers the same request with and
// without a JSON schema (by default crate/tests/data/twenty_fields.schema.json), alternating,
// and prints decode tokens/s (tokens the grammar forced count as produced), time to first token
// (from the page's call to its first streamed piece of content, a whole prefill each time) and
// their ratios, medians over --runs. The first constrained
// request also builds the vocabulary's token trie: its time to first token is printed apart. A
// benchmark, not a test. Run by `pkg-scripts/bench-browser.sh --structured`, which serves the page.

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

import { MODEL, openPage } from "../browser.js";
import { median } from "./median.js";

const { values: options } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    tokens: { type: "string", default: "128" },
    backend: { type: "string", default: "cpu" },
    model: { type: "string", default: MODEL },
    schema: { type: "string", default: new URL("../../../crate/tests/data/twenty_fields.schema.json", import.meta.url).pathname },
  },
});
const [runs, tokens] = [Number(options.runs), Number(options.tokens)];
const schema = JSON.parse(readFileSync(options.schema, "utf8"));
const PROMPT = "Make up a person and describe them in detail: name, contact, address, job and hobbies.";

const { browser, page } = await openPage({ webgpu: options.backend === "gpu" });
let result;
try {
  result = await page.evaluate(
    async ([model, backend, schema, prompt, max_tokens, runs]) => {
      const engine = await Torchlight.load(model, { backend });
      const request = { messages: [{ role: "user", content: prompt }], max_tokens, temperature: 0, cache_prompt: false };
      const constrained = { ...request, response_format: { type: "json_schema", json_schema: { name: "person", schema } } };
      const measure = async (params) => {
        const start = performance.now();
        let firstAt, usage, finish, timings;
        const stream = await engine.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
        for await (const chunk of stream) {
          if (firstAt === undefined && chunk.choices[0]?.delta?.content) firstAt = performance.now();
          finish ??= chunk.choices[0]?.finish_reason ?? undefined;
          usage ??= chunk.usage ?? undefined;
          timings ??= chunk.timings ?? undefined;
        }
        return {
          tokens: usage.completion_tokens,
          ttftMs: firstAt - start,
          engineMs: timings.prefill_ms,
          decode: (usage.completion_tokens - 1) / (timings.decode_ms / 1000),
          finish,
        };
      };
      try {
        const first = await measure(constrained);
        await measure(request);
        const plain = [];
        const schemaRuns = [];
        for (let i = 0; i < runs; i++) {
          plain.push(await measure(request));
          schemaRuns.push(await measure(constrained));
        }
        return { first, plain, schemaRuns, threads: engine.threads, backend: engine.backend };
      } finally {
        await engine.unload();
      }
    },
    [options.model, options.backend, schema, PROMPT, tokens, runs],
  );
} finally {
  await browser.close();
}

const stat = (rows, key) => median(rows.map((r) => r[key]));
const [plainDecode, schemaDecode] = [stat(result.plain, "decode"), stat(result.schemaRuns, "decode")];
const [plainTtft, schemaTtft] = [stat(result.plain, "ttftMs"), stat(result.schemaRuns, "ttftMs")];
console.log(`${result.backend} backend, ${result.threads} thread(s), ${options.model}; up to ${tokens} greedy tokens; medians of ${runs} run(s)`);
console.log(`schema: ${options.schema} (${Object.keys(schema.properties ?? {}).length} properties)`);
console.log(`                  tokens  decode (tokens/s)  first token (ms)`);
const row = (label, rows, decode, ttft) => console.log(`${label.padEnd(16)}  ${String(stat(rows, "tokens")).padStart(6)}  ${decode.toFixed(1).padStart(17)}  ${ttft.toFixed(1).padStart(16)}`);
row("unconstrained", result.plain, plainDecode, plainTtft);
row("json schema", result.schemaRuns, schemaDecode, schemaTtft);
console.log(`decode ratio, schema / unconstrained: ${(schemaDecode / plainDecode).toFixed(2)}x`);
console.log(`the engine's own prefill_ms: ${stat(result.plain, "engineMs").toFixed(1)} unconstrained, ${stat(result.schemaRuns, "engineMs").toFixed(1)} with the schema (median)`);
// Each constrained run against the unconstrained one just before it, so that a machine whose
// speed drifts during the bench shifts both alike.
const paired = median(result.schemaRuns.map((r, i) => r.ttftMs - result.plain[i].ttftMs));
const signed = (ms) => `${ms >= 0 ? "+" : ""}${ms.toFixed(1)} ms`;
console.log(`time to first token, with the schema minus without: ${signed(schemaTtft - plainTtft)} (medians), ${signed(paired)} (median of the paired differences)`);
console.log(`first constrained request (builds the token trie): first token after ${result.first.ttftMs.toFixed(1)} ms`);
console.log(`finish reasons with the schema: ${[...new Set(result.schemaRuns.map((r) => r.finish))].join(", ")}`);
