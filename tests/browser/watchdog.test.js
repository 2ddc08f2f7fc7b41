// A core that stops answering, or traps, is the page's to end: the engine's worker is ended
// once it has been silent for `watchdogMs` (code `unresponsive`), or at once when its core
// traps, with the core's own account (`does_not_fit` for memory wasm could not give, `internal`
// naming a panic). Throughout, the page stays responsive; afterwards the engine fails every
// request the same way, and a new load works. A long CPU prefill step, silent but busy, is not
// taken for a hang, nor is time the page itself was held up (a frozen tab).
//
// The hang and the traps come from outside, through Chromium's DevTools protocol (Playwright's
// `Worker.evaluate`), not through any door in the package: a loop holds the worker's thread as
// a hang in wasm would; an allocation larger than wasm memory, made through the core's own
// allocator, traps as a core that has run out of memory does; and `threadFailed`, which a CPU
// thread that trapped calls, makes the core panic.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Watchdog } from "../../pkg-scripts/js/watchdog.js";
import { MODEL, openPage } from "./browser.js";
import { serve } from "./server.js";

/** The tests' watchdog: short, and still 3 times the longest silence of a working engine (its heartbeat comes every second). */
const WATCHDOG_MS = 3000;
/** How much later than WATCHDOG_MS of silence the engine may be ended: the page looks every WATCHDOG_MS / 4. */
const SLACK_MS = 1500;
/** The longest the page's own timers may be held up while the worker hangs or dies. */
const PAGE_GAP_MS = 500;

/** No test here takes a minute: one that does has hung (a failure the watchdog was to prevent). */
const TIMEOUT = { timeout: 60_000 };

const MESSAGES = [{ role: "user", content: "Count from 1 to 100, one number per line." }];

let browser, page;

before(async () => {
  ({ browser, page } = await openPage());
});

after(async () => {
  await browser?.close();
});

/** The worker the engine loaded now runs in. */
function engineWorker() {
  const workers = page.workers().filter((w) => w.url().endsWith("/pkg/worker.js"));
  assert.equal(workers.length, 1, "exactly one engine worker runs");
  return workers[0];
}

/** Resolves once Playwright has seen every worker of the page end. */
async function workersEnded() {
  for (let waited = 0; page.workers().length > 0; waited += 50) {
    assert.ok(waited < 2000, "the engine's worker was not ended");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Holds `worker`'s thread for ever from its next task, as a core looping in wasm would. (A
 * loop in the DevTools evaluation itself would outlive `terminate()`: Chromium does not end it.)
 */
function hang(worker) {
  return worker.evaluate(() => {
    setTimeout(() => {
      for (;;);
    });
  });
}

/** An allocation larger than wasm memory holds (2 GiB at a time: the first may still fit). */
const HUGE = 2 ** 31 - 2 ** 16;

/**
 * Ways to make the core in `worker` trap on HUGE, through its own allocator: in a task of its
 * own, as the core's async calls run (the trap is thrown where nothing awaits it), or inside
 * the request's own call into the core (its callback for the next token).
 */
const TRAPS = {
  "in a task of its own": (worker) =>
    worker.evaluate(
      async ([glue, huge]) => {
        // The glue module the worker imported: its exports are the worker's instance.
        const wasm = await (await import(glue)).default();
        setTimeout(() => {
          for (;;) wasm.__wbindgen_malloc(huge, 1);
        });
      },
      [new URL("torchlight_core.js", worker.url()).href, HUGE],
    ),
  "inside the request's call": (worker) =>
    worker.evaluate(
      async ([glue, huge]) => {
        const wasm = await (await import(glue)).default();
        const post = self.postMessage.bind(self);
        self.postMessage = (message) => {
          if (message.type === "delta") for (;;) wasm.__wbindgen_malloc(huge, 1);
          post(message);
        };
      },
      [new URL("torchlight_core.js", worker.url()).href, HUGE],
    ),
};

/**
 * Runs `body` (a page function's source, awaited with `engine` in scope) while a timer ticks on
 * the page every 50 ms: resolves to `{ code, message, isTorchlightError, ms, longestGap }`, what
 * it threw and after how long, and the longest the timer was held up.
 */
function failureOf(body) {
  return page.evaluate(async (body) => {
    let last = performance.now();
    let longestGap = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      longestGap = Math.max(longestGap, now - last - 50);
      last = now;
    }, 50);
    const start = performance.now();
    try {
      await new Function("engine", `return (async () => { ${body} })()`)(window.engine);
      return { code: null, ms: performance.now() - start, longestGap };
    } catch (e) {
      const ms = performance.now() - start;
      return { code: e.code, message: e.message, isTorchlightError: e instanceof TorchlightError, ms, longestGap };
    } finally {
      clearInterval(timer);
    }
  }, body);
}

