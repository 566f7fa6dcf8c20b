// The page's entry: it loads the page (main.ts) only where there is a document.
// onnxruntime-web runs its WASM threads as module workers of its own chunk, which imports the bundler's shared
// helpers. With the page behind this dynamic import, those helpers get a chunk of their own and the workers load
// only that; were they left in the page's chunk, each worker would run the page and fail on `document`. Should a
// bundler put them in this entry chunk instead, the guard below keeps the workers from starting the page.
if (typeof document !== 'undefined') void import('./main.js');
