// The engine a page holds: OpenAI-shaped chat completions over a LocalEngine (wasm in this
// thread) or a RemoteEngine (wasm in a worker), and, only where the page configured one and the
// person agreed, a cloud endpoint. Every answer says where it came from (`route`). Requests
// queue; they never interleave.

import * as consent from "./consent.js";
import { TorchlightError, abortedError } from "./errors.js";

/** Local failures a "local-first" engine answers from the cloud instead, with the reason it gives. */
const FALLBACK_REASONS = { device_lost: "device_lost", context_overflow: "context_overflow" };

/** The request fields the core reads (see the package README); `prompt` only for a completion. */
const CORE_FIELDS = [
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
  "response_format",
  "grammar",
  "regex",
  "tools",
  "tool_choice",
  "parallel_tool_calls",
  "logprobs",
  "top_logprobs",
  "logit_bias",
];

/**
 * Fields read here rather than by the core, and OpenAI's fields that do not change a local
 * answer (`model` is the engine's own; `user`, `metadata` and `store` are for OpenAI's records).
 */
const PACKAGE_FIELDS = ["stream", "stream_options", "signal", "route", "model", "user", "metadata", "store", "n", "max_tokens", "max_completion_tokens"];

const invalid = (message) => new TorchlightError("invalid_request", `invalid request: ${message}`);

/**
 * The fields the core reads, leaving out `undefined`s (which serde does not take as absent).
 * A field Torchlight does not support fails the request, naming it, rather than being ignored.
 */
function coreRequest(params, input) {
  for (const key of Object.keys(params)) {
    if (params[key] !== undefined && key !== input && !CORE_FIELDS.includes(key) && !PACKAGE_FIELDS.includes(key)) {
      throw invalid(`\`${key}\` is not supported`);
    }
  }
  if (params.n !== undefined && params.n !== 1) throw invalid(`\`n\` must be 1 (one answer per request), not ${JSON.stringify(params.n)}`);
  if (params.stream_options !== undefined && !params.stream) throw invalid("`stream_options` is only for a streamed request (`stream: true`)");
  if (input === "messages" && !Array.isArray(params.messages)) {
    throw invalid("`messages` must be an array of { role, content }");
  }
  if (input === "prompt" && typeof params.prompt !== "string") {
    throw invalid("`prompt` must be a string (one prompt per request)");
  }
  const request = { [input]: params[input] };
  for (const key of CORE_FIELDS) if (params[key] !== undefined) request[key] = params[key];
  // OpenAI's newer name for the same limit.
  const maxTokens = params.max_tokens ?? params.max_completion_tokens;
  if (maxTokens !== undefined) request.max_tokens = maxTokens;
  return request;
}

/** The answer's message: its content, a thinking model's `reasoning_content`, and the `tool_calls` it made. */
function message({ content, reasoning_content, tool_calls }) {
  // As OpenAI's: an answer that is only calls has no content.
  const message = { role: "assistant", content: content === "" && tool_calls?.length ? null : content };
  if (reasoning_content) message.reasoning_content = reasoning_content;
  if (tool_calls?.length) message.tool_calls = tool_calls;
  return message;
}

let completions = 0;
const now = () => Math.floor(Date.now() / 1000);

/**
 * What each endpoint's answers look like: `chat.completions` answers with messages and deltas,
 * `completions` (a raw prompt, no chat template) with text.
 */
const ENDPOINTS = {
  chat: {
    input: "messages",
    id: () => `chatcmpl-torchlight-${++completions}`,
    object: "chat.completion",
    choice: (result) => ({ index: 0, message: message(result), logprobs: result.logprobs ?? null, finish_reason: result.finish_reason }),
    chunkObject: "chat.completion.chunk",
    chunkChoice: ({ logprobs, ...delta }, finish_reason) => ({ index: 0, delta, logprobs: logprobs ? { content: logprobs } : null, finish_reason }),
  },
  text: {
    input: "prompt",
    id: () => `cmpl-torchlight-${++completions}`,
    object: "text_completion",
    choice: (result) => ({ index: 0, text: result.content, logprobs: null, finish_reason: result.finish_reason }),
    chunkObject: "text_completion",
    chunkChoice: (delta, finish_reason) => ({ index: 0, text: delta.content ?? "", logprobs: null, finish_reason }),
  },
};

