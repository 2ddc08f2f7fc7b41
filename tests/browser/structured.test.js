// Structured output through the package, in its worker: every answer to the schema corpus that
// the Rust tests use (crate/tests/data/schemas/) parses and validates with an independent
// validator (ajv, formats included), on the CPU backend at temperature 0 and 1 and on WebGPU
// (SwiftShader) for a few; grammars and regexes constrain the text; bad input is refused with
// `invalid_request` naming the problem; the request-shape gaps (content parts, unknown fields,
// `n`, raw-text completions, `stream_options`) behave as OpenAI's API does.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { fastFormats } from "ajv-formats/dist/formats.js";

import { MODEL, modelPath, openPage } from "./browser.js";

const SCHEMAS = fileURLToPath(new URL("../../crate/tests/data/schemas/", import.meta.url));
const CORPUS = readdirSync(SCHEMAS)
  .filter((name) => name.endsWith(".json"))
  .sort()
  .map((name) => ({ name: name.replace(/\.json$/, ""), ...JSON.parse(readFileSync(SCHEMAS + name, "utf8")) }));
/** Enough for every answer of the corpus (as in crate/tests/structured_output.rs). */
const MAX_TOKENS = 400;
const TIMEOUT = 1_200_000;

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
// ajv-formats' full-mode `email` wants a dot in the domain and its `uri` an authority or a
// path, both stricter than RFC 5321's Mailbox and RFC 3986's URI, which JSON Schema cites and
// llguidance (and the Rust `jsonschema` crate of the native tests) follow: `a@localhost` and
// `urn:` are valid. ajv-formats' own RFC-level ("fast") definitions check those two.
ajv.addFormat("email", fastFormats.email);
ajv.addFormat("uri", fastFormats.uri);

/** Why `text` is not a valid answer to `schema`, or null when it is. */
function invalidity(text, schema) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return `does not parse: ${e.message}`;
  }
  const validate = ajv.compile(schema);
  return validate(value) ? null : ajv.errorsText(validate.errors);
}

/** Asks `engine` (a global in the page) each case at `temperature`, seed 7; gives the answers. */
function answerAll(page, engine, cases, temperature) {
  return page.evaluate(
    async ([engine, cases, temperature, max_tokens]) => {
      const answers = [];
      for (const { name, prompt, schema } of cases) {
        const reply = await window[engine].chat.completions.create({
          messages: [{ role: "user", content: prompt }],
          response_format: { type: "json_schema", json_schema: { name, schema, strict: true } },
          max_tokens,
          temperature,
          seed: 7,
        });
        answers.push({ name, text: reply.choices[0].message.content, finish: reply.choices[0].finish_reason, usage: reply.usage, timings: reply.timings });
      }
      return answers;
    },
    [engine, cases, temperature, MAX_TOKENS],
  );
}

/** Checks every answer, and prints the tally the closing note quotes. */
function check(label, cases, answers) {
  const failures = [];
  let tokens = 0;
  for (const [i, answer] of answers.entries()) {
    tokens += answer.usage.completion_tokens;
    const problem = answer.finish !== "stop" ? `finished with ${answer.finish}` : invalidity(answer.text, cases[i].schema);
    if (problem) failures.push(`${answer.name}: ${problem}: ${answer.text}`);
  }
  console.log(`# ${label}: ${answers.length - failures.length}/${answers.length} answers validate (${tokens} tokens)`);
  assert.deepEqual(failures, []);
}

const caught = (e) => ({ code: e.code, message: e.message });

