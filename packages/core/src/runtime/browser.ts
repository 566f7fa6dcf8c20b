import type { OnnxModel } from '../onnx/model.js';
import {
  createRunnerWith,
  type ExecutionProvider,
  type ModelSource,
  type OrtBinding,
  type Runner,
  type RunnerOptions,
  type RuntimeEnvironment,
} from './runner.js';

/** Providers tried by default in browsers: WebGPU, then WASM. @public */
export const DEFAULT_BROWSER_PROVIDERS: readonly ExecutionProvider[] = ['webgpu', 'wasm'];

async function loadModel(model: OnnxModel): Promise<Uint8Array> {
  return model.serialize().model;
}

/**
 * Creates an ONNX Runtime session in the browser (onnxruntime-web), trying
 * WebGPU then WASM by default, with the same fallback and `strict` rules as
 * in Node.
 *
 * @param model - a compiled model, ONNX bytes, or a URL
 * @param options - providers, strict, threads, optimization level (`thread: 'worker'` is Node only)
 * @throws {@link ProviderUnavailableError} when no provider loads (or the first fails under `strict`); {@link UnsupportedError} for `thread: 'worker'`
 * @public
 */
export async function createRunner(model: ModelSource, options?: RunnerOptions): Promise<Runner> {
  const ort = (await import('onnxruntime-web')) as unknown as OrtBinding & { default?: OrtBinding };
  const binding = ort.InferenceSession ? ort : ort.default!;
  const environment: RuntimeEnvironment = { defaultProviders: DEFAULT_BROWSER_PROVIDERS, loadModel };
  return createRunnerWith(binding, environment, model, options);
}
