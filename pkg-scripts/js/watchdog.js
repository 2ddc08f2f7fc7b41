// The page's guard over the engine's worker. A worker busy in a wasm loop hears no messages, so
// a core that stops answering (a bug, or a model file that slipped past its checks) can only be
// ended from the page. While the worker has work, the page pings it; any message from it (load
// progress, a token, an answer to a ping, the core's heartbeat from inside a long CPU step)
// shows that it still runs. After `timeoutMs` without one, the page gives up on it.

import { TorchlightError } from "./errors.js";

/**
 * `watchdogMs` when a load does not say: far past the longest the worker legitimately goes
 * without a word outside the CPU's products, which send heartbeats (reading Gemma 3's header
 * and building its 262,144-token vocabulary: under a second on this project's VMs).
 */
export const DEFAULT_WATCHDOG_MS = 30_000;

/** Most milliseconds between two looks at the silence. */
const MAX_TICK_MS = 1000;

/** What a request fails with once the watchdog has ended the worker. */
export function unresponsiveError(timeoutMs) {
  return new TorchlightError(
    "unresponsive",
    `the engine gave no sign of life for ${timeoutMs / 1000} s (a model file that makes its core loop, or a bug) and was ended: load a model again`,
  );
}

export class Watchdog {
  #timeoutMs;
  #ping;
  #onSilent;
  #tick;
  #timer = null;
  /** Whether the worker has work (only then is silence a sign of trouble). */
  #busy = false;
  /** Whether the worker's script has run: fetching it over a slow network is no hang. */
  #started = false;
  #silentMs = 0;
  #last = 0;
  #pinged = false;

  /**
   * @param {number} timeoutMs the silence that ends the worker; 0 or Infinity: none does
   * @param {object} hooks
   * @param {() => void} hooks.ping asks the worker for a sign of life
   * @param {() => void} hooks.onSilent called once `timeoutMs` have passed without one
   */
  constructor(timeoutMs, { ping, onSilent }) {
    this.#timeoutMs = timeoutMs;
    this.#ping = ping;
    this.#onSilent = onSilent;
    this.#tick = Math.min(MAX_TICK_MS, timeoutMs / 4);
  }

  /** The worker has work from now on. */
  start() {
    this.#busy = true;
    this.#watch();
  }

  /** The worker has nothing left to do. */
  stop() {
    this.#busy = false;
    clearInterval(this.#timer);
    this.#timer = null;
  }

  /** The worker gave a sign of life. */
  heard() {
    this.#started = true;
    this.#silentMs = 0;
    this.#last = performance.now();
    this.#pinged = false;
    this.#watch();
  }

  #watch() {
    const enabled = this.#timeoutMs > 0 && this.#timeoutMs < Infinity;
    if (!enabled || !this.#busy || !this.#started || this.#timer !== null) return;
    this.#silentMs = 0;
    this.#last = performance.now();
    this.#timer = setInterval(() => this.#check(), this.#tick);
  }

  #check() {
    const now = performance.now();
    // A tick that comes late means the page itself did not run (a throttled or frozen tab),
    // and its worker's messages waited too: it counts as two ticks at most.
    this.#silentMs += Math.min(now - this.#last, 2 * this.#tick);
    this.#last = now;
    if (this.#silentMs >= this.#timeoutMs) {
      this.stop();
      this.#onSilent();
    } else if (!this.#pinged) {
      this.#pinged = true;
      this.#ping();
    }
  }
}