describe("on the CPU backend, in the worker", () => {
  let browser, page;

  before(async () => {
    ({ browser, page } = await openPage({ webgpu: false }));
    await page.evaluate(async (model) => {
      window.engine = await Torchlight.load(model, { backend: "cpu" });
    }, MODEL);
  });

  after(async () => {
    await browser?.close();
  });

  test("every schema of the corpus, at temperature 0, gives JSON that validates", { timeout: TIMEOUT }, async () => {
    check("cpu, temperature 0", CORPUS, await answerAll(page, "engine", CORPUS, 0));
  });

  test("every schema of the corpus, at temperature 1 with a seed, gives JSON that validates", { timeout: TIMEOUT }, async () => {
    check("cpu, temperature 1", CORPUS, await answerAll(page, "engine", CORPUS, 1));
  });

  test("a streamed constrained answer joins to the non-streamed one, and an abort stops it", { timeout: TIMEOUT }, async () => {
    const { name, prompt, schema } = CORPUS.find((c) => c.name === "invoice");
    const result = await page.evaluate(
      async ([name, prompt, schema]) => {
        const request = {
          messages: [{ role: "user", content: prompt }],
          response_format: { type: "json_schema", json_schema: { name, schema } },
          max_tokens: 400,
          temperature: 0,
        };
        const whole = await engine.chat.completions.create(request);
        const stream = await engine.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
        const chunks = [];
        for await (const chunk of stream) chunks.push(chunk);

        const controller = new AbortController();
        const aborted = await engine.chat.completions.create({ ...request, stream: true, signal: controller.signal });
        let pieces = 0;
        let code = null;
        try {
          for await (const chunk of aborted) if (chunk.choices[0]?.delta.content && ++pieces === 3) controller.abort();
        } catch (e) {
          code = e.code;
        }
        return { whole: whole.choices[0].message.content, usage: whole.usage, chunks, pieces, code };
      },
      [name, prompt, schema],
    );
    const text = result.chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
    assert.equal(text, result.whole);
    assert.equal(invalidity(text, schema), null);
    // With `include_usage`, OpenAI's last chunk: no choices, the usage.
    const [finish, usage] = result.chunks.slice(-2);
    assert.equal(finish.choices[0].finish_reason, "stop");
    assert.deepEqual(usage.choices, []);
    // The streamed request found the whole prompt cached: only the counts of tokens agree.
    assert.equal(usage.usage.prompt_tokens, result.usage.prompt_tokens);
    assert.equal(usage.usage.completion_tokens, result.usage.completion_tokens);
    assert.equal(result.code, "aborted");
    // A step may add a run of forced tokens, each its own chunk, and chunks already on their way
    // from the worker still arrive: the stop is within a step or two, far before the end.
    const whole = result.chunks.filter((c) => c.choices[0]?.delta.content).length;
    assert.ok(result.pieces >= 3 && result.pieces < whole / 2, `${result.pieces} pieces before the stop, of ${whole}`);
  });

  test("json_object, a Lark grammar and a regex constrain the answer", { timeout: TIMEOUT }, async () => {
    const answers = await page.evaluate(async () => {
      const ask = async (extra, content) =>
        (await engine.chat.completions.create({ messages: [{ role: "user", content }], max_tokens: 120, temperature: 0, ...extra })).choices[0];
      return {
        object: await ask({ response_format: { type: "json_object" } }, "Describe a cat as JSON."),
        grammar: await ask({ grammar: 'start: "The answer is " ANSWER "."\nANSWER: "yes" | "no"' }, "Is the sky blue?"),
        regex: await ask({ regex: "[0-9]{3}-[0-9]{4}" }, "Make up a phone number."),
      };
    });
    assert.equal(typeof JSON.parse(answers.object.message.content), "object");
    assert.ok(!Array.isArray(JSON.parse(answers.object.message.content)));
    assert.match(answers.grammar.message.content, /^The answer is (yes|no)\.$/);
    assert.match(answers.regex.message.content, /^[0-9]{3}-[0-9]{4}$/);
    assert.ok([answers.object, answers.grammar, answers.regex].every((a) => a.finish_reason === "stop"));
  });

  test("an answer cut short by max_tokens ends with finish_reason length", { timeout: TIMEOUT }, async () => {
    const reply = await page.evaluate(async () => {
      const schema = { type: "object", properties: { story: { type: "string", minLength: 200 } }, required: ["story"] };
      const request = { messages: [{ role: "user", content: "Tell a story." }], max_tokens: 10, temperature: 0 };
      return (await engine.chat.completions.create({ ...request, response_format: { type: "json_schema", json_schema: { name: "s", schema } } })).choices[0];
    });
    assert.equal(reply.finish_reason, "length");
    assert.throws(() => JSON.parse(reply.message.content));
  });

  test("a bad schema, grammar or regex, or two at once, is refused with invalid_request naming the problem", { timeout: TIMEOUT }, async () => {
    const errors = await page.evaluate(async () => {
      const messages = [{ role: "user", content: "Hi" }];
      const fail = (extra) =>
        engine.chat.completions.create({ messages, max_tokens: 4, ...extra }).then(
          () => null,
          (e) => ({ code: e.code, message: e.message }),
        );
      const schema = (s) => ({ response_format: { type: "json_schema", json_schema: { name: "s", schema: s } } });
      return {
        keyword: await fail(schema({ type: "object", if: { required: ["a"] }, then: { required: ["b"] } })),
        format: await fail(schema({ type: "string", format: "not-a-format" })),
        grammar: await fail({ grammar: "start: foo\nfoo: bar" }),
        regex: await fail({ regex: "a(b" }),
        both: await fail({ grammar: 'start: "a"', regex: "a" }),
        type: await fail({ response_format: { type: "xml" } }),
      };
    });
    for (const [what, error] of Object.entries(errors)) assert.equal(error?.code, "invalid_request", `${what}: ${JSON.stringify(error)}`);
    assert.match(errors.keyword.message, /\bif\b/);
    assert.match(errors.format.message, /not-a-format/);
    assert.match(errors.grammar.message, /line 2, column \d+/);
    assert.match(errors.regex.message, /regex/);
    assert.match(errors.both.message, /`grammar` and `regex`/);
    assert.match(errors.type.message, /xml/);
  });

  test("content as text parts is accepted; image parts, n > 1 and unknown fields are refused, naming them", { timeout: TIMEOUT }, async () => {
    const result = await page.evaluate(async () => {
      const ask = (params) => engine.chat.completions.create({ max_tokens: 6, temperature: 0, ...params });
      const fail = (params) => ask(params).then(() => null, (e) => ({ code: e.code, message: e.message }));
      const parts = await ask({ messages: [{ role: "user", content: [{ type: "text", text: "What is the capital " }, { type: "text", text: "of France?" }] }] });
      const plain = await ask({ messages: [{ role: "user", content: "What is the capital of France?" }] });
      const image = { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } };
      return {
        parts: parts.tokens,
        plain: plain.tokens,
        image: await fail({ messages: [{ role: "user", content: [{ type: "text", text: "What is this?" }, image] }] }),
        n: await fail({ messages: [{ role: "user", content: "Hi" }], n: 2 }),
        unknown: await fail({ messages: [{ role: "user", content: "Hi" }], modalities: ["audio"] }),
        sdkFields: (await ask({ messages: [{ role: "user", content: "Hi" }], model: "gpt-4o", n: 1, user: "u1" })).choices[0].finish_reason,
      };
    });
    assert.deepEqual(result.parts, result.plain);
    assert.equal(result.image.code, "invalid_request");
    assert.match(result.image.message, /image_url/);
    assert.equal(result.n.code, "invalid_request");
    assert.match(result.n.message, /`n`/);
    assert.equal(result.unknown.code, "invalid_request");
    assert.match(result.unknown.message, /`modalities`/);
    assert.equal(result.sdkFields, "length");
  });

  test("completions.create continues a raw prompt with no chat template, as the native CLI does", { timeout: TIMEOUT }, async () => {
    const prompt = "The capital of France is";
    const cli = fileURLToPath(new URL("../../target/release/torchlight", import.meta.url));
    const args = ["generate", "--model", modelPath(MODEL), "--prompt", prompt, "--max-tokens", "8", "--json", "--backend", "cpu"];
    const run = spawnSync(cli, args, { encoding: "utf8" });
    assert.equal(run.status, 0, run.stderr);
    const native = JSON.parse(run.stdout);
    const result = await page.evaluate(async (prompt) => {
      const whole = await engine.completions.create({ prompt, max_tokens: 8, temperature: 0 });
      const stream = await engine.completions.create({ prompt, max_tokens: 8, temperature: 0, stream: true });
      let text = "";
      let objects = new Set();
      for await (const chunk of stream) {
        objects.add(chunk.object);
        text += chunk.choices[0]?.text ?? "";
      }
      const chatOnly = await engine.completions.create({ prompt, tools: [] }).catch((e) => e.code);
      return { whole, text, objects: [...objects], chatOnly };
    }, prompt);
    assert.equal(result.whole.object, "text_completion");
    assert.deepEqual(result.whole.tokens, native.tokens);
    assert.equal(result.whole.choices[0].text, native.text);
    assert.equal(result.text, native.text);
    assert.deepEqual(result.objects, ["text_completion"]);
    assert.equal(result.chatOnly, "invalid_request");
  });
});

describe("on WebGPU (SwiftShader)", () => {
  let browser, page;
  // SwiftShader decodes a fraction of a token a second: two schemas with short answers.
  const FEW = CORPUS.filter((c) => ["sentiment", "color_enum"].includes(c.name));

  before(async () => {
    ({ browser, page } = await openPage());
    await page.evaluate(async (model) => {
      window.gpuEngine = await Torchlight.load(model, { backend: "gpu" });
    }, MODEL);
  });

  after(async () => {
    await browser?.close();
  });

  test("schemas of the corpus give JSON that validates, at temperature 0 and 1", { timeout: TIMEOUT }, async () => {
    assert.equal(await page.evaluate(() => gpuEngine.backend), "gpu");
    check("gpu, temperature 0", FEW, await answerAll(page, "gpuEngine", FEW, 0));
    check("gpu, temperature 1", FEW, await answerAll(page, "gpuEngine", FEW, 1));
  });
});
