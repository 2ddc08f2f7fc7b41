// The dedicated module worker that holds the wasm core when `Torchlight.load` runs with
// `worker: true`: the page stays responsive while weights upload and tokens decode.
// Protocol (page → worker): load, generate, abort, stats, ping. (worker → page): progress,
// delta, done, failed, each with its request's id (the load is id 0); alive, a sign of life for
// the page's watchdog (watchdog.js); crashed, when the core has trapped and the page is to end
// this worker.

import { LocalEngine, trapError } from "./runtime.js";
import { errorToMessage } from "./errors.js";

let engine;
/** The request running now: the page sends the next only when this one has ended. */
let current = null;

const alive = () => postMessage({ type: "alive" });

/** The core trapped: nothing it holds is to be trusted again, and the page ends this worker. */
const crashed = (error) => postMessage({ type: "crashed", error: errorToMessage(error) });

/** Posts what `run` resolves to as request `id`'s answer, or why it failed. */
async function answer(id, run) {
  try {
    postMessage({ type: "done", id, result: await run() });
  } catch (e) {
    const trap = trapError(e);
    if (trap) crashed(trap);
    else postMessage({ type: "failed", id, error: errorToMessage(e) });
  }
}

// A trap inside the core's async calls (a wasm-bindgen future's poll) is thrown where nothing
// awaits it: the request it belonged to would never end.
self.addEventListener("error", (event) => {
  event.preventDefault();
  crashed(trapError(event.error) ?? event.error ?? event.message);
});
self.addEventListener("unhandledrejection", (event) => {
  const trap = trapError(event.reason);
  if (!trap) return;
  event.preventDefault();
  crashed(trap);
});

self.onmessage = ({ data }) => {
  switch (data.type) {
    case "ping":
      alive();
      break;
    case "load":
      answer(0, async () => {
        engine = await LocalEngine.load(data.url, {
          contextLength: data.contextLength,
          chatTemplate: data.chatTemplate,
          backend: data.backend,
          threads: data.threads,
          onProgress: (progress) => postMessage({ type: "progress", id: 0, progress }),
          onBusy: alive,
        });
        return { contextLength: engine.contextLength, backend: engine.backend, threads: engine.threads };
      });
      break;
    case "generate": {
      const request = { id: data.id, controller: new AbortController() };
      current = request;
      const onDelta = (delta) => postMessage({ type: "delta", id: request.id, delta });
      answer(request.id, () => engine.generate(data.request, onDelta, request.controller.signal));
      break;
    }
    case "stats":
      answer(data.id, () => engine.stats());
      break;
    case "abort":
      if (current?.id === data.id) current.controller.abort();
      break;
  }
};

// The script runs: from here on the page's watchdog counts silence (fetching the scripts over a
// slow network is no hang).
alive();
