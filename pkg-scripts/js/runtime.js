// The engine where the wasm core runs: in the dedicated worker (the default), or in the page
// itself with `worker: false`. Loads a model by URL and answers requests through the core.

// Both builds' glue is imported statically (only a load instantiates either): a worker whose
// imports are all static bundles in any worker format (Vite's default, IIFE, included).
import * as plainGlue from "./torchlight_core.js";
import * as threadedGlue from "./threads/torchlight_core.js";
import { assetUrl, isWasm, missingAssetError } from "./assets.js";
import { list as listCached, openCachedFile } from "./cache.js";
import { openUncached, sourceOf } from "./download.js";
import { TorchlightError, asTorchlightError, abortedError } from "./errors.js";
import { startThreads } from "./threads.js";

/**
 * Bytes fetched first. Headers run from under 1 MiB to about 10 (a 128k-token vocabulary),
 * and each miss costs a round trip that at least doubles the prefix.
 */
const HEADER_PREFIX = 1 << 20;
/**
 * The longest header read: ten times the largest real ones (Gemma 3's, with its 262,144-token
 * vocabulary, is 6.2 MiB). A file whose header runs on for gigabytes would otherwise be fetched
 * whole into memory before the core could refuse it.
 */
const MAX_HEADER = 64 << 20;
/** Progress is reported about this often (in bytes), and at the end. */
const PROGRESS_STEP = 1 << 20;

/** The wasm cores instantiated in this thread, by build. */
const cores = {};
/** The same, once ready: those `trapError` asks why they trapped. */
const instantiated = new Set();

/**
 * Fetches and instantiates a wasm core next to this file (or in `Torchlight.assetsUrl`'s
 * folder), once: `{ glue, exports, module }`, the wasm-bindgen glue, the instance's exports and
 * the compiled module. The plain build, or with `threaded` the one with wasm atomics, whose
 * shared memory the CPU backend's Web Workers instantiate the same module over (only on a
 * cross-origin isolated page).
 */
export function loadCore(threaded = false) {
  const build = threaded ? "threads" : "plain";
  cores[build] ??= (async () => {
    const glue = threaded ? threadedGlue : plainGlue;
    const module = await compileCore(threaded ? threadedCoreUrl() : plainCoreUrl());
    return { glue, exports: await glue.default({ module_or_path: module }), module };
  })();
  cores[build].then((core) => instantiated.add(core), () => delete cores[build]);
  return cores[build];
}

// Each URL is made from a literal path and `import.meta.url`, the form bundlers follow.
const plainCoreUrl = () => assetUrl("torchlight_core_bg.wasm") ?? new URL("./torchlight_core_bg.wasm", import.meta.url);
const threadedCoreUrl = () => assetUrl("threads/torchlight_core_bg.wasm") ?? new URL("./threads/torchlight_core_bg.wasm", import.meta.url);

/** The wasm module at `url`; failing with `assets_not_found` when what is there is no wasm (a 404 page). */
async function compileCore(url) {
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new TorchlightError("network", `the wasm core could not be fetched from ${url}: ${e?.message ?? e}`);
  }
  if (!response.ok) throw missingAssetError("the wasm core", url, `HTTP ${response.status}`);
  // Streaming compilation needs the application/wasm type; without it, compile the bytes.
  return WebAssembly.compileStreaming(response.clone()).catch(async () => {
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (!isWasm(bytes)) {
      throw missingAssetError("the wasm core", url, `it is not WebAssembly (served as ${response.headers.get("content-type") || "no type"})`);
    }
    return WebAssembly.compile(bytes);
  });
}

/**
 * For `e` (or the error it wraps) a trap of the core: a `WebAssembly.RuntimeError` (a panic, an
 * allocation wasm memory could not give) or a `RangeError` (the stack overflowed inside it),
 * after which nothing the core holds is to be trusted. The error to report, with the core's own
 * account of why (`does_not_fit` or `invalid_model` for memory, `internal` with a panic's
 * message), or null when `e` is no trap.
 */
export function trapError(e) {
  const thrown = e instanceof TorchlightError ? e.cause : e;
  if (!(thrown instanceof WebAssembly.RuntimeError || thrown instanceof RangeError)) return null;
  const report = [...instantiated].map(trapReport).find(Boolean);
  if (report) return new TorchlightError(report.code, report.message, { cause: thrown });
  return new TorchlightError("internal", `internal error: the engine's core stopped: ${thrown.message}`, { cause: thrown });
}

/** What `core` noted before it trapped, if anything. The report reads only those notes; if even that traps, there is none. */
function trapReport(core) {
  try {
    return core.glue.trapReport();
  } catch {
    return undefined;
  }
}

/** Bytes `[start, end)` of `file`, written at their offsets into `into` (by default a new buffer from byte 0). */
async function readBytes(file, start, end, into = new Uint8Array(end)) {
  for await (const piece of file.read(start, end)) into.set(piece.bytes, piece.offset);
  return into;
}

/**
 * Reads the header, growing the prefix while `open(prefix)` asks for more, and returns what
 * `open` made and the prefix (whose tail may already hold tensor data).
 */
async function withHeader(file, open) {
  let bytes = await readBytes(file, 0, Math.min(HEADER_PREFIX, file.fileLength));
  for (;;) {
    try {
      return { opened: await open(bytes), bytes };
    } catch (e) {
      if (e?.code !== "truncated_header") throw e;
      if (e.needed > MAX_HEADER) {
        const why = `the header runs on past ${MAX_HEADER >> 20} MiB (to byte ${e.needed} at least), far longer than any model's: the file is corrupt or hostile`;
        throw new TorchlightError("invalid_model", `${e.reading}: ${why}`);
      }
      // Read only what is missing, at least doubling the prefix so a huge header takes few trips.
      const want = Math.min(file.fileLength, MAX_HEADER, Math.max(e.needed, 2 * bytes.length));
      const grown = new Uint8Array(want);
      grown.set(bytes);
      bytes = await readBytes(file, bytes.length, want, grown);
    }
  }
}

