// The npm package inside real web apps, one per bundler, each with that bundler's default
// configuration: tests/bundlers/<app>/ installs the packed tarball (`npm pack pkg/`) as a new
// user would, builds with its bundler (or runs its dev server), and is opened in headless
// Chromium, where it loads the test model and streams an answer. Each app is opened twice: on a
// cross-origin isolated page (the CPU backend on several threads, so the threaded core and its
// thread workers) and on a plain one (one thread, the plain core). A failure names the bundler.
//
// Run by pkg-scripts/test-bundlers.sh, which packs pkg/ and runs `npm ci` in each app first:
//   TORCHLIGHT_TARBALL=target/bundlers/torchlight-0.1.0.tgz node --test --test-reporter=spec tests/bundlers/test.mjs
// `TORCHLIGHT_BUNDLERS=vite,esbuild` runs only the tests whose names start with those words.

import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createRequire } from "node:module";
import { copyFileSync, cpSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { serve } from "./server.mjs";

// playwright-core, as the browser tests have it installed (pkg-scripts/setup.sh).
const { chromium } = createRequire(new URL("../browser/package.json", import.meta.url))("playwright-core");

const here = fileURLToPath(new URL(".", import.meta.url));
const TARBALL = process.env.TORCHLIGHT_TARBALL;
const ONLY = process.env.TORCHLIGHT_BUNDLERS?.split(",").filter(Boolean);
/** Most milliseconds from opening an app to its answer's end (a 98 MB download, then up to 64 tokens). */
const ANSWER_MS = 180_000;
/** Most milliseconds for a dev server or `next start` to answer its first request. */
const SERVER_MS = 60_000;

const app = (name) => `${here}${name}`;
/** Where builds that are not an app's own go. */
const SCRATCH = fileURLToPath(new URL("../../target/bundlers/", import.meta.url));

/** Runs `command` in `cwd`, with its output on failure; returns the seconds it took. */
function run(cwd, command, args, env = {}) {
  const started = performance.now();
  try {
    execFileSync(command, args, { cwd, env: { ...process.env, ...env }, encoding: "utf8", stdio: "pipe" });
  } catch (e) {
    throw new Error(`${command} ${args.join(" ")} (in ${cwd}) failed, exit status ${e.status}:\n${e.stdout}\n${e.stderr}`);
  }
  return (performance.now() - started) / 1000;
}

/** Installs the tarball into `dir` as a dependency, without touching its package.json or lock. */
function installPackage(dir) {
  run(dir, "npm", ["install", "--no-save", "--no-audit", "--no-fund", "--ignore-scripts", "--prefer-offline", TARBALL]);
}

function freePort() {
  return new Promise((done) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

/** Starts a long-running server (`args` on `command`, in `cwd`) and resolves once `url` answers; `stop()` ends it. */
async function startServer(cwd, command, args, url, env = {}) {
  const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const stop = () => {
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {
      // It has already ended.
    }
  };
  const deadline = Date.now() + SERVER_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${command} ${args.join(" ")} ended (status ${child.exitCode}):\n${output}`);
    if (await fetch(url).then((r) => r.ok, () => false)) return { stop, output: () => output };
    await new Promise((r) => setTimeout(r, 250));
  }
  stop();
  throw new Error(`${command} ${args.join(" ")} did not answer ${url} within ${SERVER_MS / 1000} s:\n${output}`);
}

let browser;
before(async () => {
  assert.ok(TARBALL, "TORCHLIGHT_TARBALL is not set: run pkg-scripts/test-bundlers.sh");
  const executablePath = process.env.CHROMIUM ?? execFileSync("sh", ["-c", "command -v chromium"], { encoding: "utf8" }).trim();
  browser = await chromium.launch({ executablePath, args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--no-first-run"] });
});
after(() => browser?.close());

/**
 * Opens `url` in a fresh context and waits for the app's `#status` to say "done" or "failed: ...".
 * Returns what it shows, how many times `#answer` changed (a streamed answer changes with every
 * chunk), the workers the page started and the page's errors.
 */
async function openApp(url) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  const workers = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("worker", (w) => workers.push(w.url()));
  await page.addInitScript(() => {
    window.__answerUpdates = 0;
    let last = "";
    new MutationObserver(() => {
      const text = document.querySelector("#answer")?.textContent ?? "";
      if (text !== last) [last, window.__answerUpdates] = [text, window.__answerUpdates + 1];
    }).observe(document, { subtree: true, childList: true, characterData: true });
  });
  const started = performance.now();
  try {
    await page.goto(url);
    await page.waitForFunction(() => /^(done|failed)/.test(document.querySelector("#status")?.textContent ?? ""), null, { timeout: ANSWER_MS, polling: 250 });
    const seen = await page.evaluate(() => ({
      status: document.querySelector("#status").textContent,
      answer: document.querySelector("#answer")?.textContent ?? "",
      updates: window.__answerUpdates,
      isolated: crossOriginIsolated,
    }));
    return { ...seen, workers, errors, seconds: (performance.now() - started) / 1000 };
  } catch (e) {
    const status = await page.evaluate(() => document.querySelector("#status")?.textContent).catch(() => "");
    throw new Error(`${url}: ${e.message}; #status shows ${JSON.stringify(status)}; page errors: ${errors.join(" | ") || "none"}`);
  } finally {
    await context.close();
  }
}

/**
 * Opens the app served from `root` or `upstream` (as `path`) isolated and not, and checks that
 * each streams an answer; `cdn` also serves a copy of the package at /cdn/torchlight/.
 */
async function answers(t, name, { root, upstream, cdn, path = "/" }) {
  for (const isolated of [true, false]) {
    const server = await serve({ root, upstream, cdn, isolated });
    try {
      const target = typeof path === "function" ? path(server) : path;
      const seen = await openApp(`${server.url}${target}`);
      const mode = isolated ? "cross-origin isolated" : "not isolated";
      assert.equal(seen.status, "done", `${name} (${mode}): the app says ${JSON.stringify(seen.status)}; page errors: ${seen.errors.join(" | ") || "none"}`);
      assert.ok(seen.answer.trim().length > 0, `${name} (${mode}): the answer is empty`);
      assert.ok(seen.updates >= 2, `${name} (${mode}): the answer came in ${seen.updates} piece(s), not streamed`);
      assert.equal(seen.isolated, isolated, `${name}: the page is${seen.isolated ? "" : " not"} cross-origin isolated`);
      const workers = seen.workers.map((w) => w.replace(server.url, "").replace(/^blob:.*/, "blob:").replace(/#.*/, "")).join(", ");
      t.diagnostic(`${name} (${mode}): answered in ${seen.seconds.toFixed(1)} s, ${seen.updates} updates: ${JSON.stringify(seen.answer.slice(0, 60))}; workers: ${workers || "none seen"}`);
    } finally {
      server.close();
    }
  }
}

test("the READMEs' first example for web developers is the Vite app's index.html and main.js", () => {
  const html = readFileSync(app("vite/index.html"), "utf8");
  const js = readFileSync(app("vite/main.js"), "utf8");
  // Its first html and js blocks: in README.md, those after the package's heading.
  const readmes = [
    ["README.md", (text) => text.slice(text.indexOf("## In the browser: the npm package"))],
    ["pkg-scripts/js/README.md", (text) => text],
  ];
  for (const [readme, from] of readmes) {
    const text = from(readFileSync(`${here}../../${readme}`, "utf8"));
    const block = (lang) => new RegExp("```" + lang + "\n(?:<!-- index\\.html -->\n|// main\\.js\n)?([\\s\\S]*?)```").exec(text)?.[1];
    assert.equal(block("html"), html, `${readme}: its first html example is not tests/bundlers/vite/index.html`);
    assert.equal(block("js"), js, `${readme}: its first js example is not tests/bundlers/vite/main.js`);
  }
});

/** A test named `name`, skipped when TORCHLIGHT_BUNDLERS names others. */
function appTest(name, body) {
  const skip = ONLY && !ONLY.some((only) => name.startsWith(only)) ? "not in TORCHLIGHT_BUNDLERS" : false;
  test(name, { skip }, body);
}

// The Vite app (tests/bundlers/vite/) with the Vite its package.json pins, and with Vite 6
// (tests/bundlers/vite6/), whose default worker format, IIFE, once failed on the package's worker;
// its dev server (as Vite 7's) pre-bundles dependencies with esbuild, and is given the one setting
// the README says it needs (vite6/vite.config.js).
const VITES = [
  ["vite", "Vite 8", []],
  ["vite6", "Vite 6", ["--config", "vite.config.js"]],
];
for (const [dir, vite, devArgs] of VITES) {
  appTest(`vite build (${vite}, its default configuration)`, async (t) => {
    installPackage(app("vite"));
    t.diagnostic(`vite build (${vite}): ${run(app(dir), "npm", ["run", "build"]).toFixed(1)} s`);
    await answers(t, `vite build (${vite})`, { root: app(`${dir}/dist`) });
  });

  appTest(`vite dev server (${vite})`, async (t) => {
    installPackage(app("vite"));
    const port = await freePort();
    const upstream = `http://127.0.0.1:${port}`;
    const args = ["vite", "../vite", ...devArgs, "--force", "--port", `${port}`, "--strictPort", "--host", "127.0.0.1"];
    const server = await startServer(app(dir), "npx", args, upstream);
    try {
      await answers(t, `vite dev server (${vite})`, { upstream });
    } finally {
      server.stop();
    }
  });
}

/** `next build` with `args`, then `next start` behind the test server. */
async function nextApp(t, name, args) {
  installPackage(app("next"));
  rmSync(app("next/.next"), { recursive: true, force: true });
  const env = { NEXT_TELEMETRY_DISABLED: "1" };
  t.diagnostic(`${name}: ${run(app("next"), "npx", ["next", "build", ...args], env).toFixed(1)} s`);
  const port = await freePort();
  const upstream = `http://127.0.0.1:${port}`;
  const next = await startServer(app("next"), "npx", ["next", "start", "--port", `${port}`, "--hostname", "127.0.0.1"], upstream, env);
  try {
    await answers(t, name, { upstream });
  } finally {
    next.stop();
  }
}

appTest("next build (Next.js's default: Turbopack)", (t) => nextApp(t, "next build", []));
appTest("next build --webpack (webpack 5)", (t) => nextApp(t, "next build --webpack", ["--webpack"]));

appTest("esbuild", async (t) => {
  installPackage(app("esbuild"));
  t.diagnostic(`esbuild (npm run build): ${run(app("esbuild"), "npm", ["run", "build"]).toFixed(1)} s`);
  await answers(t, "esbuild", { root: app("esbuild/dist") });
});

appTest("unbundled: a module script importing the package from the same static host", async (t) => {
  installPackage(app("unbundled"));
  await answers(t, "unbundled", { root: app("unbundled") });
});

appTest("unbundled: a module script importing the package from another origin (a CDN-style URL)", async (t) => {
  // The package at a second origin: "localhost" is not "127.0.0.1".
  const cdn = `${here}unbundled/node_modules/torchlight`;
  installPackage(app("unbundled"));
  const path = ({ port }) => `/cdn.html?cdn=${encodeURIComponent(`http://localhost:${port}/cdn/torchlight/`)}`;
  await answers(t, "unbundled from a CDN", { root: app("unbundled"), cdn, path });
});

/** Opens the app served from `root` or `upstream` (not isolated) and checks that its load fails with a message matching `expected`. */
async function failsWith(t, name, { root, upstream }, expected) {
  const server = await serve({ root, upstream });
  try {
    const seen = await openApp(`${server.url}/`);
    assert.match(seen.status, expected, `${name}: the app says ${JSON.stringify(seen.status)}`);
    t.diagnostic(`${name}: ${seen.status}`);
  } finally {
    server.close();
  }
}

appTest("missing files: a load fails naming the file and the fix (esbuild without its copy of the package, Vite 6's dev server without its setting)", async (t) => {
  installPackage(app("esbuild"));
  const dist = `${SCRATCH}esbuild-missing`;
  rmSync(dist, { recursive: true, force: true });
  run(app("esbuild"), "npx", ["esbuild", "main.js", "--bundle", "--format=esm", `--outdir=${dist}`]);
  copyFileSync(app("esbuild/index.html"), `${dist}/index.html`);
  const fix = /; with esbuild, copy node_modules\/torchlight\/ to a folder the app serves and set Torchlight\.assetsUrl/;
  const worker = /^failed: the engine's worker script did not load from http:\/\/[^ ]+\/torchlight\/worker\.js: HTTP 404/;
  await failsWith(t, "esbuild without the copy", { root: dist }, new RegExp(worker.source + ".*" + fix.source));
  cpSync(app("esbuild/node_modules/torchlight"), `${dist}/torchlight`, { recursive: true });
  rmSync(`${dist}/torchlight/torchlight_core_bg.wasm`);
  const wasm = /^failed: the wasm core did not load from http:\/\/[^ ]+\/torchlight\/torchlight_core_bg\.wasm: HTTP 404/;
  await failsWith(t, "esbuild without the wasm", { root: dist }, new RegExp(wasm.source + ".*" + fix.source));

  installPackage(app("vite"));
  const port = await freePort();
  const upstream = `http://127.0.0.1:${port}`;
  const vite = await startServer(app("vite6"), "npx", ["vite", "../vite", "--force", "--port", `${port}`, "--strictPort", "--host", "127.0.0.1"], upstream);
  try {
    const prebundled = /^failed: the engine's worker script did not load from [^ ]+\/node_modules\/\.vite\/deps\/worker\.js: HTTP 404; .*add optimizeDeps: \{ exclude: \["torchlight"\] \} to vite\.config\.js/;
    await failsWith(t, "Vite 6's dev server without optimizeDeps.exclude", { upstream }, prebundled);
  } finally {
    vite.stop();
  }
});
