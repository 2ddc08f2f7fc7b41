// A static server for the built site (www/dist/), as any static host would serve it, with the
// test models of models/ beside it under `models/` so the catalog's first entry loads. HTTP range
// requests work (the package downloads with them). `--base /app/` serves the site under a
// sub-path (and nothing outside it), which shows that every path in it is relative.
//
//   node pkg-scripts/site/serve.js [--port N] [--host H] [--base /path/] [--root DIR] [--models DIR]
//
// The port is --port, else $PORT, else 8080 (0 picks a free one). Prints the site's URL first.

import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createServer } from "node:http";
import { extname, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const repo = fileURLToPath(new URL("../..", import.meta.url));

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".webmanifest": "application/manifest+json",
  ".wasm": "application/wasm",
  ".png": "image/png",
  ".svg": "image/svg+xml",
  ".md": "text/markdown; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
};

/**
 * `[start, end]` (inclusive) of a single `bytes=` range, or null when it cannot be served. (The
 * browser tests' server uses it too.)
 */
export function parseRange(header, size) {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return null;
  const [start, end] =
    m[1] === ""
      ? [Math.max(0, size - Number(m[2])), size - 1]
      : [Number(m[1]), m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1)];
  return start <= end && start < size ? [start, end] : null;
}

/** The file under `root` that `path` (already stripped of its prefix) names, or null. */
function inside(root, path) {
  let decoded;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return null;
  }
  const file = resolve(root, "." + (decoded.startsWith("/") ? decoded : `/${decoded}`));
  return file === root || file.startsWith(root + sep) ? file : null;
}

async function sendFile(request, response, file) {
  const info = file && (await stat(file).catch(() => null));
  if (!info?.isFile()) return notFound(response);
  const size = info.size;
  const headers = {
    "Content-Type": TYPES[extname(file)] ?? "application/octet-stream",
    "Accept-Ranges": "bytes",
    // Always revalidate: the service worker keeps the versioned copy, this server the latest.
    "Cache-Control": "no-cache",
    "Last-Modified": info.mtime.toUTCString(),
    "X-Content-Type-Options": "nosniff",
    // Cross-origin isolation (SharedArrayBuffer), so the CPU backend runs on every core. The
    // site loads nothing cross-origin but CORS fetches (model hosts), which isolation allows.
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
  };
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
  if (request.method === "HEAD" || size === 0) return response.end();
  createReadStream(file, { start, end }).pipe(response);
}

function notFound(response) {
  response.writeHead(404, { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store" }).end("not found\n");
}

/**
 * Serves `root` at `base` (a path that starts and ends with "/") and `models` at `base + "models/"`
 * on `host:port`; resolves to `{ url, close }` once listening.
 */
export function serve({ root = resolve(repo, "www/dist"), models = resolve(repo, "models"), base = "/", host = "127.0.0.1", port = 8080 } = {}) {
  root = resolve(root);
  models = resolve(models);
  const server = createServer(async (request, response) => {
    try {
      if (!["GET", "HEAD"].includes(request.method)) {
        response.writeHead(405, { Allow: "GET, HEAD" }).end();
        return;
      }
      const { pathname, search } = new URL(request.url, "http://localhost");
      if (pathname === base.slice(0, -1) && base !== "/") {
        response.writeHead(301, { Location: base + search }).end();
        return;
      }
      if (!pathname.startsWith(base)) return notFound(response);
      const path = pathname.slice(base.length - 1);
      if (path.startsWith("/models/")) return await sendFile(request, response, inside(models, path.slice("/models".length)));
      return await sendFile(request, response, inside(root, path.endsWith("/") ? `${path}index.html` : path));
    } catch (e) {
      response.destroy(e);
    }
  });
  return new Promise((done, fail) => {
    server.once("error", fail);
    server.listen(port, host, () => {
      const shown = host.includes(":") ? `[${host}]` : host;
      done({ url: `http://${shown}:${server.address().port}${base}`, close: () => server.close() });
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      port: { type: "string" },
      host: { type: "string", default: "127.0.0.1" },
      base: { type: "string", default: "/" },
      root: { type: "string" },
      models: { type: "string" },
    },
  });
  let base = values.base;
  if (!base.startsWith("/")) base = `/${base}`;
  if (!base.endsWith("/")) base = `${base}/`;
  const port = Number(values.port ?? process.env.PORT ?? 8080);
  try {
    const { url } = await serve({ root: values.root, models: values.models, base, host: values.host, port });
    console.log(url);
  } catch (e) {
    console.error(`serve: cannot listen on ${values.host}:${port}: ${e.message}`);
    process.exit(1);
  }
}
