#!/usr/bin/env bash
# The npm package inside real web apps, each with its bundler's default configuration: packs
# pkg/ (`npm pack`, as a new user's `npm install ./torchlight-<version>.tgz` gets it), installs
# each example app's pinned bundler (`npm ci` in tests/bundlers/<app>/, when its lock file is
# newer than its install), then tests/bundlers/test.mjs installs the tarball into each app,
# builds it (Vite 8 and 6, Next.js with Turbopack and with webpack, esbuild; Vite's dev server;
# no bundler, from the same host and from another origin) and opens it in headless Chromium,
# where it loads the test model and streams an answer. About 2.5 minutes on 2 cores, `npm ci`
# from a warm npm cache included (the apps install about 450 MB, Next.js 370 MB of it).
# Builds pkg/ first unless --no-build. Needs chromium and tests/browser's playwright-core
# (pkg-scripts/setup.sh installs both).
source "$(dirname "$0")/steps.sh"
cd "$(dirname "$0")/.."

if [ "${1:-}" != "--no-build" ]; then
    bash pkg-scripts/build-npm.sh
fi

step "packing pkg/ with npm pack into target/bundlers/"
mkdir -p target/bundlers
rm -f target/bundlers/torchlight-*.tgz
tarball="target/bundlers/$(cd pkg && npm pack --silent --pack-destination ../target/bundlers)"

for app in vite vite6 next esbuild unbundled; do
    dir="tests/bundlers/$app"
    if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
        step "npm ci in $dir (the example app's pinned bundler)" \
            "npm must reach its registry; try '(cd $dir && npm ci)' by hand"
        (cd "$dir" && npm ci --no-audit --no-fund)
    fi
done

step "building each example app from $tarball and opening it in headless Chromium (tests/bundlers/test.mjs): a few minutes" \
    "the failing test's name says which bundler; its report is above"
TORCHLIGHT_TARBALL="$PWD/$tarball" node --test --test-concurrency=1 --test-reporter=spec tests/bundlers/test.mjs
