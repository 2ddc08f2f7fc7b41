// The engine a page holds: OpenAI-shaped chat completions over a LocalEngine (wasm in this
// thread) or a RemoteEngine (wasm in a worker). Requests queue; they never interleave.

import { TorchlightError, abortedError } from "./errors.js";

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

let completions = 0;
const completionId = () => `chatcmpl-torchlight-${++completions}`;
const now = () => Math.floor(Date.now() / 1000);

export class Engine {
  #core;
  #queue = Promise.resolve();
  #unloaded = false;

  /** @param {string} model the model's name in answers: its file name */
  constructor(core, model) {
    this.#core = core;
    this.model = model;
    this.contextLength = core.contextLength;
    this.chat = { completions: { create: (params) => this.#create(params) } };
  }

  /**
   * Memory in use: `{ wasmMemoryBytes, gpuBytes }`. wasm memory never shrinks, so after a load
   * this is also the load's peak.
   */
  stats() {
    return this.#core.stats();
  }

  /**
   * Ends the engine: a running request fails with code `aborted`, as do queued ones and any
   * made later, and the GPU memory is freed (with a worker, the worker ends).
   */
  async unload() {
    this.#unloaded = true;
    await this.#core.unload();
  }

  async #create(params = {}) {
    const { stream = false, signal } = params;
    const request = coreRequest(params);
    if (signal?.aborted) throw abortedError();
    if (stream) {
      const run = (onDelta, signal) => this.#enqueue(request, onDelta, signal);
      return new CompletionStream(run, this.model, signal);
    }
    const id = completionId();
    const result = await this.#enqueue(request, () => {}, signal);
    return {
      id,
      object: "chat.completion",
      created: now(),
      model: this.model,
      choices: [
        { index: 0, message: { role: "assistant", content: result.content }, finish_reason: result.finish_reason },
      ],
      usage: result.usage,
      tokens: result.tokens,
      timings: result.timings,
    };
  }

  /** Runs the request once every earlier one has ended. */
  #enqueue(request, onDelta, signal) {
    const turn = this.#queue.then(() => {
      if (this.#unloaded) throw abortedError("the engine was unloaded");
      if (signal?.aborted) throw abortedError();
      return this.#core.generate(request, onDelta, signal);
    });
    this.#queue = turn.catch(() => {});
    return turn;
  }
}

/**
 * A streamed completion: an async iterable of `chat.completion.chunk` objects, one per piece of
 * text, then one with `finish_reason` and `usage`. An aborted request ends the iteration by
 * throwing a TorchlightError with code `aborted`; leaving the loop early (`break`) stops the
 * generation too.
 */
class CompletionStream {
  #chunks = [];
  #wake = null;
  #done = false;
  #error = null;
  #stop = new AbortController();

  constructor(run, model, signal) {
    const id = completionId();
    const created = now();
    const chunk = (delta, finish_reason = null) => ({
      id,
      object: "chat.completion.chunk",
      created,
      model,
      choices: [{ index: 0, delta, finish_reason }],
    });
    let first = true;
    const onDelta = (content) => {
      this.#push(chunk(first ? { role: "assistant", content } : { content }));
      first = false;
    };
    const combined = signal ? AbortSignal.any([signal, this.#stop.signal]) : this.#stop.signal;
    run(onDelta, combined).then(
      (result) => {
        this.#push({ ...chunk({}, result.finish_reason), usage: result.usage, timings: result.timings });
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
