/**
 * Browser entry of `@diffssl/core`: the same API as in Node, with sessions on
 * onnxruntime-web (WebGPU, then WASM).
 *
 * @packageDocumentation
 */
import type { OnnxModel } from './onnx/model.js';
import { createRunner } from './runtime/browser.js';
import type { RunnerOptions } from './runtime/runner.js';
import { compileTrainStepWith, type TrainStep, type TrainStepOptions } from './train/train-step.js';

export * from './common.js';
export { createRunner, DEFAULT_BROWSER_PROVIDERS } from './runtime/browser.js';

/**
 * Compiles forward, loss, backward and optimizer update into one ONNX model
 * and opens an onnxruntime-web session for it.
 *
 * @public
 */
export function compileTrainStep(options: TrainStepOptions): Promise<TrainStep> {
  return compileTrainStepWith((model: OnnxModel, runnerOptions?: RunnerOptions) => createRunner(model, runnerOptions), options);
}
