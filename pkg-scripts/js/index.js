// torchlight: quantized GGUF language models on WebGPU, in a browser tab.

import * as cache from "./cache.js";
import { Engine } from "./engine.js";
import { TorchlightError, abortedError } from "./errors.js";
import { RemoteEngine } from "./remote.js";

export { TorchlightError };

/** The limits that decide which models fit: how large one weight buffer may be. */
const LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
];

export class Torchlight {
  /** The IndexedDB weight cache: `list()`, `delete(url)`, `usage()`. */
  static cache = { list: cache.list, delete: cache.delete, usage: cache.usage };

  /** What this browser offers: WebGPU, its adapter, features and limits, and storage. */
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
    return caps;
  }

  /**
   * Whether the model at `url` can run here, and what it needs, from its GGUF header alone
   * (range requests for its first bytes, or the cache when it holds the whole file).
   */
  static async estimate(url, { contextLength, signal } = {}) {
    const absolute = new URL(url, globalThis.location?.href).href;
    const caps = await Torchlight.probe();
    const bindingLimit = caps.limits ? Math.min(caps.limits.maxStorageBufferBindingSize, caps.limits.maxBufferSize) : undefined;
    const { estimate } = await import("./runtime.js");
    const found = await estimate(absolute, { contextLength, bindingLimit, signal });
    const reasons = [...found.problems];
    if (!caps.webgpu) reasons.unshift("this browser offers no WebGPU adapter");
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
      fits: reasons.length === 0,
      reasons,
    };
  }

  /**
   * Downloads the GGUF model at `url` (relative to the page) straight onto the GPU and returns
   * an engine for it. The file streams through in chunks, through the weight cache; it is never
   * whole in memory.
   */
  static async load(url, { onProgress, contextLength, worker = true, signal } = {}) {
    if (signal?.aborted) throw abortedError();
    if (!globalThis.navigator?.gpu) {
      throw new TorchlightError("no_webgpu", "this browser does not offer WebGPU (navigator.gpu is missing)");
    }
    // The worker resolves relative URLs against its own script, so resolve them here.
    const absolute = new URL(url, globalThis.location?.href).href;
    const options = { contextLength, signal, onProgress };
    const core = worker
      ? await RemoteEngine.load(absolute, options)
      : await (await import("./runtime.js")).LocalEngine.load(absolute, options);
    const model = decodeURIComponent(new URL(absolute).pathname.split("/").pop() || absolute);
    return new Engine(core, model);
  }
}
