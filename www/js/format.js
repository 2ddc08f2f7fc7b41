// Numbers as people read them: sizes, speeds, durations and dates.

/** "98.4 MB", "1.2 GB", "512 kB" (powers of 1000, as disks and downloads are sold). */
export function bytes(n) {
  if (!Number.isFinite(n)) return "unknown size";
  const units = ["bytes", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i += 1;
  }
  return i === 0 ? `${n} bytes` : `${n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)} ${units[i]}`;
}

/** "4 s", "2 min 5 s", "1 h 3 min". */
export function duration(seconds) {
  if (!Number.isFinite(seconds)) return "a while";
  seconds = Math.max(0, Math.round(seconds));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${seconds % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** "0.84 s" or "230 ms". */
export function milliseconds(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** A moment (ms since the epoch) in the reader's locale. */
export function when(ms) {
  return ms ? dateTime.format(new Date(ms)) : "never";
}

/** The file name in a model's URL or cache key ("file:///name.gguf?bytes=…" for a file from disk). */
export function modelName(url) {
  try {
    const { pathname } = new URL(url, document.baseURI);
    return decodeURIComponent(pathname.split("/").pop() || url);
  } catch {
    return String(url);
  }
}
