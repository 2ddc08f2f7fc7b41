// The CPU backend's extra threads in the browser: Web Workers that instantiate the threaded wasm
// core over the engine's shared memory and lend their threads to its pool (`lendThread`), where
// they run their share of every matrix product until the model is freed.

import { beside, isCrossOrigin, missingAssetError, moduleWorker, whyScriptFailed } from "./assets.js";
import { TorchlightError } from "./errors.js";

/** This module's URL, kept apart from `new URL(..., import.meta.url)` so that bundlers see only the worker's. */
const here = import.meta.url;

/**
 * Thread `index`'s worker, `cpu-thread.js`: as `new Worker(new URL(...), ...)`, the form
 * bundlers follow, or through a same-origin module when this package came from another origin.
 */
function startThread(index) {
  const name = `torchlight-cpu-${index}`;
  if (isCrossOrigin(here)) return moduleWorker(new URL("cpu-thread.js", here), name);
  return new Worker(new URL("./cpu-thread.js", import.meta.url), { type: "module", name });
}

/**
 * Starts `count` workers lending their threads to pool `pool` of `core` (a threaded core from
 * `loadCore`); resolves with them once each has instantiated the core, or fails, stopping all.
 */
export async function startThreads(core, pool, count) {
  const workers = [];
  const started = (index) =>
    new Promise((resolve, reject) => {
      const worker = startThread(index);
      workers.push(worker);
      const fail = (why) => reject(new TorchlightError("internal", `CPU thread ${index} did not start: ${why}`));
      worker.onmessage = ({ data }) => (data.type === "lending" ? resolve() : fail(data.message));
      worker.onerror = async (event) => {
        event.preventDefault();
        if (event.message) return fail(event.message);
        // No message: its script did not load (a 404, an HTML page in its place).
        const url = beside("cpu-thread.js", here);
        reject(missingAssetError(`CPU thread ${index}'s worker script`, url, await whyScriptFailed(url)));
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
