// onnxruntime-web's set-up for the page: where its WebAssembly binary is, how many threads it runs,
// and which execution provider the page uses (WebGPU where the browser offers a usable adapter, else WASM).
// The package exports its binaries; Vite serves this one in dev and copies it into the build, so the page
// loads it from its own origin, never from a CDN.
import wasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.jsep.wasm?url';
import { pageOptions, type PageProvider } from './page-options.js';

export type { PageProvider } from './page-options.js';

/** What the browser's WebGPU adapter says of itself (`GPUAdapter.info`). */
export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for a software adapter (SwiftShader, lavapipe): it runs on the CPU. */
  isFallbackAdapter: boolean;
}

/** The part of WebGPU's API the probe uses (TypeScript's DOM library has no WebGPU types). */
interface GpuLike {
  requestAdapter(): Promise<{
    info: { vendor: string; architecture: string; device: string; description: string; isFallbackAdapter?: boolean };
    requestDevice(): Promise<{ destroy(): void }>;
  } | null>;
}

/** The WebGPU probe's answer: an adapter and a device were obtained, or why not. */
export type WebGpuProbe = { available: true; adapter: AdapterSummary } | { available: false; reason: string };

/** How onnxruntime-web was set up, for the page's text and its state. */
export interface OrtSetup {
  /** `self.crossOriginIsolated`: the page was served with COOP `same-origin` and COEP `require-corp`. */
  crossOriginIsolated: boolean;
  /** Logical cores the browser reports (`navigator.hardwareConcurrency`). */
  cores: number;
  /** `ort.env.wasm.numThreads`: the threads of ORT's WASM kernels (1 unless isolated). */
  threads: number;
  webgpu: WebGpuProbe;
  /** The provider the page uses for the classifier, the extraction and the training in the tab. */
  provider: PageProvider;
  /** Why the provider differs from the default choice, if it does (a `?provider=` or `?threads=` in the URL). */
  notes: string[];
}

/** At most this many WASM threads: ORT's own cap, since its kernels gain little beyond it. */
export const MAX_WASM_THREADS = 4;

/**
 * The WASM thread count for a page: one unless the page is cross-origin
 * isolated (threads share a `SharedArrayBuffer`, which browsers give only to
 * isolated pages), else one per logical core up to {@link MAX_WASM_THREADS}.
 * A requested count (the page's `?threads=N`) wins where threads are possible.
 *
 * @param isolated - `self.crossOriginIsolated`
 * @param cores - `navigator.hardwareConcurrency` (0 or undefined when unknown)
 * @param requested - a count asked for, if any
 * @throws RangeError for a requested count that is not a positive integer
 */
export function wasmThreads(isolated: boolean, cores: number | undefined, requested?: number): number {
  if (requested !== undefined && !(Number.isInteger(requested) && requested >= 1))
    throw new RangeError(`threads: expected a positive integer; found ${String(requested)}`);
  if (!isolated) return 1;
  return requested ?? Math.max(1, Math.min(MAX_WASM_THREADS, cores ?? 1));
}

/**
 * Asks the browser for a WebGPU adapter and a device on it. onnxruntime-web
 * makes the same request when a session asks for `webgpu`; probing first lets
 * the page choose WASM outright where there is none (instead of a failed
 * session and a warning) and say which adapter it uses.
 */
export async function probeWebGpu(): Promise<WebGpuProbe> {
  const gpu = typeof navigator === 'undefined' ? undefined : (navigator as Navigator & { gpu?: GpuLike }).gpu;
  if (!gpu) return { available: false, reason: 'this browser exposes no navigator.gpu (no WebGPU, or not a secure context)' };
  try {
    const adapter = await gpu.requestAdapter();
    if (!adapter) return { available: false, reason: 'navigator.gpu.requestAdapter() found no adapter' };
    // ORT requests its own device on the same default adapter; this one only proves that a device can be had.
    (await adapter.requestDevice()).destroy();
    const { vendor, architecture, device, description, isFallbackAdapter } = adapter.info;
    return { available: true, adapter: { vendor, architecture, device, description, isFallbackAdapter: isFallbackAdapter === true } };
  } catch (error) {
    return { available: false, reason: `WebGPU adapter or device request failed: ${error instanceof Error ? error.message : String(error)}` };
  }
}

let configured: Promise<OrtSetup> | undefined;

/**
 * Sets onnxruntime-web up once per page: the WASM binary served with the page
 * (the bundled `onnxruntime-web` entry embeds its JavaScript glue and fetches
 * only this file), the WASM thread count ({@link wasmThreads}), and the
 * provider ({@link probeWebGpu}: WebGPU where an adapter and a device are
 * obtained on a hardware adapter, else WASM (a software adapter only with
 * `?provider=webgpu`); the URL's `?provider=` and `?threads=` override).
 *
 * @throws RangeError for bad URL options (`pageOptions`); an Error for `?provider=webgpu` without a usable adapter
 */
export function configureOrt(): Promise<OrtSetup> {
  // A dynamic import, as @diffssl/core's createRunner does: onnxruntime-web stays out of the page's first chunk.
  configured ??= (async () => {
    const options = pageOptions(location.search);
    const ort = await import('onnxruntime-web');
    ort.env.wasm.wasmPaths = { wasm: new URL(wasmUrl, document.baseURI).href };
    const isolated = self.crossOriginIsolated === true;
    const cores = navigator.hardwareConcurrency || 0;
    const threads = wasmThreads(isolated, cores, options.threads);
    ort.env.wasm.numThreads = threads;
    const notes: string[] = [];
    if (options.threads !== undefined && !isolated)
      notes.push(`?threads=${options.threads} ignored: the page is not cross-origin isolated, so WASM runs 1 thread`);
    if (options.threads !== undefined && isolated) notes.push(`${threads} WASM threads, as ?threads= asks`);
    const probe: WebGpuProbe = options.provider === 'wasm' ? { available: false, reason: 'not probed: ?provider=wasm' } : await probeWebGpu();
    if (options.provider === 'webgpu' && !probe.available) throw new Error(`?provider=webgpu, but WebGPU is unusable: ${probe.reason}`);
    if (options.provider === 'wasm') notes.push('WASM, as ?provider=wasm asks');
    // A software adapter (SwiftShader, lavapipe) runs WebGPU on the CPU, slower than WASM: used only when asked for.
    const software = probe.available && probe.adapter.isFallbackAdapter;
    if (software && options.provider !== 'webgpu')
      notes.push(`software WebGPU adapter (${probe.adapter.description || probe.adapter.vendor}) not used: slower than WASM; ?provider=webgpu uses it`);
    if (software && options.provider === 'webgpu') notes.push('software WebGPU adapter, as ?provider=webgpu asks');
    const provider = probe.available && (!software || options.provider === 'webgpu') ? 'webgpu' : 'wasm';
    return { crossOriginIsolated: isolated, cores, threads, webgpu: probe, provider, notes };
  })();
  return configured;
}

/** The `executionProviders` of every session the page opens: the chosen provider, and WASM behind WebGPU. */
export function executionProviders(provider: PageProvider): ('webgpu' | 'wasm')[] {
  return provider === 'webgpu' ? ['webgpu', 'wasm'] : ['wasm'];
}
