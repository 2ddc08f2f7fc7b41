/** Stable codes of {@link TorchlightError}. */
export type TorchlightErrorCode =
  /** The file does not start with "GGUF". */
  | "not_gguf"
  /** The file ends before its header or tensor data do. */
  | "truncated"
  /** A tensor type Torchlight has no kernels for (IQ*, TQ*, MXFP4, ...). */
  | "unsupported_quant"
  /** A model architecture (or tokenizer) Torchlight does not run. */
  | "unsupported_arch"
  /**
   * A GGUF file that is malformed or inconsistent (missing keys, bad shapes, broken template),
   * or whose header runs on past 64 MiB or asks for more memory than wasm memory holds.
   */
  | "invalid_model"
  /** The download failed: an HTTP error status, a dropped connection, no network. */
  | "network"
  /** A cached download cannot go on: the file changed on the server since its first chunks were stored. */
  | "integrity"
  /** The browser's storage quota has no room to cache the model; nothing of it was kept. */
  | "quota_exceeded"
  /** No WebGPU in this browser, or no adapter or device it would give. */
  | "no_webgpu"
  /** The GPU device was lost (driver reset, too much memory); load again. */
  | "device_lost"
  /** A model weight is larger than one GPU buffer binding may be on this device. */
  | "gpu_limit"
  /**
   * The model is too large for the CPU backend's wasm memory (4 GiB at most), or the engine ran
   * out of wasm memory: its worker is then ended, and it fails every later request the same way.
   */
  | "does_not_fit"
  /** The GPU reported an error. */
  | "gpu"
  /** The prompt does not fit the context (see `contextLength`). */
  | "context_overflow"
  /** A request field is missing or out of range, or the chat template refused the messages. */
  | "invalid_request"
  /** An `AbortSignal` fired, a stream was left early, or the engine was unloaded. */
  | "aborted"
  /** Nothing was sent to the cloud: no consent callback, it answered "deny", or it threw. */
  | "consent_denied"
  /** The cloud endpoint could not be reached, or the connection broke mid-answer. */
  | "cloud_unreachable"
  /** The cloud endpoint refused the key (HTTP 401 or 403). */
  | "cloud_auth"
  /** HTTP 429; `retryAfter` holds the seconds to wait when the endpoint says (and exposes Retry-After). */
  | "cloud_rate_limited"
  /** Any other HTTP failure (5xx, 4xx). */
  | "cloud_error"
  /** The endpoint's answer was not OpenAI-shaped JSON or SSE, or its stream ended before the answer did. */
  | "cloud_protocol"
  /**
   * The engine's worker gave no sign of life for `watchdogMs` (a model file that makes the core
   * loop, or a bug) and was ended. The engine fails this and every later request with the same
   * error; `unload()` it and `Torchlight.load` again (a new worker).
   */
  | "unresponsive"
  /**
   * A file of the package (the engine's worker script, a wasm core) is not where the package
   * looks for it: the app's build did not keep it beside the package's modules (esbuild: copy
   * the package and set `Torchlight.assetsUrl`). The message names the URL and what was there.
   */
  | "assets_not_found"
  /**
   * A bug in Torchlight. A panic in the core ends the engine's worker, and the engine fails
   * every later request the same way.
   */
  | "internal";

export class TorchlightError extends Error {
  readonly name: "TorchlightError";
  readonly code: TorchlightErrorCode;
  /** With `cloud_rate_limited`: seconds to wait, when the endpoint said. */
  readonly retryAfter?: number;
}

/** Why a request went to the cloud. */
export type CloudReason = "requested" | "no_webgpu" | "load_failed" | "device_lost" | "context_overflow" | "does_not_fit";

/** Where an answer came from. */
export interface Route {
  used: "local" | "cloud";
  /** Set when `used` is "local". */
  backend?: Backend;
  /** Set when `used` is "cloud". */
  reason?: CloudReason;
}

/** What the consent callback is asked, before the first byte of a request goes out. */
export interface ConsentRequest {
  reason: CloudReason;
  /** The endpoint's base URL; "always" covers its whole origin. */
  endpoint: string;
  model: string;
  messages: ChatMessage[];
  /** A rough count (about 4 characters a token) of the prompt's tokens. */
  estimatedTokens: number;
}

export type ConsentDecision = "once" | "always" | "deny";

