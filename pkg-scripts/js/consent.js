// What the person decided about sending requests to cloud endpoints: "always" decisions are
// remembered per endpoint origin in IndexedDB, until revoked. "once" and "deny" are never stored.
// An API key is stored beside a decision only when the page asked for it (`rememberKey`).

const DB_NAME = "torchlight-consent";

let database;

/** The decisions' database, opened once; null where IndexedDB is missing or refuses to open. */
function openDatabase() {
  database ??= new Promise((resolve) => {
    const request = globalThis.indexedDB?.open(DB_NAME, 1);
    if (!request) return resolve(null);
    request.onupgradeneeded = () => request.result.createObjectStore("decisions", { keyPath: "endpoint" });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => resolve(null);
  });
  return database;
}

function transact(mode, body) {
  return openDatabase().then(
    (db) =>
      db &&
      new Promise((resolve, reject) => {
        const tx = db.transaction("decisions", mode);
        const request = body(tx.objectStore("decisions"));
        tx.oncomplete = () => resolve(request?.result);
        tx.onabort = () => reject(tx.error ?? new Error("the IndexedDB transaction was aborted"));
      }),
  );
}

/** The origin an endpoint URL belongs to: decisions cover every path on it. */
export const originOf = (endpoint) => new URL(endpoint, globalThis.location?.href).origin;

/** The stored "always" decision for `endpoint`'s origin, or null. */
export async function remembered(endpoint) {
  return (await transact("readonly", (store) => store.get(originOf(endpoint)))) ?? null;
}

/** Remembers "always" for `endpoint`'s origin, with the API key only when given. */
export async function rememberAlways(endpoint, apiKey) {
  const record = { endpoint: originOf(endpoint), decision: "always", since: Date.now() };
  if (apiKey) record.apiKey = apiKey;
  await transact("readwrite", (store) => store.put(record));
}

/** Every remembered decision: `{ endpoint, decision, since }` (keys are not listed). */
export async function list() {
  const records = (await transact("readonly", (store) => store.getAll())) ?? [];
  return records.map(({ endpoint, decision, since }) => ({ endpoint, decision, since }));
}

/** Forgets the decision (and any stored key) for `endpoint`'s origin: the next request asks again. */
export async function revoke(endpoint) {
  await transact("readwrite", (store) => store.delete(originOf(endpoint)));
}
