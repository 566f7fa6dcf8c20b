// onnxruntime-web loads its WebAssembly binary from the page's own build, never from a CDN.
// The package exports its binaries; Vite serves this one in dev and copies it into the build.
import wasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.jsep.wasm?url';

let configured: Promise<void> | undefined;

/**
 * Points onnxruntime-web at the WASM binary served with the page (the bundled
 * `onnxruntime-web` entry embeds its JavaScript glue and fetches only this
 * file).
 */
export function configureOrt(): Promise<void> {
  // A dynamic import, as @diffssl/core's createRunner does: onnxruntime-web stays out of the page's first chunk.
  configured ??= import('onnxruntime-web').then((ort) => {
    ort.env.wasm.wasmPaths = { wasm: new URL(wasmUrl, document.baseURI).href };
    // One thread: ORT's threads need a cross-origin-isolated page (COOP/COEP headers), which a plain static host lacks.
    ort.env.wasm.numThreads = 1;
  });
  return configured;
}

/** Whether the browser offers WebGPU at all (an adapter may still be refused). */
export function hasWebGpu(): boolean {
  return typeof navigator !== 'undefined' && 'gpu' in navigator && Boolean((navigator as { gpu?: unknown }).gpu);
}