/** Chat fields a raw-text completion has no use for: they fail it rather than being ignored. */
const CHAT_ONLY = ["tools", "tool_choice", "parallel_tool_calls", "logprobs", "top_logprobs", "enable_thinking"];

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
    this.chat = { completions: { create: (params) => this.#create(ENDPOINTS.chat, params) } };
    /** Raw-text completions (`prompt`, no chat template), for base models and files without a template; local only. */
    this.completions = { create: (params) => this.#create(ENDPOINTS.text, params) };
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

  async #create(endpoint, params = {}) {
    const { stream = false, signal } = params;
    if (endpoint === ENDPOINTS.text) {
      const field = CHAT_ONLY.find((key) => params[key] !== undefined);
      if (field) throw invalid(`\`${field}\` is for chat completions, not a raw-text completion`);
    }
    const request = coreRequest(params, endpoint.input);
    const route = this.#plan(params.route);
    if (endpoint === ENDPOINTS.text && route !== "local") {
      if (route === "cloud" || !this.#local) throw invalid("a raw-text completion runs only on the local model");
    }
    if (signal?.aborted) throw abortedError();
    const run = (onDelta, signal) => this.#enqueue(() => this.#run(route, params, request, onDelta, signal, stream));
    if (stream) return new CompletionStream(endpoint, run, signal, params.stream_options?.include_usage === true);
    const result = await run(() => {}, signal);
    return {
      id: endpoint.id(),
      object: endpoint.object,
      created: now(),
      model: result.model,
      choices: [endpoint.choice(result)],
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
        .generate(params, (delta) => onDelta(delta, where, this.#cloud.model), signal, { reason, stream })
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
      if (route !== "auto" || !this.#cloud || !reason || spoke || request.prompt !== undefined) throw e;
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
 * A streamed completion: an async iterable of chunks (`chat.completion.chunk`, or
 * `text_completion` for a raw-text one), one per piece of the answer (a chat chunk's `delta` has
 * `content`, `reasoning_content` for a thinking model's think blocks, or `tool_calls`), then one
 * with `finish_reason`, `usage` and `timings`, and, with `stream_options: { include_usage: true }`,
 * OpenAI's last chunk with no choices and the `usage`; each carries the `route` it came by. An
 * aborted request ends the iteration by throwing a TorchlightError with code `aborted`; leaving
 * the loop early (`break`) stops the generation too.
 */
class CompletionStream {
  #chunks = [];
  #wake = null;
  #done = false;
  #error = null;
  #stop = new AbortController();

  constructor(endpoint, run, signal, includeUsage) {
    const id = endpoint.id();
    const created = now();
    const chunk = (model, route, choices) => ({ id, object: endpoint.chunkObject, created, model, choices, route });
    let first = true;
    const onDelta = (delta, route, model) => {
      const opened = first && endpoint === ENDPOINTS.chat ? { role: "assistant", ...delta } : delta;
      this.#push(chunk(model, route, [endpoint.chunkChoice(opened, null)]));
      first = false;
    };
    const combined = signal ? AbortSignal.any([signal, this.#stop.signal]) : this.#stop.signal;
    run(onDelta, combined).then(
      (result) => {
        // A local answer's logprobs come whole, with its end.
        const last = chunk(result.model, result.route, [endpoint.chunkChoice({ logprobs: result.logprobs?.content }, result.finish_reason)]);
        this.#push({ ...last, usage: result.usage, timings: result.timings });
        if (includeUsage) this.#push({ ...chunk(result.model, result.route, []), usage: result.usage });
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
