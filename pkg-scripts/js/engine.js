// The engine a page holds: OpenAI-shaped chat completions over a LocalEngine (wasm in this
// thread) or a RemoteEngine (wasm in a worker), and, only where the page configured one and the
// person agreed, a cloud endpoint. Every answer says where it came from (`route`). Requests
// queue; they never interleave.

import * as consent from "./consent.js";
import { TorchlightError, abortedError } from "./errors.js";

/** Local failures a "local-first" engine answers from the cloud instead, with the reason it gives. */
const FALLBACK_REASONS = { device_lost: "device_lost", context_overflow: "context_overflow" };

/** The request fields the core reads; others (`n`, `tools`, ...) are not supported. */
const REQUEST_FIELDS = [
  "messages",
  "temperature",
  "top_p",
  "top_k",
  "min_p",
  "repetition_penalty",
  "presence_penalty",
  "frequency_penalty",
  "seed",
  "stop",
  "cache_prompt",
  "enable_thinking",
];

/** The fields the core reads, leaving out `undefined`s (which serde does not take as absent). */
function coreRequest(params) {
  if (!Array.isArray(params.messages)) {
    throw new TorchlightError("invalid_request", "invalid request: `messages` must be an array of { role, content }");
  }
  const request = {};
  for (const key of REQUEST_FIELDS) if (params[key] !== undefined) request[key] = params[key];
  // OpenAI's newer name for the same limit.
  const maxTokens = params.max_tokens ?? params.max_completion_tokens;
  if (maxTokens !== undefined) request.max_tokens = maxTokens;
  return request;
}

/** The answer's message: its content and, from a thinking model, its `reasoning_content`. */
function message({ content, reasoning_content }) {
  return reasoning_content ? { role: "assistant", content, reasoning_content } : { role: "assistant", content };
}

let completions = 0;
const completionId = () => `chatcmpl-torchlight-${++completions}`;
const now = () => Math.floor(Date.now() / 1000);

export class Engine {
  #local;
  #cloud;
  #route;
  #localFailure;
  #queue = Promise.resolve();
  #unloaded = false;

