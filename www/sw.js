// The service worker: keeps the app shell (the page, its scripts and styles, the catalog, the
// package's JS and wasm, the vendored libraries, the icons) in one cache per version, so the
// site opens with no network. The build (pkg-scripts/site/build.js) writes VERSION, a hash of
// every file it lists, and SHELL; any change to the site makes a new version, and so a new
// worker. Model files are never cached here: the package keeps them in IndexedDB, and their
// range requests go straight to the network.
//
// A new version installs beside the old one and waits: the page announces it and sends
// "skip-waiting" only when the person asks, so an answer in progress is never cut off.
//
// Every shell response it gives carries the headers that make the page cross-origin isolated
// (COOP and COEP), which the CPU backend needs to run on every core (SharedArrayBuffer). Static
// hosts such as GitHub Pages cannot send them; from the second visit on, the shell comes from
// here, so there the site is isolated too. The site loads nothing cross-origin but CORS fetches
// (model hosts), which isolation allows.

const VERSION = "__SHELL_VERSION__";
/** Paths relative to this file. */
const SHELL = __SHELL_FILES__;

const PREFIX = "torchlight-shell-";
const CACHE = PREFIX + VERSION;
const scope = new URL("./", self.location.href);
const shellUrls = new Set(SHELL.map((path) => new URL(path, scope).href));

/** Fetches one shell file for the cache; a failure fails the install (and the old version stays). */
async function fetchShellFile(path) {
  // `reload` skips the HTTP cache: the files must be this version's, not a stale copy.
  const response = await fetch(new Request(new URL(path, scope), { cache: "reload" }));
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  // Some hosts redirect index.html to the directory; a redirected response cannot answer a navigation.
  if (!response.redirected) return response;
  return new Response(await response.blob(), { status: response.status, statusText: response.statusText, headers: response.headers });
}

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      try {
        // Each body goes into the cache as it arrives: a response left unread would hold its
        // connection, and the browser opens only a few per host.
        await Promise.all(SHELL.map(async (path) => cache.put(new URL(path, scope).href, await fetchShellFile(path))));
      } catch (e) {
        await caches.delete(CACHE);
        throw e;
      }
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      const names = await caches.keys();
      await Promise.all(names.filter((name) => name.startsWith(PREFIX) && name !== CACHE).map((name) => caches.delete(name)));
      // On the first install there is no older version to interrupt: control the open page now.
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("message", (event) => {
  if (event.data?.type === "skip-waiting") self.skipWaiting();
  else if (event.data?.type === "version") event.ports[0]?.postMessage({ version: VERSION });
});

self.addEventListener("fetch", (event) => {
  const { request } = event;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  url.hash = "";
  url.search = "";
  let key = url.href;
  // The page itself, however it is addressed: the scope, or index.html, with any query.
  if (request.mode === "navigate" && key === scope.href) key = new URL("index.html", scope).href;
  if (!shellUrls.has(key)) return;
  event.respondWith(
    caches.open(CACHE).then(async (cache) => isolated((await cache.match(key)) ?? (await fetch(request)))),
  );
});

/** `response` with the cross-origin isolation headers (see the top of this file). */
function isolated(response) {
  const headers = new Headers(response.headers);
  headers.set("Cross-Origin-Opener-Policy", "same-origin");
  headers.set("Cross-Origin-Embedder-Policy", "require-corp");
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}
