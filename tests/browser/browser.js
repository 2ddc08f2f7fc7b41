// Headless Chromium with WebGPU (SwiftShader on machines without a GPU), opened on the test
// page that imports the package. The server's URL comes from pkg-scripts/test-browser.sh.

import { execFileSync, spawnSync } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const MODEL = "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
/** The test model with a chat template that thinks (see `writeThinkingModel`). */
export const THINKING_MODEL = "/models/SmolLM2-135M-Instruct.thinking-test.gguf";

/**
 * SmolLM2's turns, with a think block opened in the prompt unless `enable_thinking` is false,
 * as DeepSeek-R1's template opens one: the whole answer is then reasoning. SmolLM2 knows
 * nothing of think blocks and writes on as usual; the tests look at where its text goes.
 */
const THINKING_TEMPLATE =
  "{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}" +
  "{% if enable_thinking is not false %}{{ '<think>\\n' }}{% endif %}{% endif %}";

const BASE_URL = process.env.TORCHLIGHT_TEST_URL;
const ARGS = [
  "--no-sandbox",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

function chromiumPath() {
  return process.env.CHROMIUM ?? execFileSync("sh", ["-c", "command -v chromium"], { encoding: "utf8" }).trim();
}

/**
 * Headless Chromium with WebGPU, or, with `webgpu: false`, as it ships on Linux: `navigator.gpu`
 * is there, but it gives no adapter.
 */
export function launch({ webgpu = true } = {}) {
  if (!BASE_URL) throw new Error("TORCHLIGHT_TEST_URL is not set: run pkg-scripts/test-browser.sh");
  const args = webgpu ? [...ARGS, "--enable-unsafe-webgpu"] : ARGS;
  return chromium.launch({ executablePath: chromiumPath(), args });
}

/**
 * A browser and a page on the test page, with `Torchlight` and `TorchlightError` on `window`;
 * served from `baseUrl` (another server.js, say a cross-origin isolated one) if given.
 */
export async function openPage({ baseUrl = BASE_URL, ...options } = {}) {
  const browser = await launch(options);
  const page = await browser.newPage();
  // Failures inside the page are easier to diagnose with its console in the log (HTTP error
  // statuses are left out: the tests provoke them, and assert on them).
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) console.error(`[page] ${m.text()}`);
  });
  page.on("pageerror", (e) => console.error(`[page] ${e}`));
  await page.goto(`${baseUrl}/`);
  await page.waitForFunction(() => window.Torchlight);
  return { browser, page };
}

/**
 * The server's log of requests for model files so far (`{ method, url, range }`), or only those
 * for `url` (a path with its query, as the page asks for it).
 */
export async function modelRequests(url) {
  const log = await (await fetch(`${BASE_URL}/__log`)).json();
  return url === undefined ? log : log.filter((r) => r.url === url);
}

/** The path of a model the server serves at `url`. */
export const modelPath = (url) => fileURLToPath(new URL(`../..${url}`, import.meta.url));

/**
 * Writes THINKING_MODEL: the test model with THINKING_TEMPLATE in place of its own, padded with
 * a Jinja comment to the same length, so that nothing else in the file moves. `removeThinkingModel`
 * deletes it.
 */
export async function writeThinkingModel() {
  const file = await readFile(modelPath(MODEL));
  const key = Buffer.from("tokenizer.chat_template");
  // The key, then its value's type (8: a string) and length, then the string.
  const at = file.indexOf(key) + key.length;
  if (file.readUInt32LE(at) !== 8) throw new Error("the test model's chat template is not a string");
  const length = Number(file.readBigUInt64LE(at + 4));
  const padding = length - Buffer.byteLength(THINKING_TEMPLATE) - "{##}".length;
  if (padding < 0) throw new Error("the thinking template is longer than the test model's own");
  file.write(`${THINKING_TEMPLATE}{#${" ".repeat(padding)}#}`, at + 12, "utf8");
  await writeFile(modelPath(THINKING_MODEL), file);
}

export function removeThinkingModel() {
  return rm(modelPath(THINKING_MODEL), { force: true });
}

/**
 * The native CLI's greedy answer for a chat prompt on `backend`, as its `--json` output (its
 * `text` is the answer as written, think blocks and all); of the model at `model`, a URL the
 * server serves, by default the test model.
 */
export function nativeGenerate(prompt, maxTokens, backend, model = MODEL) {
  const cli = fileURLToPath(new URL("../../target/release/torchlight", import.meta.url));
  model = modelPath(model);
  const args = ["generate", "--model", model, "--chat", "--prompt", prompt, "--max-tokens", `${maxTokens}`, "--json", "--backend", backend];
  const run = spawnSync(cli, args, { encoding: "utf8" });
  if (run.status !== 0) throw new Error(`${cli} failed: ${run.error ?? run.stderr}`);
  // Its speed line, for comparison with the browser's.
  console.log(`# native CLI: ${run.stderr.trim()}`);
  return JSON.parse(run.stdout);
}
