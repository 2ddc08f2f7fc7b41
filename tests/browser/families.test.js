// Every architecture in the browser: tiny random-weight models of each family (written by
// tests/golden/families.py, checked against llama.cpp by crate/tests/families.rs), and the real
// Gemma 3 270M (checked against llama.cpp by crate/tests/llamacpp_agreement.rs), give the native
// CLI's greedy tokens through the npm package, on the GPU (SwiftShader here) and on the CPU
// (wasm SIMD), each family through its own chat format (Gemma's built in: its file has none).

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { nativeGenerate, openPage } from "./browser.js";

const TINY = ["llama3-q4_k_m", "qwen2-q5_0", "qwen3-q8_0", "gemma3-q4_k_m", "phi3-q5_0"].map((name) => ({
  name,
  url: `/target/families/${name}.gguf`,
  maxTokens: { gpu: 8, cpu: 8 },
}));
// SwiftShader decodes Gemma 3 270M (18 layers, 262,144 logits a token) at about 0.1 tokens/s.
const GEMMA = { name: "Gemma 3 270M", url: "/models/gemma-3-270m-q4_k_m.gguf", maxTokens: { gpu: 3, cpu: 8 } };
const PROMPT = "Name three rivers.";

let browser, page;

before(async () => {
  ({ browser, page } = await openPage());
});

after(async () => {
  await browser?.close();
});

for (const backend of ["gpu", "cpu"]) {
  for (const { name, url, maxTokens } of [...TINY, GEMMA]) {
    test(`${name} on the ${backend} in the browser gives the native CLI's greedy tokens`, { timeout: 300_000 }, async () => {
      const native = nativeGenerate(PROMPT, maxTokens[backend], backend, url);
      assert.ok(native.tokens.length > 0, "the native CLI answered nothing");
      const reply = await page.evaluate(
        async ([url, backend, content, max_tokens]) => {
          const engine = await Torchlight.load(url, { backend });
          try {
            return await engine.chat.completions.create({ messages: [{ role: "user", content }], max_tokens, temperature: 0 });
          } finally {
            await engine.unload();
          }
        },
        [url, backend, PROMPT, maxTokens[backend]],
      );
      assert.deepEqual(reply.route, { used: "local", backend });
      assert.equal(reply.tokens.length, native.tokens.length, "an answer of the same length");
      assert.deepEqual(reply.tokens, native.tokens);
    });
  }
}
