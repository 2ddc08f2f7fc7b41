// The engine where the wasm core runs: in the dedicated worker (the default), or in the page
// itself with `worker: false`. Loads a model by URL and answers requests through the core.

import init, { Loader } from "./torchlight_core.js";
import { openCachedFile } from "./cache.js";
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

/** Bytes `[start, end)` of `file`, written at their offsets into `into` (by default a new buffer from byte 0). */
async function readBytes(file, start, end, into = new Uint8Array(end)) {
  for await (const piece of file.read(start, end)) into.set(piece.bytes, piece.offset);
  return into;
}

/**
 * Reads the header, growing the prefix while the core asks for more, and returns the loader
 * and the prefix (whose tail may already hold tensor data).
 */
async function openModel(file, contextLength) {
  let bytes = await readBytes(file, 0, Math.min(HEADER_PREFIX, file.fileLength));
  for (;;) {
    try {
      return { loader: await Loader.create(bytes, file.fileLength, contextLength), bytes };
    } catch (e) {
      if (e?.code !== "truncated_header") throw e;
      // Read only what is missing, at least doubling the prefix so a huge header takes few trips.
      const want = Math.min(file.fileLength, Math.max(e.needed, 2 * bytes.length));
      const grown = new Uint8Array(want);
      grown.set(bytes);
      bytes = await readBytes(file, bytes.length, want, grown);
    }
  }
}

/**
 * Streams the tensor data into the loader: first what the prefix already holds, then the rest,
 * from the cache where it holds it (phase "cache") and the network where not ("download").
 */
async function streamWeights(loader, file, prefix, onProgress) {
  let [at, end] = loader.range();
  let reported = -Infinity;
  let fromCache = file.complete;
  const progress = () => {
    if (at - reported < PROGRESS_STEP && at < end) return;
    reported = at;
    onProgress?.({ phase: fromCache ? "cache" : "download", loadedBytes: at, totalBytes: end, fromCache });
  };
  if (at < prefix.length) {
    loader.push(at, prefix.subarray(at, Math.min(prefix.length, end)));
    [at] = loader.range();
  }
  progress();
  if (at >= end) return;
  for await (const piece of file.read(at, end)) {
    loader.push(piece.offset, piece.bytes);
    at = piece.offset + piece.bytes.length;
    fromCache = piece.fromCache;
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
      const file = await openCachedFile(url, signal);
      let loader, bytes;
      try {
        ({ loader, bytes } = await openModel(file, contextLength));
      } catch (e) {
        // Not a model we can run (a download that failed can resume): its bytes would only take room.
        if (!["network", "aborted"].includes(asTorchlightError(e).code)) await file.discard();
        throw e;
      }
      try {
        await streamWeights(loader, file, bytes, onProgress);
        await file.finish();
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
