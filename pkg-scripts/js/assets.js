// Where the package's own files are: its workers' scripts and the wasm cores. By default beside
// the module that names them, by a URL made of a literal path and `import.meta.url`: the form
// Vite, webpack (Next.js) and Turbopack follow, copying each file into the build; unbundled, the
// files are simply there. esbuild follows no such URL: its apps copy the package to a folder they
// serve and set `Torchlight.assetsUrl` to it. A worker script on another origin (the package
// imported from a CDN) cannot be started directly: a same-origin module that imports it is
// started instead.

import { TorchlightError } from "./errors.js";

/** `Torchlight.assetsUrl`: the folder holding the package's files, set by the page; or undefined, beside this module. */
let folder;

export function assetsUrl() {
  return folder?.href;
}

export function setAssetsUrl(url) {
  if (url === undefined || url === null) {
    folder = undefined;
    return;
  }
  if (!(typeof url === "string" || url instanceof URL)) {
    throw new TorchlightError("invalid_request", `Torchlight.assetsUrl must be the URL of a folder holding the package's files, not ${JSON.stringify(url)}`);
  }
  const href = new URL(url, globalThis.location?.href).href;
  folder = new URL(href.endsWith("/") ? href : `${href}/`);
}

/** `file` (a path inside the package) in the folder `Torchlight.assetsUrl` names, or undefined when it names none. */
export function assetUrl(file) {
  return folder && new URL(file, folder);
}

/**
 * Whether a module at `url` is on another web origin than this page or worker: the package
 * imported from a CDN. (A bundler may have made `import.meta.url` a `file:` URL: not another origin.)
 */
export function isCrossOrigin(url) {
  try {
    const { protocol, origin } = new URL(url);
    return (protocol === "http:" || protocol === "https:") && origin !== globalThis.location?.origin;
  } catch {
    return false;
  }
}

/** `file` resolved against `base`, or as it is where `base` is no URL (a bundler's stand-in for `import.meta.url`). */
export function beside(file, base) {
  try {
    return new URL(file, base);
  } catch {
    return file;
  }
}

/**
 * A module worker running the script at `url`, which may be on another origin: through a
 * same-origin module that imports it (its server must allow CORS, as CDNs do).
 */
export function moduleWorker(url, name) {
  if (!isCrossOrigin(url)) return new Worker(url, { type: "module", name });
  const trampoline = URL.createObjectURL(new Blob([`import ${JSON.stringify(String(url))};`], { type: "text/javascript" }));
  const worker = new Worker(trampoline, { type: "module", name });
  const revoke = () => URL.revokeObjectURL(trampoline);
  worker.addEventListener("message", revoke, { once: true });
  worker.addEventListener("error", revoke, { once: true });
  return worker;
}

/** How to serve the package's files where the app's bundler did not. */
const FIX =
  "the package's files must be served beside its modules: Vite, webpack, Next.js and an unbundled import keep them there; " +
  "with esbuild, copy node_modules/torchlight/ to a folder the app serves and set Torchlight.assetsUrl to that folder's URL " +
  "(the package README's \"Using it with your bundler\")";

/** The fix where Vite's dev server (Vite 7 and older) pre-bundled the package into node_modules/.vite/deps/. */
const VITE_FIX =
  "Vite's dev server (Vite 7 and older) pre-bundled the package away from its files: add " +
  "optimizeDeps: { exclude: [\"torchlight\"] } to vite.config.js (the package README's \"Using it with your bundler\")";

/** The error for `what`, a file of the package, which did not load from `url` because of `why`; it says how to fix that. */
export function missingAssetError(what, url, why) {
  const fix = String(url).includes("/.vite/deps/") ? VITE_FIX : FIX;
  return new TorchlightError("assets_not_found", `${what} did not load from ${url}: ${why}; ${fix}`);
}

/**
 * Why the worker script at `url` did not start, as far as a second look at it tells: an HTTP
 * status, or something other than JavaScript (a page) served in its place.
 */
export async function whyScriptFailed(url) {
  try {
    const response = await fetch(url);
    const type = response.headers.get("content-type") || "no type";
    if (!response.ok) return `HTTP ${response.status}`;
    if (!/javascript|ecmascript/.test(type)) return `it is served as ${type}, not as JavaScript`;
    return "it, or a module it imports, failed to load";
  } catch (e) {
    return `fetching it failed (${e?.message ?? e})`;
  }
}

/** Whether `bytes` begin as a WebAssembly module does (`\0asm`). */
export function isWasm(bytes) {
  return bytes.length >= 4 && bytes[0] === 0 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d;
}
