// The model file over HTTP: its first bytes for the header, then the tensor data as a stream of
// chunks, so no more than one chunk of the file is held at a time. Range requests are used when
// the server honours them; a server that answers 200 with the whole file works too.

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

/**
 * The file at `url` for a look at its header, uncached: its first `prefix` bytes are fetched at
 * once, and any later `read(start, end)` past them is one more range request.
 */
export async function openRemoteFile(url, prefix, signal) {
  const first = await openRange(url, 0, prefix, signal);
  const head = new Uint8Array(Math.min(prefix, first.fileLength));
  for await (const { offset, bytes } of first.chunks) head.set(bytes, offset);
  return {
    fileLength: first.fileLength,
    async *read(start, end) {
      if (end <= head.length) yield { offset: start, bytes: head.subarray(start, end) };
      else yield* (await openRange(url, start, end, signal)).chunks;
    },
  };
}
