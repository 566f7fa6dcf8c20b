// The response headers that make the page cross-origin isolated, shared by the Vite dev and preview servers
// (vite.config.ts), the end-to-end test's server and the thread benchmark; public/_headers carries the same
// two lines for static hosts that read that file (Netlify, Cloudflare Pages).

/**
 * `Cross-Origin-Opener-Policy: same-origin` and `Cross-Origin-Embedder-Policy:
 * require-corp`: with both, the browser sets `crossOriginIsolated`, gives the
 * page `SharedArrayBuffer`, and onnxruntime-web's WASM can run several
 * threads. Every resource the page loads must then be same-origin (it is) or
 * carry a `Cross-Origin-Resource-Policy` header.
 */
export const CROSS_ORIGIN_ISOLATION_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
});
