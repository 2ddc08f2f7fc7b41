// The example apps' host for tests/bundlers/test.mjs: an app's built files (`root`) or its own
// server (`upstream`: Vite's dev server, `next start`), with the test models under /models/
// (HTTP range requests, as model hosts have them) and, under /cdn/torchlight/, a copy of the
// package served as a CDN serves it (CORS open to every origin). `isolated` adds the COOP and
// COEP headers that make pages cross-origin isolated, so the CPU backend runs on several threads.

import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createServer, request as httpRequest } from "node:http";
import { connect } from "node:net";
import { extname, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

import { parseRange } from "../../pkg-scripts/site/serve.js";

const MODELS = fileURLToPath(new URL("../../models", import.meta.url));

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".svg": "image/svg+xml",
};

/** The file under `root` that `path` names, or null. */
function inside(root, path) {
  const file = resolve(root, "." + decodeURIComponent(path));
  return file === root || file.startsWith(root + sep) ? file : null;
}

async function sendFile(request, response, file) {
  const info = file && (await stat(file).catch(() => null));
  if (!info?.isFile()) {
    response.writeHead(404, { "Content-Type": "text/plain" }).end("not found\n");
    return;
  }
  const headers = { "Content-Type": TYPES[extname(file)] ?? "application/octet-stream", "Accept-Ranges": "bytes", "Cache-Control": "no-store" };
  let [start, end] = [0, info.size - 1];
  let status = 200;
  if (request.headers.range) {
    const range = parseRange(request.headers.range, info.size);
    if (!range) {
      response.writeHead(416, { ...headers, "Content-Range": `bytes */${info.size}` }).end();
      return;
    }
    [start, end] = range;
    status = 206;
    headers["Content-Range"] = `bytes ${start}-${end}/${info.size}`;
  }
  headers["Content-Length"] = String(Math.max(0, end - start + 1));
  response.writeHead(status, headers);
  if (request.method === "HEAD" || info.size === 0) response.end();
  else createReadStream(file, { start, end }).pipe(response);
}

/** Forwards the request to `upstream` (an http://host:port URL) and its answer back. */
function forward(request, response, upstream) {
  const { hostname, port } = new URL(upstream);
  const out = httpRequest({ hostname, port, method: request.method, path: request.url, headers: request.headers }, (answer) => {
    response.writeHead(answer.statusCode, answer.headers);
    answer.pipe(response);
  });
  out.on("error", (e) => response.destroy(e));
  request.pipe(out);
}

/**
 * Listens on 127.0.0.1 on a free port; resolves to `{ url, port, close }`. `cdn` is the folder
 * served under /cdn/torchlight/.
 */
export function serve({ root, upstream, cdn, isolated = false }) {
  const server = createServer((request, response) => {
    if (isolated) {
      response.setHeader("Cross-Origin-Opener-Policy", "same-origin");
      response.setHeader("Cross-Origin-Embedder-Policy", "require-corp");
    }
    const { pathname } = new URL(request.url, "http://localhost");
    let answer;
    if (pathname.startsWith("/models/")) {
      answer = sendFile(request, response, inside(MODELS, pathname.slice("/models".length)));
    } else if (cdn && pathname.startsWith("/cdn/torchlight/")) {
      response.setHeader("Access-Control-Allow-Origin", "*");
      response.setHeader("Cross-Origin-Resource-Policy", "cross-origin");
      answer = sendFile(request, response, inside(cdn, pathname.slice("/cdn/torchlight".length)));
    } else if (upstream) {
      return forward(request, response, upstream);
    } else {
      answer = sendFile(request, response, inside(root, pathname.endsWith("/") ? `${pathname}index.html` : pathname));
    }
    answer.catch((e) => response.destroy(e));
  });
  // Vite's dev server pushes its updates over a WebSocket: pass the connection through.
  server.on("upgrade", (request, socket, head) => {
    if (!upstream) return socket.destroy();
    const { hostname, port } = new URL(upstream);
    const out = connect(port, hostname, () => {
      const lines = Object.entries(request.headers).map(([name, value]) => `${name}: ${value}`);
      out.write(`${request.method} ${request.url} HTTP/1.1\r\n${lines.join("\r\n")}\r\n\r\n`);
      out.write(head);
      out.pipe(socket).pipe(out);
    });
    out.on("error", () => socket.destroy());
    socket.on("error", () => out.destroy());
  });
  return new Promise((done) =>
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      done({
        url: `http://127.0.0.1:${port}`,
        port,
        close: () => {
          server.closeAllConnections();
          server.close();
        },
      });
    }),
  );
}