/**
 * What the model in `file` (an absolute URL, or a Blob) needs, from its header alone: read from
 * the cache where it holds the whole file, else by range requests (or slices) that store nothing.
 */
export async function estimate(file, { contextLength, backend, bindingLimit, signal } = {}) {
  try {
    const { glue } = await loadCore();
    const source = sourceOf(file);
    const cached = (await listCached()).some((m) => m.url === source.key && m.complete);
    file = cached ? await openCachedFile(source, signal) : await openUncached(source, HEADER_PREFIX, signal);
    const { opened } = await withHeader(file, (bytes) => glue.estimate(bytes, file.fileLength, contextLength, backend, bindingLimit));
    return { ...opened, bytes: file.fileLength, cached };
  } catch (e) {
    throw asTorchlightError(e);
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
  #core;
  /** The Web Workers lending their threads to the CPU backend. */
  #threads;
  #unloaded = false;
  #running = Promise.resolve();

  constructor(engine, core, threads) {
    this.#engine = engine;
    this.#core = core;
    this.#threads = threads;
    this.contextLength = engine.contextLength;
    /** "gpu" or "cpu". */
    this.backend = engine.backend;
    /** Threads the CPU backend runs on: this one and its Web Workers (1 on the GPU). */
    this.threads = threads.length + 1;
  }

  /**
   * Loads the model in `file` (an absolute URL, or a Blob) on `backend` ("gpu" or "cpu"), on
   * the CPU with `threads` threads (more than 1 only in a worker of a cross-origin isolated
   * page); `signal` cancels. `onBusy` is called about once a second while the core computes
   * without giving this thread's event loop a turn (a CPU prefill step), so that a watcher can
   * tell busy from stuck.
   */
  static async load(file, { contextLength, chatTemplate, signal, onProgress, onBusy, backend, threads = 1 } = {}) {
    try {
      // A browser that cannot make the threaded core's shared memory (a 32-bit one cannot
      // reserve its 4 GiB) still runs the plain core, on one thread (`threads` says so).
      // A file missing from the app's build is no such browser: that fails the load.
      const unlessMissing = (e) => {
        if (e?.code === "assets_not_found") throw e;
        return null;
      };
      let core = backend === "cpu" && threads > 1 ? await loadCore(true).catch(unlessMissing) : null;
      if (!core) [core, threads] = [await loadCore(), 1];
      core.glue.setHeartbeat(onBusy);
      if (signal?.aborted) throw abortedError();
      file = await openCachedFile(sourceOf(file), signal);
      let loader, bytes;
      try {
        const create = (bytes) => core.glue.Loader.create(bytes, file.fileLength, contextLength, backend, threads, chatTemplate);
        ({ opened: loader, bytes } = await withHeader(file, create));
      } catch (e) {
        // Not a model we can run (a download that failed can resume): its bytes would only take room.
        if (!["network", "aborted"].includes(asTorchlightError(e).code)) await file.discard();
        throw e;
      }
      const [, end] = loader.range();
      const fromCache = file.complete;
      const phase = (phase) => onProgress?.({ phase, loadedBytes: end, totalBytes: end, fromCache });
      // The threads start while the weights stream in; each instantiates the core anew.
      const starting = loader.threadPool === undefined ? Promise.resolve([]) : startThreads(core, loader.threadPool, threads - 1);
      starting.catch(() => {}); // awaited below, after the weights
      let workers;
      try {
        await streamWeights(loader, file, bytes, onProgress);
        await file.finish();
        // Every byte is queued for the GPU; wait until it holds them.
        phase("upload");
        await loader.flush();
        workers = await starting;
      } catch (e) {
        loader.free();
        starting.then((started) => started.forEach((worker) => worker.terminate()), () => {});
        throw e;
      }
      phase("compile");
      // `finish` takes the loader whatever it returns.
      return new LocalEngine(loader.finish(), core, workers);
    } catch (e) {
      throw trapError(e) ?? asTorchlightError(e);
    }
  }

  /**
   * Runs one request; `onDelta` hears each piece of the answer that is not empty, as an OpenAI
   * delta (`content`, `reasoning_content`, `tool_calls`). `signal` is looked at after every token; once it is aborted the request
   * fails with code `aborted`.
   */
  async generate(request, onDelta, signal) {
    if (this.#unloaded) throw abortedError("the engine was unloaded");
    const run = this.#engine.generate(request, (delta) => {
      if (Object.keys(delta).length > 0) onDelta(delta);
      return !(this.#unloaded || signal?.aborted);
    });
    this.#running = run.catch(() => {});
    try {
      return await run;
    } catch (e) {
      throw this.#unloaded ? abortedError("the engine was unloaded") : (trapError(e) ?? asTorchlightError(e));
    }
  }

  /**
   * Memory in use: the wasm heap (it never shrinks, so this is also its peak) and the model's
   * own bytes on its backend (GPU buffers, or part of that heap on the CPU).
   */
  async stats() {
    const wasmMemoryBytes = this.#core.exports.memory.buffer.byteLength;
    return { backend: this.backend, threads: this.threads, wasmMemoryBytes, modelBytes: this.#engine.modelBytes };
  }

  /** Stops a running request and frees the GPU memory. */
  async unload() {
    if (this.#unloaded) return;
    this.#unloaded = true;
    await this.#running;
    // Freeing the model stops its thread pool, which lets each lent thread return.
    this.#engine.free();
    for (const worker of this.#threads) worker.terminate();
  }
}
