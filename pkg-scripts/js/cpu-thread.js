// One of the CPU backend's extra threads (see threads.js): instantiates the threaded core over
// the shared memory it is sent, says so, then runs pool tasks until the model is freed.

import { initSync, lendThread, threadFailed } from "./threads/torchlight_core.js";

self.onmessage = ({ data: { module, memory, pool } }) => {
  try {
    initSync({ module, memory });
  } catch (e) {
    postMessage({ type: "failed", message: String(e?.message ?? e) });
    return;
  }
  postMessage({ type: "lending" });
  try {
    lendThread(pool);
  } catch (e) {
    // A trap (its panic message is on the console): the task this thread held will never end.
    threadFailed(pool);
    throw e;
  }
  close();
};
