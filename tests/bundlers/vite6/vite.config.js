// What the package README's "Using it with your bundler" says Vite 7 and older need, for their
// dev server only: it pre-bundles dependencies with esbuild, away from the package's worker and
// wasm files. Builds need nothing.
export default {
  optimizeDeps: { exclude: ["torchlight"] },
};
