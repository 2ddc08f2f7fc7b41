// Conversations, kept in this browser only: the site's own IndexedDB database (the package's
// weight cache is a different one). A conversation is
// `{ id, title, created, updated, messages: [{ role, content, reasoning?, route?, stats?, error? }] }`.

const DB_NAME = "torchlight-site";
const STORE = "conversations";

let database;

function open() {
  database ??= new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "id" });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  return database;
}

async function run(mode, body) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const request = body(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(request?.result);
    tx.onabort = tx.onerror = () => reject(tx.error);
  });
}

/** Every conversation, the most recently updated first. */
export async function list() {
  const all = await run("readonly", (store) => store.getAll());
  return all.sort((a, b) => b.updated - a.updated);
}

export const get = (id) => run("readonly", (store) => store.get(id));
export const save = (conversation) => run("readwrite", (store) => store.put(conversation));
export const remove = (id) => run("readwrite", (store) => store.delete(id));

/** A new, empty conversation (stored once it has a message). */
export function create() {
  const now = Date.now();
  return { id: crypto.randomUUID?.() ?? `${now}-${Math.random().toString(36).slice(2)}`, title: "New chat", created: now, updated: now, messages: [] };
}

/** A title from the first thing the person asked. */
export function titleFor(text) {
  const line = text.trim().split("\n")[0];
  return line.length > 60 ? `${line.slice(0, 57)}…` : line || "New chat";
}