/** Loads the model into `window.engine` with WATCHDOG_MS and `options`. */
function load(options = {}) {
  return page.evaluate(
    async ([model, options]) => {
      window.engine = await Torchlight.load(model, { contextLength: 512, ...options });
      return { backend: engine.backend };
    },
    [MODEL, { watchdogMs: WATCHDOG_MS, ...options }],
  );
}

/** Starts a long streamed answer in `window.answer` and waits for its first chunk. */
function startAnswer() {
  return page.evaluate(async (messages) => {
    const stream = await engine.chat.completions.create({ messages, max_tokens: 400, temperature: 0, stream: true });
    window.answer = stream[Symbol.asyncIterator]();
    await answer.next();
  }, MESSAGES);
}

/** What a request on `window.engine` fails with now (null: it was answered), then unloads it. */
function laterRequestAndUnload() {
  return page.evaluate(async (messages) => {
    const code = await engine.chat.completions.create({ messages, max_tokens: 1 }).then(() => null, (e) => e.code);
    await engine.unload();
    return code;
  }, MESSAGES);
}

/** Loads the model anew and answers one greedy request: the page recovered. */
async function assertNewLoadAnswers() {
  const reply = await page.evaluate(async ([model, messages]) => {
    const engine = await Torchlight.load(model, { contextLength: 512 });
    try {
      const reply = await engine.chat.completions.create({ messages, max_tokens: 4, temperature: 0 });
      return { content: reply.choices[0].message.content, tokens: reply.usage.completion_tokens };
    } finally {
      await engine.unload();
    }
  }, [MODEL, MESSAGES]);
  assert.equal(reply.tokens, 4);
  assert.ok(reply.content.length > 0);
}

test("a worker that stops answering mid-answer is ended after watchdogMs: code unresponsive", TIMEOUT, async () => {
  await load();
  await startAnswer();
  await hang(engineWorker());
  const failure = await failureOf("for (;;) if ((await answer.next()).done) return;");
  assert.equal(failure.code, "unresponsive", failure.message);
  assert.ok(failure.isTorchlightError);
  assert.match(failure.message, /no sign of life for 3 s/);
  assert.ok(failure.ms > WATCHDOG_MS - SLACK_MS && failure.ms < WATCHDOG_MS + SLACK_MS, `ended after ${failure.ms} ms`);
  assert.ok(failure.longestGap < PAGE_GAP_MS, `the page's timer was held up ${failure.longestGap} ms`);
  await workersEnded();
  assert.equal(await laterRequestAndUnload(), "unresponsive");
  await assertNewLoadAnswers();
});

test("a load whose worker stops answering is ended after watchdogMs: code unresponsive", TIMEOUT, async () => {
  const started = page.waitForEvent("worker");
  const loading = failureOf(`window.engine = await Torchlight.load(${JSON.stringify(MODEL)}, { watchdogMs: ${WATCHDOG_MS} });`);
  const worker = await started;
  // Once its script has run (fetching it is no hang), whether or not the load has begun.
  await worker.evaluate(() => new Promise((resolve) => (function check() { self.onmessage ? resolve() : setTimeout(check, 1); })()));
  await hang(worker);
  const failure = await loading;
  assert.equal(failure.code, "unresponsive", failure.message);
  assert.ok(failure.ms < WATCHDOG_MS + SLACK_MS + 1000, `ended after ${failure.ms} ms`);
  assert.ok(failure.longestGap < PAGE_GAP_MS, `the page's timer was held up ${failure.longestGap} ms`);
  await workersEnded();
  await assertNewLoadAnswers();
});

for (const [where, trap] of Object.entries(TRAPS)) {
  test(`a core that runs out of memory ${where} fails the answer with code does_not_fit, at once`, TIMEOUT, async () => {
    await load({ watchdogMs: 0 });
    await startAnswer();
    await trap(engineWorker());
    const failure = await failureOf("for (;;) if ((await answer.next()).done) return;");
    assert.equal(failure.code, "does_not_fit", failure.message);
    assert.ok(failure.isTorchlightError);
    assert.match(failure.message, new RegExp(`ran out of wasm memory \\(an allocation of ${HUGE} bytes failed\\)`));
    // With the watchdog off, only the core's report of its trap can have ended it.
    assert.ok(failure.ms < 2000, `ended after ${failure.ms} ms`);
    assert.ok(failure.longestGap < PAGE_GAP_MS, `the page's timer was held up ${failure.longestGap} ms`);
    await workersEnded();
    assert.equal(await laterRequestAndUnload(), "does_not_fit");
    await assertNewLoadAnswers();
  });
}

