// A thinking model's reasoning through the package: `reasoning_content` apart from `content`,
// non-streamed and streamed, in the worker and in the page, and `enable_thinking` reaching the
// chat template. The model is the test model with a template that opens a think block in the
// prompt (browser.js, THINKING_MODEL), so its whole answer is reasoning; the native CLI's raw
// text for the same prompt says what that answer is. Both engines run on the CPU.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { THINKING_MODEL, nativeGenerate, openPage, removeThinkingModel, writeThinkingModel } from "./browser.js";

const PROMPT = "What is the capital of France?";
const MAX_TOKENS = 8;
const TIMEOUT = 5 * 60_000;

let browser, page, native;

before(async () => {
  await writeThinkingModel();
  native = nativeGenerate(PROMPT, MAX_TOKENS, "cpu", THINKING_MODEL);
  // The rules that turn it into reasoning are the splitter's unit tests' business: here the
  // answer is plain text, so all of it, trimmed, is the reasoning.
  assert.ok(!native.text.includes("think>") && native.text.trim(), JSON.stringify(native.text));
  ({ browser, page } = await openPage());
  await page.evaluate(async (model) => {
    window.engines = {
      worker: await Torchlight.load(model, { worker: true, backend: "cpu" }),
      page: await Torchlight.load(model, { worker: false, backend: "cpu" }),
    };
  }, THINKING_MODEL);
}, { timeout: TIMEOUT });

after(async () => {
  await page?.evaluate(() => Promise.all(Object.values(window.engines ?? {}).map((e) => e.unload())));
  await browser?.close();
  await removeThinkingModel();
});

/** A greedy request to `engines[where]`, with `extra` fields; streamed, the list of chunks. */
function ask(where, extra = {}) {
  return page.evaluate(
    async ([where, content, max_tokens, extra]) => {
      const reply = await engines[where].chat.completions.create({
        messages: [{ role: "user", content }],
        max_tokens,
        temperature: 0,
        ...extra,
      });
      if (!extra.stream) return reply;
      const chunks = [];
      for await (const chunk of reply) chunks.push(chunk);
      return chunks;
    },
    [where, PROMPT, MAX_TOKENS, extra],
  );
}

for (const where of ["worker", "page"]) {
  test(`in the ${where}, the think block is reasoning_content, not content`, { timeout: TIMEOUT }, async () => {
    const reply = await ask(where);
    assert.deepEqual(reply.tokens, native.tokens);
    assert.deepEqual(reply.choices[0].message, {
      role: "assistant",
      content: "",
      reasoning_content: native.text.trim(),
    });

    const chunks = await ask(where, { stream: true });
    const deltas = chunks.map((chunk) => chunk.choices[0].delta);
    assert.equal(deltas[0].role, "assistant");
    assert.ok(deltas.filter((d) => d.reasoning_content).length >= 3, JSON.stringify(deltas));
    assert.ok(deltas.every((d) => d.content === undefined), JSON.stringify(deltas));
    assert.equal(deltas.map((d) => d.reasoning_content ?? "").join(""), native.text.trim());
    assert.equal(chunks.at(-1).choices[0].finish_reason, native.finish_reason);
  });

  test(`in the ${where}, enable_thinking: false reaches the template`, { timeout: TIMEOUT }, async () => {
    const thinking = await ask(where);
    const reply = await ask(where, { enable_thinking: false });
    // No `<think>\n` in the prompt, so no reasoning: the answer is all content.
    assert.ok(reply.usage.prompt_tokens < thinking.usage.prompt_tokens, JSON.stringify([reply.usage, thinking.usage]));
    assert.ok(!("reasoning_content" in reply.choices[0].message), JSON.stringify(reply.choices[0].message));
    assert.ok(reply.choices[0].message.content.trim(), JSON.stringify(reply.choices[0].message));
  });
}
