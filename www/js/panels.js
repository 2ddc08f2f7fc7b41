// The storage panel (the models cached on this device, the quota, persistence), the device panel
// (what WebGPU offers here), and the endpoints the person always allows.

import { Torchlight } from "../pkg/index.js";
import * as format from "./format.js";

const $ = (id) => document.getElementById(id);

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A cache key's name: a URL's file name, or a file from disk's name. */
function cachedName(url) {
  const name = format.modelName(url);
  return url.startsWith("file:") ? `${name} (from disk)` : name;
}

/**
 * Lists the cached models. `inUse` is the cache key of the loaded model (marked, and still
 * deletable: the GPU keeps its copy); `onLoad(url, name)` loads one again.
 */
export async function showStorage({ inUse, onLoad } = {}) {
  const models = await Torchlight.cache.list().catch(() => []);
  const list = $("cached-models");
  list.replaceChildren(
    ...models
      .sort((a, b) => b.lastUsed - a.lastUsed)
      .map((model) => {
        const name = cachedName(model.url);
        const item = element("li", "cached-model");
        item.dataset.url = model.url;
        const text = element("div", "cached-text");
        text.append(element("strong", "cached-name", name));
        const facts = [format.bytes(model.bytes), model.complete ? `last used ${format.when(model.lastUsed)}` : "partly downloaded: loading it again resumes"];
        if (model.url === inUse) facts.push("in use");
        text.append(element("span", "hint", facts.join(" · ")));
        const buttons = element("div", "row");
        if (model.complete && onLoad) {
          const load = element("button", "load quiet", "Load");
          load.type = "button";
          load.setAttribute("aria-label", `Load ${name}`);
          load.addEventListener("click", () => onLoad(model.url, format.modelName(model.url)));
          buttons.append(load);
        }
        const remove = element("button", "delete quiet", "Delete");
        remove.type = "button";
        remove.setAttribute("aria-label", `Delete ${name}`);
        remove.addEventListener("click", async () => {
          remove.disabled = true;
          await Torchlight.cache.delete(model.url);
          await showStorage({ inUse, onLoad });
        });
        buttons.append(remove);
        item.append(text, buttons);
        return item;
      }),
  );
  if (models.length === 0) list.append(element("li", "hint", "No models are stored on this device yet."));

  const { usage, quota } = await Torchlight.cache.usage();
  $("storage-usage").textContent = quota
    ? `This site uses ${format.bytes(usage)} of the ${format.bytes(quota)} the browser allows it.`
    : "The browser does not say how much storage this site may use.";
  await showPersistence();
}

async function showPersistence() {
  const persisted = await navigator.storage?.persisted?.().catch(() => false);
  $("persist").textContent = persisted ? "Models are kept" : "Keep my models";
  $("persist").setAttribute("aria-pressed", String(!!persisted));
  if (persisted) $("persist-status").textContent = "The browser will not clear these models to make room.";
}

/** Asks the browser to keep this site's storage ("keep my models"). */
export async function requestPersistence() {
  if (!navigator.storage?.persist) {
    $("persist-status").textContent = "This browser cannot be asked to keep storage.";
    return;
  }
  const granted = await navigator.storage.persist().catch(() => false);
  $("persist-status").textContent = granted
    ? "The browser will not clear these models to make room."
    : "The browser said no for now. It may agree once the site is installed or used more often.";
  await showPersistence();
}

/** The limits that decide which models fit, in words. */
const LIMIT_NAMES = {
  maxStorageBufferBindingSize: "Largest weight binding",
  maxBufferSize: "Largest buffer",
  maxComputeWorkgroupStorageSize: "Workgroup memory",
  maxComputeInvocationsPerWorkgroup: "Threads per workgroup",
  maxComputeWorkgroupSizeX: "Workgroup width",
};

/** Fills the device panel from `Torchlight.probe()`'s answer. */
export function showDevice(caps) {
  const facts = [];
  const yes = (value) => (value ? "yes" : "no");
  if (!caps.webgpu) {
    facts.push(["WebGPU", navigator.gpu ? "present, but it gives no adapter" : "not offered by this browser"]);
  } else {
    const a = caps.adapter;
    const name = [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(" · ") || "unnamed";
    facts.push(["WebGPU adapter", name + (a.isFallbackAdapter ? " (a software fallback: slow)" : "")]);
    facts.push(["16-bit floats (shader-f16)", yes(caps.shaderF16)]);
    facts.push(["Subgroups", yes(caps.subgroups)]);
    for (const [limit, value] of Object.entries(caps.limits ?? {})) {
      const text = value >= 1 << 20 ? `${format.bytes(value)} (${value} bytes)` : String(value);
      facts.push([LIMIT_NAMES[limit] ?? limit, text]);
    }
  }
  if (caps.storage) facts.push(["Storage", `${format.bytes(caps.storage.usage)} used of ${format.bytes(caps.storage.quota)}${caps.storage.persisted ? ", kept" : ""}`]);
  if (caps.backend === "cpu") {
    // The service worker isolates every page it serves: a first visit is the one that is not.
    const why = caps.crossOriginIsolated ? "" : " (the page is not cross-origin isolated yet: reload it to use every core)";
    facts.unshift(["Processor threads", `${caps.cpuThreads}${why}`]);
  }
  if (caps.backend) facts.unshift(["Models run on", caps.backend === "gpu" ? "the GPU (WebGPU)" : "the processor (WebAssembly)"]);
  $("device-info").replaceChildren(...facts.flatMap(([term, value]) => [element("dt", "", term), element("dd", "", value)]));
  $("no-webgpu").hidden = caps.webgpu;
  if (runsHere(caps)) $("no-webgpu-consequence").textContent = "so models run on the processor here instead, more slowly";
}

/** Whether a model can run in this browser at all: on WebGPU, or on a package with a CPU backend. */
export const runsHere = (caps) => caps.webgpu || caps.backend === "cpu";

/** Lists the endpoints answered "always", each with a button that forgets it. */
export async function showConsents() {
  const decisions = await Torchlight.consent.list().catch(() => []);
  const list = $("consents");
  list.replaceChildren(
    ...decisions.map(({ endpoint, since }) => {
      const item = element("li", "consent");
      item.append(element("span", "", `${endpoint} (since ${format.when(since)})`));
      const revoke = element("button", "revoke quiet", "Forget");
      revoke.type = "button";
      revoke.setAttribute("aria-label", `Stop always allowing ${endpoint}`);
      revoke.addEventListener("click", async () => {
        await Torchlight.consent.revoke(endpoint);
        await showConsents();
      });
      item.append(revoke);
      return item;
    }),
  );
  if (decisions.length === 0) list.append(element("li", "hint", "None: every request asks first."));
}