/** An OpenAI-compatible endpoint: POST `{baseURL}/chat/completions`. */
export interface CloudOptions {
  baseURL: string;
  model: string;
  /** Sent as `Authorization: Bearer`. Kept in memory only, unless `rememberKey`. */
  apiKey?: string;
  /** Stores the key beside an "always" decision (until it is revoked). Default false. */
  rememberKey?: boolean;
  /** Asked before each request that is not covered by a remembered "always". Without it nothing is ever sent. */
  consent?: (request: ConsentRequest) => ConsentDecision | Promise<ConsentDecision>;
}

/** Remembered "always" decisions, per endpoint origin. */
export interface ConsentStore {
  list(): Promise<{ endpoint: string; decision: "always"; since: number }[]>;
  /** Forgets the decision (and any stored key) for the origin of `endpoint`. */
  revoke(endpoint: string): Promise<void>;
}

export interface Capabilities {
  webgpu: boolean;
  adapter: {
    vendor: string;
    architecture: string;
    device: string;
    description: string;
    isFallbackAdapter: boolean;
  } | null;
  shaderF16: boolean;
  subgroups: boolean;
  limits: {
    maxStorageBufferBindingSize: number;
    maxBufferSize: number;
    maxComputeWorkgroupStorageSize: number;
    maxComputeInvocationsPerWorkgroup: number;
    maxComputeWorkgroupSizeX: number;
  } | null;
  storage: { usage: number; quota: number; persisted: boolean } | null;
  /** Where `backend: "auto"` runs a model here: "gpu", or "cpu" with no adapter or only a software fallback one. */
  backend: Backend;
  /** Whether the page is cross-origin isolated (COOP and COEP headers), which CPU threads need. */
  crossOriginIsolated: boolean;
  /** Threads the CPU backend runs on here by default: one per core (at most 8) when isolated, else 1. */
  cpuThreads: number;
}

/** Where a model runs: WebGPU, or the CPU (wasm SIMD) in the worker. */
export type Backend = "gpu" | "cpu";

export interface LoadProgress {
  /**
   * "download" while the bytes come from the network, "cache" from the IndexedDB weight cache
   * (each piece goes to the GPU as it arrives); then "upload" while the GPU takes the last of
   * them, and "compile" while the GPU pipelines are built.
   */
  phase: "download" | "cache" | "upload" | "compile";
  /** Bytes of the file received so far (the model is complete at `totalBytes`). */
  loadedBytes: number;
  totalBytes: number;
  fromCache: boolean;
}

/** What `Torchlight.estimate` finds in a model's header. */
export interface Estimate {
  /** The file's length: what a download stores. */
  bytes: number;
  /** GPU memory the loaded model takes: weights + KV cache + activations. */
  gpuBytes: number;
  weightBytes: number;
  kvBytes: number;
  activationBytes: number;
  /** `general.architecture`, supported or not. */
  architecture: string;
  /** The weight type holding the most bytes ("Q4_1", "Q4_K", ...). */
  quantization: string;
  /** KV cache positions a load with the same `contextLength` would allocate. */
  contextLength: number;
  /** The cache holds the whole file: loading it needs no network. */
  cached: boolean;
  /** The backend the estimate is for (`gpuBytes` is then the memory the CPU backend takes). */
  backend: Backend;
  /** Nothing stands in the way: `reasons` is empty. */
  fits: boolean;
  /** Why it would not load, one sentence each (architecture, quant, WebGPU, device limits, storage). */
  reasons: string[];
}

