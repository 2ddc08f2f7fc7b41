// torchlight: quantized GGUF language models on WebGPU, in a browser tab.

import { assetsUrl, setAssetsUrl } from "./assets.js";
import * as cache from "./cache.js";
import { Cloud } from "./cloud.js";
import * as consent from "./consent.js";
import { Engine } from "./engine.js";
import { TorchlightError, abortedError } from "./errors.js";
import { RemoteEngine } from "./remote.js";
import { LocalEngine, estimate } from "./runtime.js";
import { sourceOf } from "./download.js";
import { DEFAULT_WATCHDOG_MS } from "./watchdog.js";

export { TorchlightError };

/** This package's version, as its package.json says (pkg-scripts/build-npm.sh checks that they agree). */
export const version = "0.1.0";

/** The limits that decide which models fit: how large one weight buffer may be. */
const LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
];

export class Torchlight {
  /** This package's version. */
  static version = version;

  /**
   * The URL of a folder that holds a copy of the package (its worker scripts and wasm cores), for
   * a bundler that does not copy them into the build as Vite, webpack and Next.js do: esbuild.
   * Undefined (the default): beside the package's modules. Set it before the first load.
   */
  static get assetsUrl() {
    return assetsUrl();
  }

  static set assetsUrl(url) {
    setAssetsUrl(url);
  }

  /** The IndexedDB weight cache: `list()`, `delete(url)`, `usage()`. */
  static cache = { list: cache.list, delete: cache.delete, usage: cache.usage };

  /** The remembered "always" cloud decisions, without loading a model: `list()`, `revoke(endpoint)`. */
  static consent = { list: consent.list, revoke: consent.revoke };

  /**
   * What this browser offers: WebGPU, its adapter, features and limits, storage, and the
   * backend `backend: "auto"` picks here ("gpu", or "cpu" where the only adapter is a software
   * fallback, which the CPU backend outruns, or there is none), and the threads the CPU backend
   * would run on (`cpuThreads`: more than 1 only where the page is cross-origin isolated).
   */
  static async probe() {
    const storage = await globalThis.navigator?.storage?.estimate?.().catch(() => null);
    const persisted = await globalThis.navigator?.storage?.persisted?.().catch(() => false);
    const caps = {
      webgpu: false,
      adapter: null,
      shaderF16: false,
      subgroups: false,
      limits: null,
      storage: storage ? { usage: storage.usage, quota: storage.quota, persisted: !!persisted } : null,
      backend: "cpu",
      crossOriginIsolated: !!globalThis.crossOriginIsolated,
      cpuThreads: chooseThreads(undefined, { backend: "cpu", worker: true }),
    };
    const gpu = globalThis.navigator?.gpu;
    const adapter = await gpu?.requestAdapter({ powerPreference: "high-performance" }).catch(() => null);
    if (!adapter) return caps;
    const info = adapter.info ?? {};
    caps.webgpu = true;
    caps.adapter = {
      vendor: info.vendor ?? "",
      architecture: info.architecture ?? "",
      device: info.device ?? "",
      description: info.description ?? "",
      isFallbackAdapter: !!(info.isFallbackAdapter ?? adapter.isFallbackAdapter),
    };
    caps.shaderF16 = adapter.features.has("shader-f16");
    caps.subgroups = adapter.features.has("subgroups");
    caps.limits = Object.fromEntries(LIMITS.map((name) => [name, adapter.limits[name]]));
    caps.backend = caps.adapter.isFallbackAdapter ? "cpu" : "gpu";
    return caps;
  }

  /**
   * Whether the model at `url` can run here, and what it needs, from its GGUF header alone
   * (range requests for its first bytes, or the cache when it holds the whole file).
   */
  static async estimate(url, { contextLength, backend = "auto", signal } = {}) {
    const absolute = resolve(url);
    const caps = await Torchlight.probe();
    backend = chooseBackend(backend, caps);
    const bindingLimit = caps.limits ? Math.min(caps.limits.maxStorageBufferBindingSize, caps.limits.maxBufferSize) : undefined;
    const found = await estimate(absolute, { contextLength, backend, bindingLimit, signal });
    const reasons = [...found.problems];
    if (backend === "gpu" && !caps.webgpu) reasons.unshift("this browser offers no WebGPU adapter");
    const shortfall = found.cached ? null : await cache.storageShortfall(found.bytes);
    if (shortfall) reasons.push(`the model cannot be stored on this device: ${shortfall}`);
    return {
      bytes: found.bytes,
      gpuBytes: found.gpuBytes,
      weightBytes: found.weightBytes,
      kvBytes: found.kvBytes,
      activationBytes: found.activationBytes,
      architecture: found.architecture,
      quantization: found.quantization,
      contextLength: found.contextLength,
      cached: found.cached,
      backend,
      fits: reasons.length === 0,
      reasons,
    };
  }

