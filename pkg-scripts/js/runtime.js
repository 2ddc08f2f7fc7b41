// The engine where the wasm core runs: in the dedicated worker (the default), or in the page
// itself with `worker: false`. Loads a model by URL and answers requests through the core.

import init, { Loader } from "./torchlight_core.js";
import { readPrefix, openRange } from "./download.js";
import { asTorchlightError, abortedError } from "./errors.js";

/**
 * Bytes fetched first. Headers run from under 1 MiB to about 10 (a 128k-token vocabulary),
 * and each miss costs a round trip that at least doubles the prefix.
 */
const HEADER_PREFIX = 1 << 20;
/** Progress is reported about this often (in bytes), and at the end. */
const PROGRESS_STEP = 1 << 20;

let core;

/** Fetches and instantiates the wasm next to this file, once. */
function loadCore() {
  core ??= init();
  return core;
}

/**
 * Reads the header, growing the prefix while the core asks for more, and returns the loader
 * and the prefix (whose tail may already hold tensor data).
 */
async function openModel(url, contextLength, signal) {
  let { bytes, fileLength } = await readPrefix(url, HEADER_PREFIX, signal);
  for (;;) {
    try {
      return { loader: await Loader.create(bytes, fileLength, contextLength), bytes };
    } catch (e) {
      if (e?.code !== "truncated_header") throw e;
      // Fetch only what is missing, at least doubling the prefix so a huge header takes few trips.
      const want = Math.min(fileLength, Math.max(e.needed, 2 * bytes.length));
      const grown = new Uint8Array(want);
      grown.set(bytes);
      const { chunks } = await openRange(url, bytes.length, want, signal);
      for await (const chunk of chunks) grown.set(chunk.bytes, chunk.offset);
      bytes = grown;
    }
  }
}

/** Streams the tensor data into the loader: first what the prefix already holds, then the rest. */
async function streamWeights(loader, url, prefix, signal, onProgress) {
  let [at, end] = loader.range();
  let reported = -Infinity;
  const progress = () => {
    if (at - reported < PROGRESS_STEP && at < end) return;
    reported = at;
    onProgress?.({ phase: "download", loadedBytes: at, totalBytes: end, fromCache: false });
  };
  if (at < prefix.length) {
    loader.push(at, prefix.subarray(at, Math.min(prefix.length, end)));
    [at] = loader.range();
  }
  progress();
  if (at >= end) return;
  const { chunks } = await openRange(url, at, end, signal);
  for await (const chunk of chunks) {
    loader.push(chunk.offset, chunk.bytes);
    at = chunk.offset + chunk.bytes.length;
    progress();
  }
}

/** A model loaded into the core of this thread. */
export class LocalEngine {
  #engine;
  #unloaded = false;
  #running = Promise.resolve();

  constructor(engine) {
    this.#engine = engine;
    this.contextLength = engine.contextLength;
  }

  /** Loads the model at `url` (absolute); `signal` cancels. */
  static async load(url, { contextLength, signal, onProgress } = {}) {
    try {
      await loadCore();
      if (signal?.aborted) throw abortedError();
      const { loader, bytes } = await openModel(url, contextLength, signal);
      try {
        await streamWeights(loader, url, bytes, signal, onProgress);
      } catch (e) {
        loader.free();
        throw e;
      }
      // `finish` takes the loader whatever it returns.
      return new LocalEngine(loader.finish());
    } catch (e) {
      throw asTorchlightError(e);
    }
  }

  /**
   * Runs one request; `onDelta` hears each non-empty piece of text. `signal` is looked at after
   * every token; once it is aborted the request fails with code `aborted`.
   */
  async generate(request, onDelta, signal) {
    if (this.#unloaded) throw abortedError("the engine was unloaded");
    const run = this.#engine.generate(request, (text) => {
      if (text) onDelta(text);
      return !(this.#unloaded || signal?.aborted);
    });
    this.#running = run.catch(() => {});
    try {
      return await run;
    } catch (e) {
      throw this.#unloaded ? abortedError("the engine was unloaded") : asTorchlightError(e);
    }
  }

  /** Stops a running request and frees the GPU memory. */
  async unload() {
    if (this.#unloaded) return;
    this.#unloaded = true;
    await this.#running;
    this.#engine.free();
  }
}