export interface LoadOptions {
  onProgress?: (progress: LoadProgress) => void;
  /** Tokens the KV cache holds, prompt plus answer (default 2048, at most the model's own). */
  contextLength?: number;
  /**
   * A Jinja chat template's source, in place of the file's own (as llama.cpp's
   * `--chat-template-file`): say, one that shows tools for a file whose template has none. One
   * that does not parse fails the load with `invalid_request`.
   */
  chatTemplate?: string;
  /** Run the model in a dedicated Web Worker (default), or in this thread. */
  worker?: boolean;
  /** Cancels the load; it then rejects with code `aborted`. */
  signal?: AbortSignal;
  /**
   * "auto" (the default): the GPU when WebGPU offers an adapter that is not a software
   * fallback, else the CPU. "gpu" fails with `no_webgpu` where there is none.
   */
  backend?: "auto" | Backend;
  /**
   * Most threads the CPU backend runs on (default: one per core, at most 8; never more than
   * one per core). More than 1 needs
   * a cross-origin isolated page (COOP `same-origin` and COEP `require-corp` headers) and
   * `worker: true`; elsewhere the CPU backend runs on one thread.
   */
  threads?: number;
  /**
   * With `worker: true`: milliseconds the engine's worker may go without a sign of life (load
   * progress, a token, an answer to the page's ping, the core's heartbeat during a long CPU
   * step) while it has work, before the page ends it: the load or request then fails with
   * `unresponsive` (default 30000; 0 never). A load that runs in the page (`worker: false`)
   * cannot be watched.
   */
  watchdogMs?: number;
  /** A cloud endpoint, used only with the person's consent (see `route`). */
  cloud?: CloudOptions;
  /**
   * "local-only" (the default without `cloud`) never sends anything; "local-first" (the default
   * with `cloud`) answers locally and turns to the cloud only when the model cannot load or run
   * here; "cloud-only" loads nothing locally.
   */
  route?: "local-only" | "local-first" | "cloud-only";
}

/** A piece of a message's content: only text (image and audio parts fail with `invalid_request`). */
export interface TextContentPart {
  type: "text";
  text: string;
}

export interface ChatMessage {
  role: "system" | "user" | "assistant" | "tool" | (string & {});
  /** A string, or text parts (joined); null or absent for an assistant message that only calls tools. */
  content?: string | TextContentPart[] | null;
  /** An assistant message's calls, as an answer gave them: send them back for the loop to go on. */
  tool_calls?: ToolCall[];
  /** A `role: "tool"` message's answer to this call. */
  tool_call_id?: string;
  name?: string;
}

/** A JSON schema (draft 2020-12 keywords; local `$ref`s only). */
export type JsonSchema = Record<string, unknown> | boolean;

/**
 * OpenAI's `response_format`. `json_object`: any JSON object. `json_schema`: JSON that validates
 * against `schema`, always (the answer is constrained token by token; `strict` is accepted and
 * changes nothing). A schema keyword structured output cannot follow fails with `invalid_request`
 * naming it.
 */
export type ResponseFormat =
  | { type: "text" }
  | { type: "json_object" }
  | { type: "json_schema"; json_schema: { name: string; description?: string; schema?: JsonSchema; strict?: boolean } };

/** A function the model may call. `parameters` is the JSON schema its arguments follow. */
export interface Tool {
  type: "function";
  function: { name: string; description?: string; parameters?: JsonSchema; strict?: boolean };
}

/**
 * "auto" (default with tools): the model chooses. "none": the tools are not shown to it.
 * "required", or one function by name: the answer is a call, its arguments constrained to validate.
 */
export type ToolChoice = "auto" | "none" | "required" | { type: "function"; function: { name: string } };

export interface ToolCall {
  id: string;
  type: "function";
  /** `arguments` is a JSON string, as in OpenAI's API. */
  function: { name: string; arguments: string };
}

/** A streamed piece of a call: the first piece of call `index` has its id and name. */
export interface ToolCallDelta {
  index: number;
  id?: string;
  type?: "function";
  function?: { name?: string; arguments?: string };
}

