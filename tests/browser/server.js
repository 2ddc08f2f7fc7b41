// A static file server for the browser tests, with HTTP range requests as model hosts have
// them: /pkg/ is the built npm package, /models/ the test models, everything else the test
// page (page/). `?length=N` serves a file as if it ended after N bytes (a truncated copy).
// /app/ is the built demo site (www/dist, from pkg-scripts/build-site.sh) on a sub-path, with
// /app/models/ the test models; /static-app/ is the site again, without the isolation headers
// /app/ has (as a static host such as GitHub Pages serves it).
// For the benchmark (pkg-scripts/bench-browser.sh): /bench/ is its page, /vendor/wllama/ the
// @wllama/wllama package it compares against, and `--isolated` adds the COOP and COEP headers
// that make pages cross-origin isolated (SharedArrayBuffer, so wasm threads); /app/ always has them.
// For the cache tests: `/__log` lists the requests for /models/ so far (method, URL, Range), and
// `/__drop?url=U&after=N` makes the next response for U that is longer than N bytes break off
// after N, as a dropped connection does (armed out of band so U stays the cache's key);
// `/__etag?url=U&etag=E` makes responses for U carry `ETag: E`, as a file replaced on the server does.
// Run directly, it listens on 127.0.0.1 on a free port and prints its URL.

import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createServer } from "node:http";
import { extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

import { parseRange } from "../../pkg-scripts/site/serve.js";

const here = fileURLToPath(new URL(".", import.meta.url));
const repo = resolve(here, "../..");
const ROOTS = [
  ["/pkg/", join(repo, "pkg")],
  ["/models/", join(repo, "models")],
  // The demo site as deployed to a sub-path, with the test model beside it for its catalog.
  ["/app/models/", join(repo, "models")],
  ["/static-app/models/", join(repo, "models")],
  ["/app/", join(repo, "www", "dist")],
  // The same site as a static host that sends no isolation headers serves it.
  ["/static-app/", join(repo, "www", "dist")],
  ["/bench/", join(here, "bench", "page")],
  // Tiny models of every family, written by tests/golden/families.py (pkg-scripts/test.sh).
  ["/target/families/", join(repo, "target", "families")],
  // Hostile variants of the test model and their manifest, written by tests/hostile/make_hostile.py.
  ["/target/hostile/", join(repo, "target", "hostile")],
  ["/vendor/wllama/", join(here, "node_modules", "@wllama", "wllama", "esm")],
  ["/", join(here, "page")],
];
const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".wasm": "application/wasm",
  ".json": "application/json",
  ".md": "text/markdown; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".webmanifest": "application/manifest+json",
  ".png": "image/png",
  ".svg": "image/svg+xml",
};

/** The file a URL path names, or null when it names nothing under a root. */
function fileFor(pathname) {
  const [prefix, root] = ROOTS.find(([prefix]) => pathname.startsWith(prefix));
  const path = resolve(root, "." + decodeURIComponent(pathname.slice(prefix.length - 1)));
  return path === root || path.startsWith(root + sep) ? path : null;
}

const log = [];
/** URL → bytes after which its next long enough response breaks off. */
const drops = new Map();
/** URL → the ETag its responses carry. */
const etags = new Map();

function control(pathname, searchParams, response) {
  if (pathname === "/__drop") drops.set(searchParams.get("url"), Number(searchParams.get("after")));
  if (pathname === "/__etag") etags.set(searchParams.get("url"), searchParams.get("etag"));
  const body = pathname === "/__log" ? JSON.stringify(log) : "{}";
  response.writeHead(200, { "Content-Type": "application/json", "Cache-Control": "no-store" }).end(body);
}

async function handle(request, response, { isolated }) {
  // The demo site is served isolated, as its own server (pkg-scripts/site/serve.js) serves it.
  if (isolated || request.url.startsWith("/app/")) {
    response.setHeader("Cross-Origin-Opener-Policy", "same-origin");
    response.setHeader("Cross-Origin-Embedder-Policy", "require-corp");
  }
  const { pathname, searchParams } = new URL(request.url, "http://localhost");
  if (pathname.startsWith("/__")) return control(pathname, searchParams, response);
  if (pathname.startsWith("/models/") || pathname.startsWith("/app/models/")) log.push({ method: request.method, url: request.url, range: request.headers.range ?? null });
  const path = fileFor(pathname.endsWith("/") ? pathname + "index.html" : pathname);
  const info = path && (await stat(path).catch(() => null));
  if (!info?.isFile() || !["GET", "HEAD"].includes(request.method)) {
    response.writeHead(404, { "Content-Type": "text/plain" }).end("not found\n");
    return;
  }
  const size = Math.min(info.size, Number(searchParams.get("length") ?? Infinity));
  const headers = {
    "Content-Type": TYPES[extname(path)] ?? "application/octet-stream",
    "Accept-Ranges": "bytes",
    "Cache-Control": "no-store",
  };
  if (etags.has(request.url)) headers.ETag = etags.get(request.url);
  let [start, end] = [0, size - 1];
  let status = 200;
  if (request.headers.range) {
    const range = parseRange(request.headers.range, size);
    if (!range) {
      response.writeHead(416, { ...headers, "Content-Range": `bytes */${size}` }).end();
      return;
    }
    [start, end] = range;
    status = 206;
    headers["Content-Range"] = `bytes ${start}-${end}/${size}`;
  }
  headers["Content-Length"] = String(Math.max(0, end - start + 1));
  response.writeHead(status, headers);
  if (request.method === "HEAD" || size === 0) {
    response.end();
    return;
  }
  const drop = drops.get(request.url);
  if (drop !== undefined && end - start + 1 > drop) {
    drops.delete(request.url);
    // Close the socket once the first `drop` bytes are flushed: the body ends short.
    const stream = createReadStream(path, { start, end: start + drop - 1 });
    stream.pipe(response, { end: false });
    stream.on("end", () => response.socket.end());
    return;
  }
  createReadStream(path, { start, end }).pipe(response);
}

/**
 * Listens on 127.0.0.1 on a free port; resolves to the base URL and a way to stop.
 * `isolated` sends COOP and COEP with every response.
 */
export function serve({ isolated = false } = {}) {
  const server = createServer((request, response) =>
    handle(request, response, { isolated }).catch((e) => {
      response.destroy(e);
    }),
  );
  return new Promise((done) =>
    server.listen(0, "127.0.0.1", () => {
      done({ url: `http://127.0.0.1:${server.address().port}`, close: () => server.close() });
    }),
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { url } = await serve({ isolated: process.argv.includes("--isolated") });
  console.log(url);
}