  /**
   * Downloads the GGUF model at `url` (relative to the page; or reads a File from the person's
   * disk, with no network at all) straight onto the GPU and returns an engine for it. The file
   * streams through in chunks, through the weight cache; it is never whole in memory.
   *
   * With `cloud` (an OpenAI-compatible endpoint and a consent callback), `route` decides where
   * requests go: "local-first" (the default with `cloud`) answers locally and turns to the
   * cloud only when the model cannot run here or a request cannot (device lost, prompt over
   * the context), always after consent; "cloud-only" loads nothing locally; "local-only" (the
   * default without `cloud`) never sends anything.
   *
   * In its worker, the model is watched: a load or request that gives no sign of life for
   * `watchdogMs` (default 30 s; 0 never) ends the worker and fails with code `unresponsive`.
   */
  static async load(url, { onProgress, contextLength, chatTemplate, worker = true, signal, cloud, route, backend = "auto", threads, watchdogMs = DEFAULT_WATCHDOG_MS } = {}) {
    if (signal?.aborted) throw abortedError();
    route ??= cloud ? "local-first" : "local-only";
    if (!["local-only", "local-first", "cloud-only"].includes(route)) {
      throw new TorchlightError("invalid_request", `route must be "local-only", "local-first" or "cloud-only", not ${JSON.stringify(route)}`);
    }
    if (!(typeof watchdogMs === "number" && watchdogMs >= 0)) {
      throw new TorchlightError("invalid_request", `watchdogMs must be a number of milliseconds (0: never), not ${JSON.stringify(watchdogMs)}`);
    }
    if (chatTemplate !== undefined && typeof chatTemplate !== "string") {
      throw new TorchlightError("invalid_request", "chatTemplate must be a Jinja template's source, a string");
    }
    if (route !== "local-only" && !cloud) {
      throw new TorchlightError("invalid_request", `route ${route} needs a cloud endpoint: pass \`cloud\``);
    }
    const remote = cloud ? new Cloud(cloud) : null;
    const absolute = resolve(url);
    const model = sourceOf(absolute).name;
    if (route === "cloud-only") return new Engine({ local: null, cloud: remote, route, model: remote.model });
    try {
      const local = await loadLocal(absolute, { contextLength, chatTemplate, signal, onProgress, worker, backend, threads, watchdogMs });
      return new Engine({ local, cloud: remote, route, model });
    } catch (error) {
      if (route === "local-only" || error.code === "aborted") throw error;
      const localFailure = { reason: LOCAL_FAILURES[error.code] ?? "load_failed", error };
      return new Engine({ local: null, cloud: remote, route, localFailure, model });
    }
  }
}

/**
 * A model URL made absolute (the worker would resolve a relative one against its own script),
 * or a Blob (a File from the person's disk) as it is.
 */
function resolve(file) {
  if (typeof Blob !== "undefined" && file instanceof Blob) return file;
  return new URL(file, globalThis.location?.href).href;
}

/** Why a "local-first" engine answers from the cloud, by the code its local load failed with. */
const LOCAL_FAILURES = { no_webgpu: "no_webgpu", gpu_limit: "does_not_fit", does_not_fit: "does_not_fit", quota_exceeded: "does_not_fit" };

/** Most threads the CPU backend takes by default: past this a small model's products gain little. */
const MAX_THREADS = 8;

/**
 * Threads for the CPU backend: `threads` but no more than one per core (by default one per
 * core, up to MAX_THREADS). Several need wasm memory shared between workers, so a cross-origin
 * isolated page, and the engine in a worker (a page's main thread may not wait on the others);
 * else one.
 */
function chooseThreads(threads, { backend, worker }) {
  if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1)) {
    throw new TorchlightError("invalid_request", `threads must be a whole number of at least 1, not ${JSON.stringify(threads)}`);
  }
  if (backend !== "cpu" || !worker || !globalThis.crossOriginIsolated) return 1;
  const cores = Math.max(1, globalThis.navigator?.hardwareConcurrency ?? 1);
  return Math.min(threads ?? MAX_THREADS, cores);
}

/** The backend a load asked for, with "auto" settled by what the browser offers. */
function chooseBackend(backend, caps) {
  if (!["auto", "gpu", "cpu"].includes(backend)) {
    throw new TorchlightError("invalid_request", `backend must be "auto", "gpu" or "cpu", not ${JSON.stringify(backend)}`);
  }
  return backend === "auto" ? caps.backend : backend;
}

/**
 * The model on `backend` ("auto", "gpu" or "cpu"); with "gpu", fails with `no_webgpu` before any
 * download where there is no adapter.
 */
async function loadLocal(url, { worker, backend, threads, ...options }) {
  const caps = await Torchlight.probe();
  backend = chooseBackend(backend, caps);
  if (backend === "gpu" && !caps.webgpu) {
    const why = globalThis.navigator?.gpu ? "offers WebGPU but no adapter (no usable GPU, or it is blocklisted)" : "does not offer WebGPU";
    throw new TorchlightError("no_webgpu", `this browser ${why}`);
  }
  options.backend = backend;
  options.threads = chooseThreads(threads, { backend, worker });
  return worker ? RemoteEngine.load(url, options) : LocalEngine.load(url, options);
}
