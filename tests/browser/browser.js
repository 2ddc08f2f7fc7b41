// Headless Chromium with WebGPU (SwiftShader on machines without a GPU), opened on the test
// page that imports the package. The server's URL comes from pkg-scripts/test-browser.sh.

import { execFileSync, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const MODEL = "/models/SmolLM2-135M-Instruct.Q4_1.gguf";

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

/** The native CLI's greedy answer for a chat prompt on `backend`, as its `--json` output. */
export function nativeGenerate(prompt, maxTokens, backend) {
  const cli = fileURLToPath(new URL("../../target/release/torchlight", import.meta.url));
  const model = fileURLToPath(new URL(`../..${MODEL}`, import.meta.url));
  const args = ["generate", "--model", model, "--chat", "--prompt", prompt, "--max-tokens", `${maxTokens}`, "--json", "--backend", backend];
  const run = spawnSync(cli, args, { encoding: "utf8" });
  if (run.status !== 0) throw new Error(`${cli} failed: ${run.error ?? run.stderr}`);
  // Its speed line, for comparison with the browser's.
  console.log(`# native CLI: ${run.stderr.trim()}`);
  return JSON.parse(run.stdout);
}
