// Writes the deployable site to www/dist/: the site's own files from www/, the npm package
// (pkg/) under dist/pkg/, marked and DOMPurify from www/node_modules under dist/vendor/ (with
// their licences), the icons (icons.js), and sw.js with this build's version, a hash of every
// other file, and the list of files it keeps offline. Run by pkg-scripts/build-site.sh.

import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { icons } from "./icons.js";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const www = join(repo, "www");
const dist = join(www, "dist");
const pkg = join(repo, "pkg");
const modules = join(www, "node_modules");

/** The site's own files and folders, as they are in www/. */
const SITE = ["index.html", "bench.html", "styles.css", "catalog.json", "manifest.webmanifest", "js"];

/** Vendored libraries: file in node_modules → name under vendor/. */
const VENDOR = {
  "marked/lib/marked.esm.js": "marked.js",
  "marked/LICENSE": "marked-LICENSE.txt",
  "dompurify/dist/purify.es.mjs": "purify.js",
  "dompurify/LICENSE": "dompurify-LICENSE.txt",
};

function fail(message) {
  console.error(`build-site: ${message}`);
  process.exit(1);
}

function write(path, bytes) {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, bytes);
}

/** Every file under `dir`, as paths relative to it with "/" separators, sorted. */
function filesUnder(dir) {
  const found = [];
  const walk = (at) => {
    for (const name of readdirSync(at)) {
      const path = join(at, name);
      if (statSync(path).isDirectory()) walk(path);
      else found.push(relative(dir, path).split(sep).join("/"));
    }
  };
  walk(dir);
  return found.sort();
}

if (!existsSync(join(pkg, "index.js")) || !existsSync(join(pkg, "torchlight_core_bg.wasm"))) {
  fail("pkg/ holds no built package: run pkg-scripts/build-npm.sh (or build-site.sh without --no-build-package)");
}

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });

for (const name of SITE) cpSync(join(www, name), join(dist, name), { recursive: true });

// The package as it runs in a page: its modules and the wasm, plain and threaded (not its
// README or types).
for (const dir of ["", "threads"]) {
  for (const name of readdirSync(join(pkg, dir))) {
    if (name.endsWith(".js") || name.endsWith(".wasm")) cpSync(join(pkg, dir, name), join(dist, "pkg", dir, name));
  }
}

for (const [from, to] of Object.entries(VENDOR)) {
  const source = join(modules, from);
  if (!existsSync(source)) fail(`${from} is missing from www/node_modules: run npm ci in www/`);
  let bytes = readFileSync(source);
  // Their source maps stay behind; so does the comment that would make devtools ask for them.
  if (to.endsWith(".js")) bytes = Buffer.from(bytes.toString("utf8").replace(/\n\/\/# sourceMappingURL=\S+\s*$/, "\n"));
  write(join(dist, "vendor", to), bytes);
}

for (const [name, bytes] of Object.entries(icons())) write(join(dist, "icons", name), bytes);

// Every file is kept offline; the version is a hash of their paths and bytes, and of the
// worker's own code.
const template = readFileSync(join(www, "sw.js"), "utf8");
const shell = filesUnder(dist);
const hash = createHash("sha256").update(template).update("\0");
for (const path of shell) hash.update(`${path}\0`).update(readFileSync(join(dist, path))).update("\0");
const version = hash.digest("hex").slice(0, 16);

if (!template.includes('"__SHELL_VERSION__"') || !template.includes("__SHELL_FILES__")) {
  fail("www/sw.js has lost its __SHELL_VERSION__ or __SHELL_FILES__ placeholder");
}
const worker = template
  .replace('"__SHELL_VERSION__"', JSON.stringify(version))
  .replace("__SHELL_FILES__", JSON.stringify(shell, null, 2));
write(join(dist, "sw.js"), worker);

const size = shell.reduce((total, path) => total + statSync(join(dist, path)).size, 0);
console.log(`build-site: wrote www/dist/ (version ${version}; ${shell.length + 1} files, ${(size / 1e6).toFixed(1)} MB kept offline)`);
