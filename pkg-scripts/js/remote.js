// The page's side of the worker: the same interface as LocalEngine, over postMessage. The page
// watches the worker (watchdog.js) and ends it when it stops answering or its core traps; the
// request running then fails, as does every later one, with the same error.

import { assetUrl, beside, isCrossOrigin, missingAssetError, moduleWorker, whyScriptFailed } from "./assets.js";
import { TorchlightError, abortedError } from "./errors.js";
import { Watchdog, unresponsiveError } from "./watchdog.js";

/** This module's URL, kept apart from `new URL(..., import.meta.url)` so that bundlers see only the worker's. */
const here = import.meta.url;

/**
 * The engine's module worker, `worker.js`: as `new Worker(new URL("./worker.js",
 * import.meta.url), ...)`, the form bundlers follow and bundle; from `Torchlight.assetsUrl`'s
 * folder when the page set one; through a same-origin module when this package came from another
 * origin. Returns the worker and the URL its script was expected at.
 */
function startWorker() {
  const url = assetUrl("worker.js") ?? (isCrossOrigin(here) ? new URL("worker.js", here) : null);
  if (url) return { worker: moduleWorker(url, "torchlight"), url };
  const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module", name: "torchlight" });
  // The URL a failure names: where the script is unless a bundler copied it (then under another name, and it loads).
  return { worker, url: beside("worker.js", here) };
}

export class RemoteEngine {
  #worker;
  /** id → { onEvent, resolve, reject } of each request the worker has yet to answer; the load is id 0. */
  #pending = new Map();
  #nextId = 1;
  /** Why the engine answers no more (unloaded, crashed, unresponsive): every request fails with it. */
  #failure = null;
  #watchdog;

  /** Whether the worker's script has run (it says so first): until then a failure is its script not loading. */
  #started = false;

  /** Starts the engine's worker, watched with `watchdogMs` (see watchdog.js). */
  constructor(watchdogMs) {
    const { worker, url } = startWorker();
    this.#worker = worker;
    this.#watchdog = new Watchdog(watchdogMs, {
      ping: () => worker.postMessage({ type: "ping" }),
      onSilent: () => this.#fail(unresponsiveError(watchdogMs)),
    });
    worker.onmessage = ({ data }) => this.#hear(data);
    worker.onerror = async (event) => {
      event.preventDefault();
      // A script that does not load gives an error with no message (a 404, an HTML page in its place).
      if (!this.#started && !event.message) {
        this.#fail(missingAssetError("the engine's worker script", url, await whyScriptFailed(url)));
      } else {
        this.#fail(new TorchlightError("internal", `internal error: the engine's worker failed: ${event.message || "no reason given"}`));
      }
    };
  }

  /** Loads the model at `url` in a new worker. */
  static async load(url, { contextLength, chatTemplate, signal, onProgress, backend, threads, watchdogMs }) {
    const engine = new RemoteEngine(watchdogMs);
    // Ending the worker ends its download and frees whatever it had put on the GPU.
    const onAbort = () => engine.#fail(abortedError());
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const loaded = await engine.#request({ type: "load", id: 0, url, contextLength, chatTemplate, backend, threads }, onProgress);
      engine.contextLength = loaded.contextLength;
      engine.backend = loaded.backend;
      engine.threads = loaded.threads;
      return engine;
    } catch (e) {
      engine.#fail(e);
      throw e;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** As `LocalEngine.generate`; the signal's abort crosses to the worker as a message. */
  generate(request, onDelta, signal) {
    const id = this.#nextId++;
    const onAbort = () => this.#worker.postMessage({ type: "abort", id });
    const answer = this.#request({ type: "generate", id, request }, onDelta);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener("abort", onAbort, { once: true });
    return answer.finally(() => signal?.removeEventListener("abort", onAbort));
  }

  /** As `LocalEngine.stats`, measured in the worker. */
  stats() {
    return this.#request({ type: "stats", id: this.#nextId++ });
  }

  async unload() {
    this.#fail(abortedError("the engine was unloaded"));
  }

  /** Sends `message` (with its request id) and resolves with the answer; `onEvent` hears its progress or deltas. */
  #request(message, onEvent = () => {}) {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#pending.set(message.id, { onEvent, resolve, reject });
      this.#watchdog.start();
      this.#worker.postMessage(message);
    });
  }

  #hear(data) {
    this.#started = true;
    this.#watchdog.heard();
    if (data.type === "crashed") return this.#fail(new TorchlightError(data.error.code, data.error.message));
    // "alive" carries no id; an answer to a request that has already failed has none pending.
    const request = this.#pending.get(data.id);
    if (!request) return;
    if (data.type === "progress") return request.onEvent(data.progress);
    if (data.type === "delta") return request.onEvent(data.delta);
    this.#pending.delete(data.id);
    if (this.#pending.size === 0) this.#watchdog.stop();
    if (data.type === "done") request.resolve(data.result);
    else request.reject(new TorchlightError(data.error.code, data.error.message));
  }

  /** Ends the worker: every request, pending or later, fails with `error`. */
  #fail(error) {
    if (this.#failure) return;
    this.#failure = error;
    this.#watchdog.stop();
    this.#worker.terminate();
    for (const request of this.#pending.values()) request.reject(error);
    this.#pending.clear();
  }
}
