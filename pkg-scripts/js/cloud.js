// The lighthouse: an OpenAI-compatible endpoint (a hosted API, or a self-hosted vLLM, llama.cpp
// server or Ollama) that a request reaches only after the person said yes. The network is
// here; what comes back is parsed by the wasm core (`cloudCompletion`, `CloudStream`,
// `cloudFailure`). Nothing is logged, and nothing is ever sent twice: a failure is reported,
// never retried.

import { CloudStream, cloudCompletion, cloudFailure } from "./torchlight_core.js";
import { originOf, rememberAlways, remembered } from "./consent.js";
import { TorchlightError, abortedError, asTorchlightError } from "./errors.js";
import { loadCore } from "./runtime.js";

/** The request fields an OpenAI-compatible endpoint takes, sent as the page gave them; Torchlight's own (`top_k`, ...) stay home. */
const OPENAI_FIELDS = [
  "temperature",
  "top_p",
  "max_tokens",
  "stop",
  "seed",
  "presence_penalty",
  "frequency_penalty",
  "response_format",
  "tools",
  "tool_choice",
  "parallel_tool_calls",
  "logprobs",
  "top_logprobs",
  "logit_bias",
  "stream_options",
];

/**
 * Torchlight's own constraints, which no endpoint reads as Torchlight does (llama.cpp's server
 * would take a Lark `grammar` as GBNF): a request with one is refused, not sent without it.
 */
const LOCAL_ONLY_FIELDS = ["grammar", "regex"];

const denied = (message) => new TorchlightError("consent_denied", message);

/** About how many tokens `messages` make, for the consent prompt: 4 characters a token, plus each message's framing. */
function estimateTokens(messages) {
  return messages.reduce((n, m) => n + Math.ceil(String(m.content ?? "").length / 4) + 4, 0);
}

export class Cloud {
  #baseURL;
  #model;
  #apiKey;
  #consent;
  #rememberKey;

  constructor({ baseURL, model, apiKey, consent, rememberKey = false } = {}) {
    let url;
    try {
      url = new URL(baseURL, globalThis.location?.href);
    } catch {
      throw new TorchlightError("invalid_request", `cloud.baseURL is not a URL: ${JSON.stringify(baseURL)}`);
    }
    if (typeof model !== "string" || !model) {
      throw new TorchlightError("invalid_request", "cloud.model must name the endpoint's model");
    }
    this.#baseURL = url.href.replace(/\/+$/, "");
    this.#model = model;
    this.#apiKey = apiKey;
    this.#consent = consent;
    this.#rememberKey = rememberKey;
  }

  get model() {
    return this.#model;
  }

  /**
   * Answers one request (`params`: the page's OpenAI-shaped request) in the cloud, once the
   * person agreed; `reason` says why it goes there. When `stream` is set, `onDelta` hears what
   * each chunk adds: `{ content?, tool_calls?, logprobs? }` (see `read`). Resolves to
   * `{ content, tool_calls?, logprobs?, finish_reason, usage, timings }`, streamed or not.
   */
  async generate(params, onDelta, signal, { reason, stream }) {
    const local = LOCAL_ONLY_FIELDS.find((key) => params[key] != null);
    if (local) {
      throw new TorchlightError("invalid_request", `invalid request: \`${local}\` is Torchlight's own and cannot go to a cloud endpoint, so nothing was sent`);
    }
    await this.#permit(params.messages, reason);
    if (signal?.aborted) throw abortedError();
    await loadCore();
    const body = { model: this.#model, messages: params.messages, stream };
    for (const key of OPENAI_FIELDS) if (params[key] !== undefined) body[key] = params[key];
    const headers = { "Content-Type": "application/json" };
    if (this.#apiKey) headers.Authorization = `Bearer ${this.#apiKey}`;

    const start = performance.now();
    let response;
    try {
      response = await fetch(`${this.#baseURL}/chat/completions`, { method: "POST", headers, body: JSON.stringify(body), signal });
    } catch (e) {
      if (signal?.aborted) throw abortedError();
      throw new TorchlightError("cloud_unreachable", `cannot reach the cloud endpoint ${originOf(this.#baseURL)}: ${e?.message ?? e}`);
    }
    try {
      if (!response.ok) {
        throw cloudFailure(response.status, response.headers.get("Retry-After") ?? undefined, await response.text());
      }
      return stream ? await read(response, onDelta, start, this.#baseURL) : answer(cloudCompletion(await response.text()), start);
    } catch (e) {
      if (signal?.aborted) throw abortedError();
      throw asTorchlightError(e);
    }
  }

  /** Resolves when this request may go out; rejects with `consent_denied` (nothing sent) otherwise. */
  async #permit(messages, reason) {
    const stored = await remembered(this.#baseURL);
    if (stored) {
      this.#apiKey ??= stored.apiKey;
      return;
    }
    if (typeof this.#consent !== "function") {
      throw denied("no consent callback was given, so nothing is sent to the cloud");
    }
    const request = {
      reason,
      endpoint: this.#baseURL,
      model: this.#model,
      messages: structuredClone(messages),
      estimatedTokens: estimateTokens(messages),
    };
    let decision;
    try {
      decision = await this.#consent(request);
    } catch (e) {
      throw denied(`the consent callback failed (${e?.name ?? "error"}), so nothing was sent`);
    }
    if (decision === "always") {
      await rememberAlways(this.#baseURL, this.#rememberKey ? this.#apiKey : undefined);
    } else if (decision === "deny") {
      throw denied(`sending this request to ${originOf(this.#baseURL)} was declined`);
    } else if (decision !== "once") {
      throw denied(`the consent callback answered ${JSON.stringify(decision)}, not "once", "always" or "deny", so nothing was sent`);
    }
  }
}

/**
 * A parsed answer (`tool_calls` and `logprobs` present only when the endpoint sent them) with
 * the time it took: all of it is time to first token when not streamed.
 */
function answer(parsed, start, firstAt = performance.now()) {
  const end = performance.now();
  return { ...parsed, timings: { prefill_ms: firstAt - start, decode_ms: end - firstAt } };
}

/**
 * Reads a server-sent event stream to its end, passing on what each chunk adds as it arrives:
 * `{ content?, tool_calls?, logprobs? }`, never empty. `content` is a piece of text;
 * `tool_calls` are OpenAI's pieces, `{ index, id?, type?, function?: { name?, arguments? } }`
 * (a call's first piece has its id, type and name, later ones fragments of its arguments);
 * `logprobs` is the chunk's `logprobs.content`, an entry per token. The result has the calls
 * joined and `logprobs` as `{ content: [...] }`, every chunk's entries, as a whole answer has it.
 */
async function read(response, onDelta, start, endpoint) {
  const stream = new CloudStream();
  const reader = response.body.getReader();
  let content = "";
  let firstAt;
  try {
    for (;;) {
      let step;
      try {
        step = await reader.read();
      } catch (e) {
        throw new TorchlightError("cloud_unreachable", `the connection to ${originOf(endpoint)} broke in the middle of the answer: ${e?.message ?? e}`);
      }
      const { done, value } = step;
      if (done) break;
      for (const delta of stream.push(value)) {
        firstAt ??= performance.now();
        content += delta.content ?? "";
        onDelta(delta);
      }
    }
    return answer({ content, ...stream.end() }, start, firstAt);
  } finally {
    stream.free();
    reader.cancel().catch(() => {});
  }
}
