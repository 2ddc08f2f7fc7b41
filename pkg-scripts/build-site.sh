#!/usr/bin/env bash
# Builds the demo site and offline PWA into www/dist/, a static site that works from any host
# and any sub-path (every path in it is relative): the npm package under dist/pkg/ (built first
# by build-npm.sh, unless --no-build-package), marked and DOMPurify under dist/vendor/ (from
# www/package-lock.json: `npm ci` when www/node_modules is missing or older than the lock
# file), the icons, and a service worker whose cache version is a hash of the built files.
# Needs Node.js 20 or newer.
source "$(dirname "$0")/steps.sh"
cd "$(dirname "$0")/.."

case "${1:-}" in
    "") bash pkg-scripts/build-npm.sh ;;
    --no-build-package) ;;
    *) echo "usage: bash pkg-scripts/build-site.sh [--no-build-package]" >&2; exit 2 ;;
esac

if [ ! -d www/node_modules ] || [ www/package-lock.json -nt www/node_modules/.package-lock.json ]; then
    step "npm ci in www/ (marked and DOMPurify)" "npm must reach its registry; try '(cd www && npm ci)' by hand"
    (cd www && npm ci --no-audit --no-fund)
fi

step "building the site into www/dist/"
node pkg-scripts/site/build.js
