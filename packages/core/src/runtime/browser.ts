import type { OnnxModel } from '../onnx/model.js';
import {
  createRunnerWith,
  type ExecutionProvider,
  type ModelSource,
  type OrtBinding,
  type Runner,
  type RunnerOptions,
  type AutoCandidate,
  type RuntimeEnvironment,
} from './runner.js';
import { autoWebGpuRefusal, describeAdapter, type GpuAdapterLike, type WebGpuAdapterReport } from './webgpu-adapter.js';

/**
 * Providers tried by default in browsers: `auto` (WebGPU when the browser
 * gives a hardware adapter, else WASM; silently).
 *
 * @public
 */
export const DEFAULT_BROWSER_PROVIDERS: readonly ExecutionProvider[] = ['auto'];

/** The part of `navigator.gpu` read here. */
interface GpuLike {
  requestAdapter(): Promise<GpuAdapterLike | null>;
}

/**
 * The browser's WebGPU adapter through `navigator.gpu` (or the given GPU
 * object), or why there is none.
 *
 * @internal
 */
export async function probeBrowserAdapter(
  gpu: GpuLike | undefined = (globalThis as { navigator?: { gpu?: GpuLike } }).navigator?.gpu,
): Promise<WebGpuAdapterReport> {
  if (!gpu) return { found: false, reason: 'this browser has no navigator.gpu (WebGPU is off or unsupported)' };
  try {
    const adapter = await gpu.requestAdapter();
    return adapter ? { found: true, adapter: describeAdapter(adapter) } : { found: false, reason: 'navigator.gpu.requestAdapter() found no adapter' };
  } catch (error) {
    return { found: false, reason: `navigator.gpu.requestAdapter() failed: ${error instanceof Error ? error.message : String(error)}` };
  }
}

let adapterProbe: Promise<WebGpuAdapterReport> | undefined;

/**
 * What `auto` tries in a browser: WebGPU on a hardware adapter, then WASM.
 *
 * @internal
 */
export function browserAutoCandidates(adapter: () => Promise<WebGpuAdapterReport> = () => (adapterProbe ??= probeBrowserAdapter())): AutoCandidate[] {
  return [{ provider: 'webgpu', check: async () => autoWebGpuRefusal(await adapter()) }, { provider: 'wasm' }];
}

async function loadModel(model: OnnxModel): Promise<Uint8Array> {
  return model.serialize().model;
}

/**
 * Creates an ONNX Runtime session in the browser (onnxruntime-web). By
 * default (`auto`) it uses WebGPU when `navigator.gpu` gives a hardware
 * adapter, else WASM, silently; named providers follow the same fallback,
 * warning and `strict` rules as in Node.
 *
 * @param model - a compiled model, ONNX bytes, or a URL
 * @param options - providers, strict, threads, optimization level (`thread: 'worker'` is Node only)
 * @throws {@link ProviderUnavailableError} when no provider loads (or the first fails under `strict`); {@link UnsupportedError} for `thread: 'worker'`
 * @public
 */
export async function createRunner(model: ModelSource, options?: RunnerOptions): Promise<Runner> {
  const ort = (await import('onnxruntime-web')) as unknown as OrtBinding & { default?: OrtBinding };
  const binding = ort.InferenceSession ? ort : ort.default!;
  const environment: RuntimeEnvironment = { defaultProviders: DEFAULT_BROWSER_PROVIDERS, loadModel, autoCandidates: browserAutoCandidates() };
  return createRunnerWith(binding, environment, model, options);
}
