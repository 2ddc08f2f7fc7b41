// Checks the assembled npm package in pkg/ against what `npm pack` would put in its tarball: every
// file the build wrote is packed, every file a module imports or names with
// `new URL("...", import.meta.url)` (workers, wasm) is packed, so are the entry points package.json
// names, and the version index.js reports is package.json's. Run by pkg-scripts/build-npm.sh.

import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join, posix, relative } from "node:path";

const dir = process.argv[2] ?? "pkg";
const problems = [];

const [report] = JSON.parse(execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: dir, encoding: "utf8" }));
const packed = new Set(report.files.map((f) => f.path));

const built = readdirSync(dir, { recursive: true, withFileTypes: true })
  .filter((entry) => entry.isFile())
  .map((entry) => relative(dir, join(entry.parentPath ?? entry.path, entry.name)).split("\\").join("/"));
for (const file of built) {
  if (!packed.has(file)) problems.push(`${file} is in ${dir}/ but not in the tarball: add it to "files" in pkg-scripts/js/package.json`);
}

// What each module reaches: static and dynamic imports, and files named relative to it.
const REFERENCES = [
  /\bfrom\s*["'](\.{1,2}\/[^"']+)["']/g,
  /\bimport\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g,
  /new URL\(\s*["']([^"':]+)["']\s*,\s*import\.meta\.url\s*\)/g,
];
for (const file of packed) {
  if (!file.endsWith(".js")) continue;
  // Comments name no file.
  const source = readFileSync(join(dir, file), "utf8")
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/(^|\s)\/\/.*$/gm, "$1");
  for (const pattern of REFERENCES) {
    for (const [, target] of source.matchAll(pattern)) {
      const resolved = posix.normalize(posix.join(posix.dirname(file), target));
      if (!packed.has(resolved)) problems.push(`${file} refers to ${target} (${resolved}), which is not in the tarball`);
    }
  }
}

const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
const entries = [pkg.main, pkg.module, pkg.browser, pkg.types, ...Object.values(pkg.exports["."])];
for (const entry of entries) {
  if (!packed.has(posix.normalize(entry))) problems.push(`package.json names ${entry}, which is not in the tarball`);
}
const reported = /export const version = "([^"]+)"/.exec(readFileSync(join(dir, "index.js"), "utf8"))?.[1];
if (reported !== pkg.version) problems.push(`index.js reports version ${reported}, package.json says ${pkg.version}: make them agree`);

if (problems.length > 0) {
  console.error(`check-package: ${dir}/ is not what its tarball should be:\n  ${problems.join("\n  ")}`);
  process.exit(1);
}
console.log(`check-package: ${report.filename}: ${packed.size} files, ${report.size} bytes packed (${report.unpackedSize} unpacked); every module's imports and files are in it`);