  /**
   * @param {object} parts
   * @param {object|null} parts.local the loaded model (null: none, see `localFailure`)
   * @param {import("./cloud.js").Cloud|null} parts.cloud
   * @param {"local-only"|"local-first"|"cloud-only"} parts.route
   * @param {{ reason: string, error: TorchlightError }|null} parts.localFailure why there is no local model
   * @param {string} parts.model the name answers carry
   */
  constructor({ local, cloud = null, route = "local-only", localFailure = null, model }) {
    this.#local = local;
    this.#cloud = cloud;
    this.#route = route;
    this.#localFailure = localFailure;
    this.model = model;
    this.contextLength = local?.contextLength ?? null;
    /** Where the local model runs: "gpu" or "cpu" (null without one). */
    this.backend = local?.backend ?? null;
    /** Threads the local model runs on: more than 1 only on the CPU of a cross-origin isolated page. */
    this.threads = local?.threads ?? null;
    /** Why the model did not load here (a `TorchlightError`), when the engine answers from the cloud instead. */
    this.localError = localFailure?.error ?? null;
    this.chat = { completions: { create: (params) => this.#create(params) } };
    /** The remembered "always" decisions: `list()`, `revoke(endpoint)`. */
    this.consent = { list: consent.list, revoke: consent.revoke };
  }

  /**
   * Memory in use: `{ backend, threads, wasmMemoryBytes, modelBytes }`. wasm memory never shrinks, so
   * after a load this is also the load's peak.
   */
  stats() {
    if (!this.#local) return Promise.reject(new TorchlightError("invalid_request", "no local model is loaded"));
    return this.#local.stats();
  }

  /**
   * Ends the engine: a running request fails with code `aborted`, as do queued ones and any
   * made later, and the GPU memory is freed (with a worker, the worker ends).
   */
  async unload() {
    this.#unloaded = true;
    await this.#local?.unload();
  }

  async #create(params = {}) {
    const { stream = false, signal } = params;
    const request = coreRequest(params);
    const route = this.#plan(params.route);
    if (signal?.aborted) throw abortedError();
    const run = (onDelta, signal) => this.#enqueue(() => this.#run(route, params, request, onDelta, signal, stream));
    if (stream) return new CompletionStream(run, signal);
    const result = await run(() => {}, signal);
    return {
      id: completionId(),
      object: "chat.completion",
      created: now(),
      model: result.model,
      choices: [{ index: 0, message: message(result), finish_reason: result.finish_reason }],
      usage: result.usage,
      tokens: result.tokens,
      timings: result.timings,
      route: result.route,
    };
  }

  /** Where a request may go: "local", "cloud", or "auto" (local, falling back to the cloud). */
  #plan(requested) {
    if (requested !== undefined && requested !== "local" && requested !== "cloud") {
      throw new TorchlightError("invalid_request", `invalid request: route must be "local" or "cloud", not ${JSON.stringify(requested)}`);
    }
    if (requested === "cloud" && (!this.#cloud || this.#route === "local-only")) {
      throw new TorchlightError("invalid_request", "invalid request: this engine has no cloud endpoint (load it with `cloud` and a route other than local-only)");
    }
    if (requested === "local" && !this.#local) {
      throw new TorchlightError("invalid_request", `invalid request: no local model is loaded (${this.#localFailure?.reason ?? "route cloud-only"})`);
    }
    if (requested) return requested;
    return { "local-only": "local", "cloud-only": "cloud", "local-first": "auto" }[this.#route];
  }

  /** Runs one request where `route` says, falling back to the cloud only for the documented reasons. */
  async #run(route, params, request, onDelta, signal, stream) {
    if (this.#unloaded) throw abortedError("the engine was unloaded");
    if (signal?.aborted) throw abortedError();
    const cloud = (reason) => {
      const where = { used: "cloud", reason };
      return this.#cloud
        .generate(params, (text) => onDelta({ content: text }, where, this.#cloud.model), signal, { reason, stream })
        .then((result) => ({ ...result, route: where, model: this.#cloud.model }));
    };
    if (route === "cloud") return cloud("requested");
    if (!this.#local) return cloud(this.#localFailure.reason);
    const where = { used: "local", backend: this.backend };
    let spoke = false;
    try {
      const result = await this.#local.generate(request, (delta) => ((spoke = true), onDelta(delta, where, this.model)), signal);
      return { ...result, route: where, model: this.model };
    } catch (e) {
      const reason = FALLBACK_REASONS[e?.code];
      // An answer already begun is not started over elsewhere: the page would see it twice.
      if (route !== "auto" || !this.#cloud || !reason || spoke) throw e;
      return cloud(reason);
    }
  }

  /** Runs `job` once every earlier request has ended. */
  #enqueue(job) {
    const turn = this.#queue.then(job);
    this.#queue = turn.catch(() => {});
    return turn;
  }
}

/**
 * A streamed completion: an async iterable of `chat.completion.chunk` objects, one per piece of
 * the answer (its `delta` has `content`, or `reasoning_content` for a thinking model's think
 * blocks), then one with `finish_reason` and `usage`; each carries the `route` it came by. An aborted request ends the iteration by
 * throwing a TorchlightError with code `aborted`; leaving the loop early (`break`) stops the
 * generation too.
 */
class CompletionStream {
  #chunks = [];
  #wake = null;
  #done = false;
  #error = null;
  #stop = new AbortController();

  constructor(run, signal) {
    const id = completionId();
    const created = now();
    const chunk = (model, route, delta, finish_reason = null) => ({
      id,
      object: "chat.completion.chunk",
      created,
      model,
      choices: [{ index: 0, delta, finish_reason }],
      route,
    });
    let first = true;
    const onDelta = (delta, route, model) => {
      this.#push(chunk(model, route, first ? { role: "assistant", ...delta } : delta));
      first = false;
    };
    const combined = signal ? AbortSignal.any([signal, this.#stop.signal]) : this.#stop.signal;
    run(onDelta, combined).then(
      (result) => {
        this.#push({ ...chunk(result.model, result.route, {}, result.finish_reason), usage: result.usage, timings: result.timings });
        this.#end(null);
      },
      (error) => this.#end(error),
    );
  }

  #push(chunk) {
    this.#chunks.push(chunk);
    this.#wake?.();
  }

  #end(error) {
    this.#done = true;
    this.#error = error;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator]() {
    try {
      for (;;) {
        if (this.#chunks.length > 0) yield this.#chunks.shift();
        else if (this.#error) throw this.#error;
        else if (this.#done) return;
        else await new Promise((resolve) => (this.#wake = resolve));
      }
    } finally {
      if (!this.#done) this.#stop.abort();
    }
  }
}
