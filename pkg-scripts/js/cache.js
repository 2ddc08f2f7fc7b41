// The weight cache: each model file in IndexedDB as fixed-size chunks, each stored with its
// SHA-256, plus a manifest per file. A load reads whatever the cache holds and fetches only what
// it lacks, by range, writing each chunk as it arrives: an interrupted download resumes from its
// last whole chunk, and a complete model loads with no network request at all (not even a HEAD,
// so a cached model is used as it is until `Torchlight.cache.delete`).


import { TorchlightError } from "./errors.js";

const DB_NAME = "torchlight";
/** Large enough that hashing and a transaction per chunk cost little; one is all we hold. */
export const CHUNK_SIZE = 4 << 20;

let database;

/** The cache's database, opened once; null where IndexedDB is missing or refuses to open. */
function openDatabase() {
  database ??= new Promise((resolve) => {
    const request = globalThis.indexedDB?.open(DB_NAME, 1);
    if (!request) return resolve(null);
    request.onupgradeneeded = () => {
      request.result.createObjectStore("models", { keyPath: "url" });
      // Keyed by [url, chunk index], so one file's chunks form one key range.
      request.result.createObjectStore("chunks");
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => resolve(null);
  });
  return database;
}

/** Runs `body` on the stores `names` in one transaction; resolves to its request's result once committed. */
function transact(db, names, mode, body) {
  return new Promise((resolve, reject) => {
    const tx = db.transaction(names, mode);
    const request = body(...names.map((name) => tx.objectStore(name)));
    tx.oncomplete = () => resolve(request?.result);
    tx.onabort = () => reject(tx.error ?? new Error("the IndexedDB transaction was aborted"));
  });
}

const chunksOf = (url) => IDBKeyRange.bound([url, 0], [url, Infinity]);

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

function sameBytes(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The bytes of `chunk` (at `index`) that fall inside `[start, end)`, as a piece for the loader. */
function clip(index, chunk, start, end, fromCache) {
  const offset = index * CHUNK_SIZE;
  const from = Math.max(0, start - offset);
  return { offset: offset + from, bytes: chunk.subarray(from, Math.min(chunk.length, end - offset)), fromCache };
}

/** A model file read through the cache. Without IndexedDB it reads from the network alone. */
class CachedFile {
  #db;
  #url;
  #source;
  #signal;
  #manifest;
  /** Chunks known good in this load: read back and verified, or just fetched and stored. */
  #verified = new Set();
  /** Chunks this load fetched: reading them back is not a load from the cache. */
  #fetched = new Set();

  constructor(db, source, signal, manifest) {
    this.#db = db;
    this.#url = source.key;
    this.#source = source;
    this.#signal = signal;
    this.#manifest = manifest;
  }

  /** Opens `source` (`sourceOf`): from its manifest when cached, else by reading (and storing) its first chunk. */
  static async open(source, signal) {
    const db = await openDatabase();
    const manifest = db && (await transact(db, ["models"], "readonly", (models) => models.get(source.key)));
    const file = new CachedFile(db, source, signal, manifest);
    if (manifest) {
      manifest.lastUsed = Date.now();
      await file.#putManifest();
    } else {
      for await (const _ of file.#fetch(0, 1));
    }
    return file;
  }

  get fileLength() {
    return this.#manifest.bytes;
  }

  /** Whether the cache holds the whole file, verified, as its manifest says. */
  get complete() {
    return !!this.#manifest.complete;
  }

  get #chunkCount() {
    return Math.ceil(this.fileLength / CHUNK_SIZE);
  }

  /** Bytes `[start, end)` as pieces `{ offset, bytes, fromCache }`, one chunk at a time. */
  async *read(start, end) {
    end = Math.min(end, this.fileLength);
    const last = Math.ceil(end / CHUNK_SIZE);
    let index = Math.floor(start / CHUNK_SIZE);
    while (index < last) {
      const cached = await this.#cachedChunk(index);
      if (cached) {
        yield clip(index, cached, start, end, !this.#fetched.has(index));
        index += 1;
        continue;
      }
      // One range request for the whole run of chunks the cache lacks.
      const next = await this.#nextCached(index, last);
      for await (const [i, chunk] of this.#fetch(index, next)) yield clip(i, chunk, start, end, false);
      index = next;
    }
  }

  /** Marks the file complete once every chunk is verified, fetching any the load did not read. */
  async finish() {
    if (!this.#db) return;
    for (let index = 0; index < this.#chunkCount; index++) {
      if (this.#verified.has(index) || (await this.#cachedChunk(index))) continue;
      for await (const _ of this.#fetch(index, index + 1));
    }
    this.#manifest.complete = true;
    await this.#putManifest();
  }

  /** Forgets the file: its manifest and every chunk. */
  async discard() {
    if (this.#db) await deleteEntry(this.#db, this.#url);
  }

  /** Chunk `index` from the cache, or null when it is missing or fails its hash. */
  async #cachedChunk(index) {
    if (!this.#db) return null;
    const key = [this.#url, index];
    const record = await transact(this.#db, ["chunks"], "readonly", (chunks) => chunks.get(key));
    const length = Math.min(CHUNK_SIZE, this.fileLength - index * CHUNK_SIZE);
    if (!record || record.bytes.length !== length || !sameBytes(await sha256(record.bytes), record.hash)) return null;
    this.#verified.add(index);
    return record.bytes;
  }

  /** The first chunk after `index` the cache holds (good or not), or `last`. */
  async #nextCached(index, last) {
    // No chunk lies between: an empty key range (lower equal to an open upper) would throw.
    if (!this.#db || index + 1 >= last) return last;
    const range = IDBKeyRange.bound([this.#url, index + 1], [this.#url, last], false, true);
    const key = await transact(this.#db, ["chunks"], "readonly", (chunks) => chunks.getKey(range));
    return key ? key[1] : last;
  }

  /** Fetches chunks `[first, stop)` by range and stores each; yields `[index, bytes]` per chunk. */
  async *#fetch(first, stop) {
    const response = await this.#source.open(first * CHUNK_SIZE, stop * CHUNK_SIZE, this.#signal);
    try {
      await this.#checkSameFile(response);
    } catch (e) {
      response.cancel();
      throw e;
    }
    const lengthOf = (index) => Math.min(CHUNK_SIZE, this.fileLength - index * CHUNK_SIZE);
    let index = first;
    let chunk = new Uint8Array(lengthOf(index));
    let filled = 0;
    for await (const { bytes } of response.chunks) {
      for (let at = 0; at < bytes.length; ) {
        const n = Math.min(chunk.length - filled, bytes.length - at);
        chunk.set(bytes.subarray(at, at + n), filled);
        filled += n;
        at += n;
        if (filled < chunk.length) continue;
        await this.#store(index, chunk);
        yield [index, chunk];
        index += 1;
        if (index < stop) [chunk, filled] = [new Uint8Array(lengthOf(index)), 0];
      }
    }
  }

  /**
   * Records the file on its first response; on a later one, fails if the file changed since its
   * first chunks were stored (their bytes would not match the rest), dropping what was kept.
   */
  async #checkSameFile({ fileLength, etag, lastModified }) {
    const manifest = this.#manifest;
    if (!manifest) {
      if (this.#db) await this.#claimRoom(fileLength);
      this.#manifest = { url: this.#url, bytes: fileLength, chunkSize: CHUNK_SIZE, etag, lastModified, complete: false, lastUsed: Date.now() };
      await this.#putManifest();
      return;
    }
    const changed = (a, b) => a && b && a !== b;
    if (fileLength !== manifest.bytes || changed(etag, manifest.etag) || changed(lastModified, manifest.lastModified)) {
      await this.discard();
      throw new TorchlightError("integrity", `${this.#source.label} changed since it was cached; its cached part was dropped: load it again`);
    }
  }

  /**
   * Before the first byte of a new file is stored: asks the browser to keep the origin's data
   * (so a model is not evicted under storage pressure), and fails, leaving nothing behind, when
   * the file cannot fit in what the origin has left.
   */
  async #claimRoom(fileLength) {
    await globalThis.navigator?.storage?.persist?.().catch(() => false);
    const shortfall = await storageShortfall(fileLength);
    if (shortfall) throw new TorchlightError("quota_exceeded", `cannot cache ${this.#source.label}: ${shortfall}`);
  }

  async #store(index, chunk) {
    this.#verified.add(index);
    this.#fetched.add(index);
    if (!this.#db) return;
    const record = { hash: await sha256(chunk), bytes: chunk };
    try {
      await transact(this.#db, ["chunks"], "readwrite", (chunks) => chunks.put(record, [this.#url, index]));
    } catch (e) {
      if (e?.name !== "QuotaExceededError") throw e;
      // Half a model in the cache would only take room: leave nothing behind.
      await this.discard();
      // What the browser took before refusing is, near enough, what it had free.
      const stored = (this.#verified.size - 1) * CHUNK_SIZE;
      throw new TorchlightError(
        "quota_exceeded",
        `cannot cache ${this.#source.label}: it needs ${megabytes(this.fileLength)} of storage, but the browser refused to store more after ${megabytes(stored)} of it`,
      );
    }
  }

  async #putManifest() {
    if (this.#db) await transact(this.#db, ["models"], "readwrite", (models) => models.put(this.#manifest));
  }
}

export const openCachedFile = (source, signal) => CachedFile.open(source, signal);

function deleteEntry(db, url) {
  return transact(db, ["models", "chunks"], "readwrite", (models, chunks) => {
    models.delete(url);
    chunks.delete(chunksOf(url));
  });
}

/** The cached models: `{ url, bytes, complete, lastUsed }` each. */
export async function list() {
  const db = await openDatabase();
  if (!db) return [];
  const models = await transact(db, ["models"], "readonly", (store) => store.getAll());
  return models.map(({ url, bytes, complete, lastUsed }) => ({ url, bytes, complete, lastUsed }));
}

/** Drops the model at `url` (relative to the page, as for `load`) from the cache. */
async function remove(url) {
  const db = await openDatabase();
  if (db) await deleteEntry(db, new URL(url, globalThis.location?.href).href);
}
export { remove as delete };

/** The origin's storage use and quota, as the browser estimates them. */
export async function usage() {
  const { usage = 0, quota = 0 } = (await globalThis.navigator?.storage?.estimate?.()) ?? {};
  return { usage, quota };
}

const megabytes = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;

/** Why `bytes` more cannot be stored, as a sentence; null when they fit (or the browser does not say). */
export async function storageShortfall(bytes) {
  const { usage: used, quota } = await usage();
  const free = Math.max(0, quota - used);
  if (!quota || bytes <= free) return null;
  return `it needs ${megabytes(bytes)} of storage, but only ${megabytes(free)} of this site's ${megabytes(quota)} is free`;
}
