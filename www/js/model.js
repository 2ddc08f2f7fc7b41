// Choosing and loading a model: the catalog, a URL, or a file from disk (picked or dropped).
// Before a download the person sees what the model needs and whether it fits, and agrees to
// the bytes; during it, the phases, bytes, speed and time left, and a Cancel button.

import { Torchlight, TorchlightError } from "../pkg/index.js";
import { confirmDownload } from "./dialogs.js";
import * as format from "./format.js";
import { runsHere } from "./panels.js";

const $ = (id) => document.getElementById(id);
const LAST_MODEL = "torchlight-site:last-model";

/** How fast the download goes, over the last few seconds of progress. */
class Speedometer {
  #samples = [];

  /** Adds a sample; returns bytes per second (NaN until there are two seconds' worth). */
  add(loaded) {
    const now = performance.now();
    this.#samples.push({ now, loaded });
    while (this.#samples.length > 2 && now - this.#samples[0].now > 5000) this.#samples.shift();
    const first = this.#samples[0];
    const elapsed = (now - first.now) / 1000;
    return elapsed >= 0.5 ? (loaded - first.loaded) / elapsed : NaN;
  }
}

const PHASES = ["download", "upload", "compile"];

/**
 * The model panel. `engines` is how loaded engines are handed over: `release()` before a load
 * (the old model's GPU memory goes first), `loaded(engine, { name, key })` after one;
 * `cloud()` is the cloud endpoint to load with (or null); `changed()` says the weight cache
 * changed.
 */
export class ModelPanel {
  #catalog = [];
  #busy = false;
  /** The model runs on the processor (a package with a CPU backend, and no usable GPU). */
  #onCpu = false;
  #controller = null;
  #caps;
  #options;

  constructor({ caps, cloud, contextLength, release, loaded, changed }) {
    this.#caps = caps;
    this.#options = { cloud, contextLength, release, loaded, changed };
    $("model-load").addEventListener("click", () => {
      const entry = this.#catalog.find((e) => e.url === $("model-select").value);
      if (entry) this.load(entry.url, entry.name);
    });
    $("model-select").addEventListener("change", () => this.describe());
    $("model-url-load").addEventListener("click", () => this.#loadTypedUrl());
    $("model-url").addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        this.#loadTypedUrl();
      }
    });
    $("model-file").addEventListener("change", () => {
      const [file] = $("model-file").files;
      if (file) this.load(file, file.name);
      $("model-file").value = "";
    });
    $("load-cancel").addEventListener("click", () => this.#controller?.abort());
    this.#acceptDrops();
  }

