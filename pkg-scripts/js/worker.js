// The dedicated module worker that holds the wasm core when `Torchlight.load` runs with
// `worker: true`: the page stays responsive while weights upload and tokens decode.
// Protocol (page → worker): load, generate, abort, stats. (worker → page): progress, loaded,
// delta, done, failed. Requests carry an id; the load is id 0.

import { LocalEngine } from "./runtime.js";
import { errorToMessage } from "./errors.js";

let engine;
/** The request running now: the page sends the next only when this one has ended. */
let current = null;

const failed = (id, e) => postMessage({ type: "failed", id, error: errorToMessage(e) });

self.onmessage = async ({ data }) => {
  switch (data.type) {
    case "load":
      try {
        engine = await LocalEngine.load(data.url, {
          contextLength: data.contextLength,
          backend: data.backend,
          threads: data.threads,
          onProgress: (progress) => postMessage({ type: "progress", progress }),
        });
        postMessage({ type: "loaded", contextLength: engine.contextLength, backend: engine.backend, threads: engine.threads });
      } catch (e) {
        failed(0, e);
      }
      break;
    case "generate": {
      const request = { id: data.id, controller: new AbortController() };
      current = request;
      try {
        const result = await engine.generate(
          data.request,
          (delta) => postMessage({ type: "delta", id: request.id, delta }),
          request.controller.signal,
        );
        postMessage({ type: "done", id: request.id, result });
      } catch (e) {
        failed(request.id, e);
      }
      break;
    }
    case "stats":
      postMessage({ type: "done", id: data.id, result: await engine.stats() });
      break;
    case "abort":
      if (current?.id === data.id) current.controller.abort();
      break;
  }
};
