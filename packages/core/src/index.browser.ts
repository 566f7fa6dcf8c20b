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
import { compileModuleTrainStepWith, type ModuleTrainStep, type ModuleTrainStepOptions } from './nn/trainer.js';

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

/**
 * Compiles a train step of modules built with a `'train'`-mode
 * {@link BuildContext}: their trainable tensors are trained, their buffers
 * (running statistics) updated, and the training state saves and loads.
 *
 * @example
 * ```ts
 * const context = new BuildContext(graph, head, { mode: 'train' });
 * const logits = head.forward(context, x);
 * const step = await compileModuleTrainStep({ context, loss: crossEntropy(logits, labels), optimizer: sgd() });
 * await step.run({ x: batch, labels: batchLabels }, { learningRate: 0.05 });
 * step.syncModules();
 * ```
 * @throws {@link ConfigError} for a context in eval mode or a graph without trainable tensors
 * @public
 */
export function compileModuleTrainStep(options: ModuleTrainStepOptions): Promise<ModuleTrainStep> {
  return compileModuleTrainStepWith((model: OnnxModel, runnerOptions?: RunnerOptions) => createRunner(model, runnerOptions), options);
}