test("a panic in the core fails the answer with code internal, naming it", TIMEOUT, async () => {
  // A CPU thread that trapped (cpu-thread.js tells the core so, with `threadFailed`) makes the
  // core panic in the engine's thread. Threads need a cross-origin isolated page.
  const server = await serve({ isolated: true });
  const isolated = await openPage({ webgpu: false, baseUrl: server.url });
  try {
    await isolated.page.evaluate(
      async ([model, messages]) => {
        window.engine = await Torchlight.load(model, { backend: "cpu", threads: 2, contextLength: 512, watchdogMs: 0 });
        const stream = await engine.chat.completions.create({ messages, max_tokens: 400, temperature: 0, stream: true });
        window.answer = stream[Symbol.asyncIterator]();
        await answer.next();
      },
      [MODEL, MESSAGES],
    );
    const [worker] = isolated.page.workers().filter((w) => w.url().endsWith("/pkg/worker.js"));
    // The engine's first (and only) pool is pool 1.
    await worker.evaluate(async (glue) => (await import(glue)).threadFailed(1), new URL("threads/torchlight_core.js", worker.url()).href);
    const failure = await isolated.page.evaluate(async () => {
      try {
        for (;;) if ((await answer.next()).done) return null;
      } catch (e) {
        return { code: e.code, message: e.message, isTorchlightError: e instanceof TorchlightError };
      }
    });
    assert.equal(failure?.code, "internal", failure?.message);
    assert.ok(failure.isTorchlightError);
    assert.match(failure.message, /the engine's core panicked: .*a CPU worker thread died in a task/s);
  } finally {
    await isolated.browser.close();
    server.close();
  }
});

test("a long CPU prefill step is no hang: the core's heartbeat keeps its worker", TIMEOUT, async () => {
  // One step of ~260 prompt tokens on one thread holds the worker's event loop for longer than
  // this watchdog (7 to 20 s on this project's 2-core VMs, as busy as they are).
  const watchdogMs = 1500;
  const { backend } = await load({ backend: "cpu", watchdogMs });
  assert.equal(backend, "cpu");
  const result = await page.evaluate(async () => {
    const content = "word ".repeat(250);
    const reply = await engine.chat.completions.create({ messages: [{ role: "user", content }], max_tokens: 1, cache_prompt: false });
    await engine.unload();
    return { prefillMs: reply.timings.prefill_ms, promptTokens: reply.usage.prompt_tokens };
  });
  console.log(`# a ${result.promptTokens}-token prefill took ${result.prefillMs.toFixed(0)} ms, watched with watchdogMs ${watchdogMs}`);
  assert.ok(result.prefillMs > watchdogMs, "the prefill was too quick to have tested the watchdog");
});

test("watchdogMs must be a number of milliseconds", TIMEOUT, async () => {
  const code = await page.evaluate((model) => Torchlight.load(model, { watchdogMs: "30s" }).then(() => null, (e) => e.code), MODEL);
  assert.equal(code, "invalid_request");
});

test("the page's watchdog counts the worker's silence, not time the page itself was held up", TIMEOUT, async () => {
  // Here, in node, with a stand-in for the worker that answers each ping while `answering`.
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  let answering = true;
  let endedAt = null;
  const watchdog = new Watchdog(400, {
    ping: () => answering && setTimeout(() => watchdog.heard(), 10),
    onSilent: () => (endedAt = performance.now()),
  });
  watchdog.heard();
  watchdog.start();
  // This thread held up for 1.5 s, as a frozen or throttled tab's is: its worker waited too.
  for (const until = performance.now() + 1500; performance.now() < until; );
  await sleep(800);
  assert.equal(endedAt, null, "ended for the time the page itself was held up");
  answering = false;
  const from = performance.now();
  await sleep(1000);
  watchdog.stop();
  assert.ok(endedAt !== null, "never ended a worker that stopped answering");
  assert.ok(endedAt - from >= 300 && endedAt - from < 700, `ended ${endedAt - from} ms after the worker went quiet`);
});
