// The CPU backend's extra threads in the browser: Web Workers that instantiate the threaded wasm
// core over the engine's shared memory and lend their threads to its pool (`lendThread`), where
// they run their share of every matrix product until the model is freed.

import { TorchlightError } from "./errors.js";

/**
 * Starts `count` workers lending their threads to pool `pool` of `core` (a threaded core from
 * `loadCore`); resolves with them once each has instantiated the core, or fails, stopping all.
 */
export async function startThreads(core, pool, count) {
  const workers = [];
  const started = (index) =>
    new Promise((resolve, reject) => {
      const worker = new Worker(new URL("./cpu-thread.js", import.meta.url), { type: "module", name: `torchlight-cpu-${index}` });
      workers.push(worker);
      const fail = (why) => reject(new TorchlightError("internal", `CPU thread ${index} did not start: ${why}`));
      worker.onmessage = ({ data }) => (data.type === "lending" ? resolve() : fail(data.message));
      worker.onerror = (event) => {
        event.preventDefault();
        fail(event.message || "the worker script failed to load");
      };
      worker.postMessage({ module: core.module, memory: core.exports.memory, pool });
    });
  try {
    await Promise.all(Array.from({ length: count }, (_, i) => started(i + 1)));
    return workers;
  } catch (e) {
    for (const worker of workers) worker.terminate();
    throw e;
  }
}
