/**
 * Tensors and tensor ops for DiffSSL.
 *
 * - {@link HostTensor}: typed host tensors with cheap views, converting to and
 *   from `ndarray` and ONNX Runtime tensors.
 * - {@link Graph} and the op functions ({@link conv2d}, {@link groupNorm},
 *   {@link layerNorm}, {@link matmul}, ...): symbolic graphs whose every op
 *   states its shape rule, ONNX lowering, reference kernel and gradient.
 * - {@link compileModel}, {@link gradients}, {@link sgd}, {@link adamw} and
 *   {@link compileTrainStep}: ONNX models, reverse-mode autodiff and one-run
 *   train steps.
 * - {@link createRunner}: ONNX Runtime sessions with provider fallback
 *   (`auto` by default: CUDA, then WebGPU on a hardware adapter, then the CPU in Node).
 *
 * @example
 * ```ts
 * import { Graph, HostTensor, compileModel, createRunner, relu } from '@diffssl/core';
 * const graph = new Graph();
 * const x = graph.input('x', 'float32', ['batch', 4]);
 * const runner = await createRunner(compileModel({ outputs: { y: relu(x) } }), { executionProviders: ['cpu'] });
 * const { y } = await runner.run({ x: HostTensor.from('float32', [1, 4], [-1, 2, -3, 4]) });
 * ```
 *
 * @packageDocumentation
 * @module @diffssl/core
 */
import type { OnnxModel } from './onnx/model.js';
import { createRunner } from './runtime/node.js';
import type { RunnerOptions } from './runtime/runner.js';
import { compileTrainStepWith, type TrainStep, type TrainStepOptions } from './train/train-step.js';
import { compileModuleTrainStepWith, type ModuleTrainStep, type ModuleTrainStepOptions } from './nn/trainer.js';

export * from './common.js';
export { createRunner, saveModel, DEFAULT_NODE_PROVIDERS } from './runtime/node.js';
export { probeNodeProvider, probeWebGpuAdapter } from './runtime/node-probes.js';
export {
  diagnoseProviders,
  type AutoChoice,
  type DiagnoseBinding,
  type DiagnoseOptions,
  type OrtBackend,
  type ProviderDiagnosis,
  type ProvidersDiagnosis,
} from './runtime/diagnose.js';
export { readSafetensorsFile, type ReadSafetensorsFileOptions } from './io/safetensors-file.js';
export { publishAtomically, temporarySibling, writeFileAtomic, type PublishOptions, type PublishOutcome } from './io/atomic-publish.js';

/**
 * Compiles forward, loss, backward and optimizer update into one ONNX model
 * and opens a session for it (onnxruntime-node).
 *
 * @example
 * ```ts
 * const step = await compileTrainStep({ loss, parameters: [weight, bias], optimizer: sgd(), outputs: { logits } });
 * const { losses } = await step.run({ x, labels }, { learningRate: 0.01 });
 * ```
 * @throws {@link ShapeError} for a non-scalar loss; {@link ConfigError} for bad options
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
