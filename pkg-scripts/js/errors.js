/** Every failure Torchlight reports: a message for people and a stable `code` for programs. */
export class TorchlightError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {ErrorOptions} [options]
   */
  constructor(code, message, options) {
    super(message, options);
    this.name = "TorchlightError";
    this.code = code;
  }
}

export function abortedError(message = "the operation was aborted") {
  return new TorchlightError("aborted", message);
}

/** Any thrown value as a TorchlightError: errors from the wasm core already carry a `code`. */
export function asTorchlightError(e) {
  if (e instanceof TorchlightError) return e;
  if (e?.name === "AbortError") return abortedError();
  if (typeof e?.code === "string" && typeof e?.message === "string") {
    const error = new TorchlightError(e.code, e.message);
    // The one detail a page acts on (cloud_rate_limited), kept across the copy.
    if (typeof e.retryAfter === "number") error.retryAfter = e.retryAfter;
    return error;
  }
  // A wasm trap (a bug in the core: its panic message went to the console) or a JS bug.
  return new TorchlightError("internal", `internal error: ${e?.message ?? e}`, { cause: e });
}

/** What crosses postMessage: structured clone keeps an Error's message but drops `code`. */
export function errorToMessage(e) {
  const error = asTorchlightError(e);
  return { code: error.code, message: error.message };
}
