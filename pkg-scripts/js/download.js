// Where a model file's bytes come from: over HTTP (its first bytes for the header, then the
// tensor data as a stream of chunks, so no more than one chunk of the file is held at a time;
// range requests when the server honours them, a 200 with the whole file works too), or from a
// File the person picked on their own disk (read by slices, never whole).

import { TorchlightError, abortedError } from "./errors.js";

function failure(url, signal, e) {
  if (signal?.aborted || e?.name === "AbortError") return abortedError();
  if (e instanceof TorchlightError) return e;
  return new TorchlightError("network", `cannot fetch ${url}: ${e?.message ?? e}`);
}

/** The file's full length, from `Content-Range` (206) or `Content-Length` (200). */
function lengthOf(response, url) {
  const range = response.headers.get("Content-Range");
  const total = range ? range.split("/")[1] : response.status === 200 ? response.headers.get("Content-Length") : null;
  const length = Number(total);
  if (!total || !Number.isSafeInteger(length)) {
    throw new TorchlightError("network", `cannot fetch ${url}: the server does not say how long the file is`);
  }
  return length;
}

/**
 * Bytes `[start, end)` of the file (`end` is capped at the file's length): the file's length,
 * its validators (`etag`, `lastModified`, null when not sent), and the bytes as chunks
 * `{ offset, bytes }` to pull as they arrive, so the network waits for whoever consumes them;
 * `cancel()` drops the response when its bytes are not wanted after all.
 */
export async function openRange(url, start, end, signal) {
  let response;
  try {
    response = await fetch(url, { headers: { Range: `bytes=${start}-${end - 1}` }, signal });
  } catch (e) {
    throw failure(url, signal, e);
  }
  if (!response.ok) {
    throw new TorchlightError("network", `cannot fetch ${url}: HTTP ${response.status} ${response.statusText}`.trim());
  }
  const fileLength = lengthOf(response, url);
  return {
    fileLength,
    etag: response.headers.get("ETag"),
    lastModified: response.headers.get("Last-Modified"),
    chunks: read(response, url, start, Math.min(end, fileLength), signal),
    cancel: () => response.body?.cancel().catch(() => {}),
  };
}

async function* read(response, url, start, end, signal) {
  // A 200 is the whole file: skip to `start`.
  let offset = response.status === 206 ? start : 0;
  const reader = response.body.getReader();
  try {
    while (offset < end) {
      let step;
      try {
        step = await reader.read();
      } catch (e) {
        throw failure(url, signal, e);
      }
      if (step.done) {
        throw new TorchlightError("network", `the download of ${url} ended at byte ${offset} of ${end}`);
      }
      const skip = Math.max(0, Math.min(start - offset, step.value.length));
      const bytes = step.value.subarray(skip, Math.max(skip, end - offset));
      offset += skip;
      if (bytes.length > 0) {
        yield { offset, bytes };
        offset += bytes.length;
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

/** Bytes read from a File per slice: as large as a cache chunk, so a slice is never held twice. */
const SLICE = 4 << 20;

/** As `openRange`, over a Blob (a File from the person's disk): no network at all. */
function openBlobRange(blob, start, end) {
  end = Math.min(end, blob.size);
  async function* chunks() {
    for (let offset = start; offset < end; offset += SLICE) {
      const bytes = new Uint8Array(await blob.slice(offset, Math.min(end, offset + SLICE)).arrayBuffer());
      yield { offset, bytes };
    }
  }
  const lastModified = typeof blob.lastModified === "number" ? String(blob.lastModified) : null;
  return { fileLength: blob.size, etag: null, lastModified, chunks: chunks(), cancel: () => {} };
}

/**
 * A model file's source: a URL (a string, absolute) or a Blob. `key` names it in the weight
 * cache (a File's is made of its name, size and modification time), `name` is what answers
 * call the model, `label` what messages call the file, and `open(start, end, signal)` is
 * `openRange` for it.
 */
export function sourceOf(file) {
  if (typeof Blob !== "undefined" && file instanceof Blob) {
    const name = file.name ?? "model.gguf";
    const key = `file:///${encodeURIComponent(name)}?bytes=${file.size}&modified=${file.lastModified ?? 0}`;
    return { key, name, label: name, open: (start, end) => openBlobRange(file, start, end) };
  }
  const name = decodeURIComponent(new URL(file).pathname.split("/").pop() || file);
  return { key: file, name, label: file, open: (start, end, signal) => openRange(file, start, end, signal) };
}

/**
 * A source for a look at its header, uncached: its first `prefix` bytes are read at once, and
 * any later `read(start, end)` past them is one more range.
 */
export async function openUncached(source, prefix, signal) {
  const first = await source.open(0, prefix, signal);
  const head = new Uint8Array(Math.min(prefix, first.fileLength));
  for await (const { offset, bytes } of first.chunks) head.set(bytes, offset);
  return {
    fileLength: first.fileLength,
    async *read(start, end) {
      if (end <= head.length) yield { offset: start, bytes: head.subarray(start, end) };
      else yield* (await source.open(start, end, signal)).chunks;
    },
  };
}
