// The page's side of the worker: the same interface as LocalEngine, over postMessage.

import { TorchlightError, abortedError } from "./errors.js";

export class RemoteEngine {
  #worker;
  /** id → { onDelta, resolve, reject } of the request the worker is running. */
  #pending = new Map();
  #nextId = 1;
  #closed = false;

  constructor(worker, { contextLength, backend, threads }) {
    this.#worker = worker;
    this.contextLength = contextLength;
    this.backend = backend;
    this.threads = threads;
    worker.onmessage = ({ data }) => {
      const request = this.#pending.get(data.id);
      if (!request) return;
      if (data.type === "delta") return request.onDelta(data.delta);
      this.#pending.delete(data.id);
      if (data.type === "done") request.resolve(data.result);
      else request.reject(new TorchlightError(data.error.code, data.error.message));
    };
    worker.onerror = (event) => this.#fail(new TorchlightError("internal", `the worker failed: ${event.message}`));
  }

  /** Starts a module worker next to this file and loads the model at `url` in it. */
  static load(url, { contextLength, signal, onProgress, backend, threads } = {}) {
    const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module", name: "torchlight" });
    return new Promise((resolve, reject) => {
      const fail = (error) => {
        worker.terminate();
        signal?.removeEventListener("abort", onAbort);
        reject(error);
      };
      // Ending the worker ends its download and frees whatever it had put on the GPU.
      const onAbort = () => fail(abortedError());
      signal?.addEventListener("abort", onAbort, { once: true });
      worker.onmessage = ({ data }) => {
        if (data.type === "progress") onProgress?.(data.progress);
        else if (data.type === "failed") fail(new TorchlightError(data.error.code, data.error.message));
        else if (data.type === "loaded") {
          signal?.removeEventListener("abort", onAbort);
          resolve(new RemoteEngine(worker, data));
        }
      };
      worker.onerror = (event) => {
        event.preventDefault();
        fail(new TorchlightError("internal", `the worker failed to start: ${event.message ?? "no reason given"}`));
      };
      worker.postMessage({ type: "load", url, contextLength, backend, threads });
    });
  }

  /** As `LocalEngine.generate`; the signal's abort crosses to the worker as a message. */
  generate(request, onDelta, signal) {
    if (this.#closed) return Promise.reject(abortedError("the engine was unloaded"));
    const id = this.#nextId++;
    const onAbort = () => this.#worker.postMessage({ type: "abort", id });
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { onDelta, resolve, reject });
      this.#worker.postMessage({ type: "generate", id, request });
      if (signal?.aborted) onAbort();
      else signal?.addEventListener("abort", onAbort, { once: true });
    }).finally(() => signal?.removeEventListener("abort", onAbort));
  }

  /** As `LocalEngine.stats`, measured in the worker. */
  stats() {
    if (this.#closed) return Promise.reject(abortedError("the engine was unloaded"));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { onDelta: () => {}, resolve, reject });
      this.#worker.postMessage({ type: "stats", id });
    });
  }

  async unload() {
    this.#fail(abortedError("the engine was unloaded"));
  }

  #fail(error) {
    this.#closed = true;
    this.#worker.terminate();
    for (const request of this.#pending.values()) request.reject(error);
    this.#pending.clear();
  }
}