/** One answer token's log probability, and the most likely alternatives at its step. */
export interface TokenLogprob {
  token: string;
  logprob: number;
  /** The token's UTF-8 bytes (a token may hold part of a character). */
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

/** The sampling fields both endpoints take. */
export interface SamplingParams {
  /** Tokens to generate at most (default: until the model stops or the context is full). */
  max_tokens?: number;
  max_completion_tokens?: number;
  /** 0 is greedy (default 1). */
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  repetition_penalty?: number;
  presence_penalty?: number;
  frequency_penalty?: number;
  seed?: number;
  stop?: string | string[];
  /** Token id (as a string key) to a bias in [-100, 100] added to its logit: -100 bans it, 100 all but forces it. */
  logit_bias?: Record<string, number>;
  /**
   * Reuse the cached keys and values of the longest prefix this prompt shares with the last
   * request's prompt and answer (default true, as in llama.cpp's server): a conversation's next
   * turn prefills only its new tokens. False times a whole prefill (benchmarks).
   */
  cache_prompt?: boolean;
  /** At most one of `response_format` (chat only), `grammar` and `regex`. */
  response_format?: ResponseFormat;
  /**
   * A grammar in llguidance's Lark dialect (`start: ...`; `%json { schema }` embeds a schema) the
   * answer must match. Local only: a cloud-routed request with it fails with `invalid_request`
   * (llama.cpp's server reads its `grammar` field as GBNF).
   */
  grammar?: string;
  /** A regular expression (Rust `regex` syntax) the whole answer must match. Local only, as `grammar`. */
  regex?: string;
  stream?: boolean;
  /** With `stream`: `include_usage` adds OpenAI's last chunk, with no choices and the usage. */
  stream_options?: { include_usage?: boolean };
  /** Aborting rejects the request (or ends its stream) with code `aborted`. */
  signal?: AbortSignal;
  /** Accepted, as OpenAI's SDK sends them; any other value of `n` than 1 fails. */
  model?: string;
  n?: 1;
  user?: string;
}

/**
 * Any field not listed here fails the request with `invalid_request` naming it, rather than being
 * ignored.
 */
export interface ChatCompletionParams extends SamplingParams {
  messages: ChatMessage[];
  /**
   * Passed to the model's chat template (default true, as in llama.cpp's server). A thinking
   * model's template may use it: Qwen3's, given false, writes an empty think block, so the model
   * answers at once. A constrained answer (`response_format`, `grammar`, `regex`) is always asked
   * for without thinking. Local answers only; it is not sent to a cloud endpoint.
   */
  enable_thinking?: boolean;
  /**
   * Functions the model may call, handed to its chat template (Qwen2.5/Qwen3, Llama 3.1+ and
   * Hermes-style templates take them). A model whose template has no tool support fails with
   * `invalid_request`.
   */
  tools?: Tool[];
  tool_choice?: ToolChoice;
  /**
   * Whether a required call (`tool_choice` "required") may be followed by more: default false
   * locally, as in llama.cpp's server (OpenAI's default is true; a cloud endpoint is sent what
   * the request says). With "auto", every call the model writes is read.
   */
  parallel_tool_calls?: boolean;
  /** Each answer token's log probability, from the logits the sampler saw (after `logit_bias` and any grammar's mask). */
  logprobs?: boolean;
  /** With `logprobs`: the up to 20 most likely tokens at each step. */
  top_logprobs?: number;
  /** Overrides the engine's route for this request: "cloud" (after consent) or "local". */
  route?: "local" | "cloud";
}

/** A raw-text completion: no chat template; local only. */
export interface CompletionParams extends SamplingParams {
  prompt: string;
}

/**
 * "length": `max_tokens` or the context ran out; under `response_format`, `grammar` or `regex`
 * the output is then incomplete and does not match (JSON that does not parse).
 * "tool_calls": the answer is one or more calls (`message.tool_calls`).
 */
export type FinishReason = "stop" | "length" | "tool_calls";

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** Local answers: prompt tokens found in the cache, so not prefilled again. */
  prompt_tokens_details?: { cached_tokens: number };
}

/** Milliseconds: prefill is the time to the first token, decode the rest. */
export interface Timings {
  prefill_ms: number;
  decode_ms: number;
}

export interface ChatCompletionMessage {
  role: "assistant";
  /** The answer, less its think blocks and tool calls; null when the answer is only calls. */
  content: string | null;
  /**
   * What a thinking model (its chat template names `<think>`: Qwen3, DeepSeek-R1) wrote between
   * `<think>` and `</think>`, trimmed, as llama.cpp's server reports it; absent when there was none.
   */
  reasoning_content?: string;
  /** The calls the answer made, parsed from the model's call syntax; absent when none. */
  tool_calls?: ToolCall[];
}

export interface ChatCompletion {
  id: string;
  object: "chat.completion";
  created: number;
  model: string;
  choices: [{ index: 0; message: ChatCompletionMessage; logprobs: { content: TokenLogprob[] } | null; finish_reason: FinishReason }];
  usage: Usage;
  /** Torchlight's addition: the generated token ids (local answers only). */
  tokens?: number[];
  /** Torchlight's addition. */
  timings: Timings;
  /** Torchlight's addition: where the answer came from. */
  route: Route;
}