  /** Fills the picker from `catalog.json`, choosing the model loaded last time. */
  async init() {
    try {
      const response = await fetch("catalog.json");
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      this.#catalog = (await response.json()).filter((e) => e && typeof e.url === "string" && typeof e.name === "string");
    } catch (e) {
      $("model-description").textContent = `The catalog (catalog.json) could not be read: ${e.message}`;
    }
    const last = localStorage.getItem(LAST_MODEL);
    $("model-select").replaceChildren(
      ...this.#catalog.map(({ name, url }) => Object.assign(document.createElement("option"), { value: url, textContent: name, selected: url === last })),
    );
    // A list box rather than a drop-down: a small catalog is read at a glance.
    $("model-select").size = Math.min(Math.max(this.#catalog.length, 2), 6);
    if ($("model-select").selectedIndex < 0) $("model-select").selectedIndex = 0;
    await this.describe();
  }

  /** Says what the chosen catalog entry is, and whether it is already on this device. */
  async describe() {
    const entry = this.#catalog.find((e) => e.url === $("model-select").value);
    if (!entry) return;
    const absolute = new URL(entry.url, document.baseURI).href;
    const cached = (await Torchlight.cache.list().catch(() => [])).find((m) => m.url === absolute && m.complete);
    const size = Number.isFinite(entry.bytes) ? format.bytes(entry.bytes) : null;
    $("model-description").textContent = [entry.description, size, cached ? "cached on this device: loads with no network" : "not downloaded yet"]
      .filter(Boolean)
      .join(" · ");
  }

  #loadTypedUrl() {
    const url = $("model-url").value.trim();
    if (!url) {
      $("model-url").focus();
      return;
    }
    let name;
    try {
      name = format.modelName(new URL(url, document.baseURI).href);
    } catch {
      this.#status(`That is not a URL: ${url}`);
      return;
    }
    this.load(url, name);
  }

  #acceptDrops() {
    const zone = $("drop-zone");
    const hasFiles = (event) => [...(event.dataTransfer?.types ?? [])].includes("Files");
    let depth = 0;
    document.addEventListener("dragenter", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      depth += 1;
      zone.hidden = false;
    });
    document.addEventListener("dragover", (event) => {
      if (hasFiles(event)) event.preventDefault();
    });
    document.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (depth === 0) zone.hidden = true;
    });
    document.addEventListener("drop", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      depth = 0;
      zone.hidden = true;
      const files = [...event.dataTransfer.files];
      const file = files.find((f) => f.name.toLowerCase().endsWith(".gguf")) ?? files[0];
      if (file) this.load(file, file.name);
    });
  }

  #status(text) {
    $("load").hidden = false;
    $("load-status").textContent = text;
  }

  #setBusy(busy) {
    this.#busy = busy;
    for (const id of ["model-load", "model-url-load", "model-file"]) $(id).disabled = busy;
    $("load-cancel").hidden = !busy;
  }

  #phase(phase, label) {
    const current = phase === "done" ? PHASES.length : PHASES.indexOf(phase);
    for (const item of $("load-phases").children) {
      const index = PHASES.indexOf(item.dataset.phase);
      item.classList.toggle("done", index < current);
      if (index === current) item.setAttribute("aria-current", "step");
      else item.removeAttribute("aria-current");
    }
    if (label) $("load-phases").children[0].textContent = label;
  }

  #showEstimate(name, estimate) {
    const box = $("model-estimate");
    const lines = [
      `${name}: ${estimate.architecture}, ${estimate.quantization}; ${format.bytes(estimate.bytes)} to store, about ${format.bytes(estimate.gpuBytes)} of ${estimate.backend === "cpu" ? "memory" : "GPU memory"} with ${estimate.contextLength} tokens of context.`,
      estimate.fits ? "It fits this device." : `It may not run here: ${estimate.reasons.join("; ")}.`,
    ];
    box.replaceChildren(...lines.map((text, i) => Object.assign(document.createElement("p"), { textContent: text, className: i === 1 ? (estimate.fits ? "ok" : "warn") : "" })));
    box.hidden = false;
  }

  /**
   * Loads `source` (a URL relative to the page, or a File) as `name`. The previous model is
   * unloaded once the person agreed to this one.
   */
  async load(source, name) {
    if (this.#busy) return;
    const isFile = typeof source !== "string";
    const controller = new AbortController();
    const { signal } = controller;
    this.#controller = controller;
    this.#setBusy(true);
    $("load-progress").value = 0;
    this.#phase(null, isFile ? "Read from disk" : "Download");
    this.#status(`Reading ${name}'s header…`);
    const contextLength = this.#options.contextLength();
    const cloud = this.#options.cloud();
    try {
      const caps = await this.#caps;
      if (!runsHere(caps)) return await this.#loadCloudFallback(source, name, cloud, signal);
      this.#onCpu = caps.backend === "cpu";
      $("load-phases").children[1].textContent = this.#onCpu ? "Prepare" : "Upload to the GPU";

      let estimate = null;
      try {
        estimate = await Torchlight.estimate(source, { contextLength, signal });
      } catch (e) {
        // A file is read at load anyway; for a URL, what stops the header stops the download.
        if (!isFile || e?.code === "aborted") throw e;
      }
      if (estimate) this.#showEstimate(name, estimate);
      if (estimate && !estimate.cached && !isFile && !(await confirmDownload(name, estimate))) {
        this.#status("Download cancelled: nothing was stored.");
        return;
      }
      signal.throwIfAborted();

      await this.#options.release();
      const started = performance.now();
      const speed = new Speedometer();
      let fromNetwork = false;
      const engine = await Torchlight.load(source, {
        contextLength,
        signal,
        cloud: cloud ?? undefined,
        route: cloud ? "local-first" : "local-only",
        onProgress: (progress) => {
          fromNetwork ||= progress.phase === "download";
          this.#progress(progress, { name, isFile, speed });
        },
      });
      if (engine.localError) {
        this.#describeFallback(name, engine.localError);
      } else {
        $("load-progress").value = 100;
        this.#phase("done");
        const seconds = format.duration((performance.now() - started) / 1000);
        const how = isFile ? `read from disk in ${seconds}` : fromNetwork ? `downloaded in ${seconds}` : `loaded in ${seconds} with no network`;
        this.#status(`Ready: ${name}, ${how}, cached on this device.`);
        if (!isFile) localStorage.setItem(LAST_MODEL, source);
      }
      await this.#options.loaded(engine, { name, key: isFile ? null : new URL(source, document.baseURI).href });
      $("prompt").focus();
    } catch (e) {
      this.#status(this.#failure(e, name));
    } finally {
      if (this.#controller === controller) this.#controller = null;
      this.#setBusy(false);
      this.#options.changed();
      this.describe();
    }
  }

  #progress({ phase, loadedBytes, totalBytes, fromCache }, { name, isFile, speed }) {
    const percent = totalBytes ? (100 * loadedBytes) / totalBytes : 0;
    if (phase === "download" || phase === "cache") {
      $("load-progress").value = percent;
      const label = isFile ? "Read from disk" : fromCache ? "Read from this device" : "Download";
      this.#phase("download", label);
      const amount = `${format.bytes(loadedBytes)} of ${format.bytes(totalBytes)}`;
      if (phase === "cache" || isFile) {
        this.#status(`${isFile ? "Reading from disk" : "Reading from this device"}: ${amount} (${Math.floor(percent)}%)`);
      } else {
        const rate = speed.add(loadedBytes);
        const left = Number.isFinite(rate) && rate > 0 ? `, ${format.duration((totalBytes - loadedBytes) / rate)} left` : "";
        const perSecond = Number.isFinite(rate) ? ` at ${format.bytes(rate)}/s` : "";
        this.#status(`Downloading ${name}: ${amount} (${Math.floor(percent)}%)${perSecond}${left}`);
      }
    } else if (phase === "upload") {
      $("load-progress").value = 100;
      this.#phase("upload");
      this.#status(this.#onCpu ? "Preparing the weights…" : "Uploading the last weights to the GPU…");
    } else if (phase === "compile") {
      this.#phase("compile");
      this.#status("Compiling the GPU pipelines…");
    }
  }

  /** No WebGPU: with a cloud endpoint set, an engine that answers from it (after consent). */
  async #loadCloudFallback(source, name, cloud, signal) {
    if (!cloud) {
      this.#status("This browser offers no WebGPU, so the model cannot run here. Set a cloud endpoint in Settings to have one answer instead.");
      return;
    }
    await this.#options.release();
    const engine = await Torchlight.load(source, { cloud, route: "local-first", signal });
    this.#describeFallback(name, engine.localError);
    await this.#options.loaded(engine, { name });
  }

  #describeFallback(name, error) {
    this.#phase(null);
    const why = error ? `${error.message} (${error.code})` : "";
    this.#status(`${name} cannot run on this device${why ? `: ${why}` : ""}. Answers will come from the cloud endpoint, each after your yes.`);
  }

  #failure(error, name) {
    if (error?.code === "aborted" || error?.name === "AbortError") {
      return "Cancelled. What was downloaded so far is kept: loading the same model again resumes there.";
    }
    const code = error instanceof TorchlightError ? error.code : "error";
    return `${name} did not load (${code}): ${error?.message ?? error}`;
  }
}