export interface ChatCompletionChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  /** Empty in the usage-only chunk `stream_options.include_usage` adds. */
  choices: [
    {
      index: 0;
      delta: { role?: "assistant"; content?: string; reasoning_content?: string; tool_calls?: ToolCallDelta[] };
      logprobs: { content: TokenLogprob[] } | null;
      finish_reason: FinishReason | null;
    },
  ] | [];
  /** On the chunk with the finish reason, and the usage-only one. */
  usage?: Usage;
  /** Where the answer comes from. */
  route: Route;
  timings?: Timings;
}

export interface Completion {
  id: string;
  object: "text_completion";
  created: number;
  model: string;
  choices: [{ index: 0; text: string; logprobs: null; finish_reason: "stop" | "length" }];
  usage: Usage;
  tokens?: number[];
  timings: Timings;
  route: Route;
}

export interface CompletionChunk {
  id: string;
  object: "text_completion";
  created: number;
  model: string;
  choices: [{ index: 0; text: string; logprobs: null; finish_reason: "stop" | "length" | null }] | [];
  usage?: Usage;
  route: Route;
  timings?: Timings;
}

export interface Engine {
  /** The model's file name. */
  readonly model: string;
  /** Tokens the KV cache holds (null without a local model). */
  readonly contextLength: number | null;
  /** Why the local model did not load, when a "local-first" engine answers from the cloud instead. */
  readonly localError: TorchlightError | null;
  readonly consent: ConsentStore;
  readonly chat: {
    completions: {
      create(params: ChatCompletionParams & { stream: true }): Promise<AsyncIterable<ChatCompletionChunk>>;
      create(params: ChatCompletionParams & { stream?: false }): Promise<ChatCompletion>;
    };
  };
  /** Raw-text completions (no chat template), for base models and files without a template; local only. */
  readonly completions: {
    create(params: CompletionParams & { stream: true }): Promise<AsyncIterable<CompletionChunk>>;
    create(params: CompletionParams & { stream?: false }): Promise<Completion>;
  };
  /** Where the local model runs (null without one). */
  readonly backend: Backend | null;
  /** Threads the local model runs on (more than 1 only on the CPU of an isolated page; null without one). */
  readonly threads: number | null;
  /**
   * Memory in use: the wasm heap (it never shrinks: after a load, the load's peak) and the
   * model's own bytes on its backend (GPU buffers, or part of that heap on the CPU).
   */
  stats(): Promise<{ backend: Backend; threads: number; wasmMemoryBytes: number; modelBytes: number }>;
  /** Ends running and queued requests (code `aborted`) and frees the GPU memory. */
  unload(): Promise<void>;
}

/** A model file in the weight cache. */
export interface CachedModel {
  /** The absolute URL it was loaded from: the cache's key. */
  url: string;
  /** The file's length. */
  bytes: number;
  /** Every chunk is stored and verified: the next load makes no network request. */
  complete: boolean;
  /** When a load last used it (ms since the epoch). */
  lastUsed: number;
}

/** The IndexedDB weight cache `Torchlight.load` reads and fills. */
export interface WeightCache {
  list(): Promise<CachedModel[]>;
  /** Drops the model at `url` (relative to the page, as for `load`); the next load downloads it. */
  delete(url: string | URL): Promise<void>;
  /** The origin's storage use and quota in bytes (`navigator.storage.estimate()`). */
  usage(): Promise<{ usage: number; quota: number }>;
}

/** This package's version (its package.json's). */
export const version: string;

export class Torchlight {
  /** This package's version (its package.json's). */
  static readonly version: string;
  /**
   * The URL of a folder holding a copy of the package (its worker scripts and wasm cores), for a
   * bundler that does not copy them into the build as Vite, webpack and Next.js do: esbuild.
   * Undefined (the default): beside the package's modules. Set it before the first load.
   */
  static assetsUrl: string | URL | undefined;
  static readonly cache: WeightCache;
  static readonly consent: ConsentStore;
  static probe(): Promise<Capabilities>;
  /** Reads only the header (HTTP range requests): what the model needs and whether it fits here. */
  static estimate(url: string | URL | Blob, options?: { contextLength?: number; backend?: "auto" | Backend; signal?: AbortSignal }): Promise<Estimate>;
  /** A URL (relative to the page), or a File from the person's disk (read and cached with no network). */
  static load(url: string | URL | Blob, options?: LoadOptions): Promise<Engine>;
}
