import { BuildContext, DTypeError, Graph, type HostTensor, ShapeError } from '@diffssl/core';
import { buildHead, parseHeadSpec } from '../heads/head-spec.js';
import { isBatchNormBuffer, readJsonFile, readTensorFile, type StepRuntimeOptions } from './options.js';
import { checkLearningRate, inputLabels, runtimeOf, writeReferenceStep } from './reference-step.js';

/** Options of {@link headStep} (the `diffssl head-step` command). @public */
export interface HeadStepOptions extends StepRuntimeOptions {
  /** JSON file with the head spec (`{"kind":"linear"|"fusion"|"layers", ...}`, the reference's argument names). */
  head: string;
  /** safetensors with the parameters under the reference's names (BatchNorm buffers may be absent: mean 0, var 1). */
  params: string;
  /** safetensors with `labels` (int64 [B]) and `input` [B,C,H,W] (linear, layers) or `t{T}/block{NN}` (fusion). */
  input: string;
  /** Learning rate of the plain SGD step. */
  lr: number;
  /** Where to write the result. */
  out: string;
}

/**
 * One training step of a head, exactly as the reference fixtures were made:
 * training mode (BatchNorm uses batch statistics and updates its running
 * statistics), mean cross-entropy on `labels`, one plain SGD step at `lr`.
 * Writes `logits`, `loss` [1], `grad/<name>` and `after_sgd/<name>` for every
 * trainable parameter, and `buffer_after/<name>` for every BatchNorm running
 * mean, variance and `num_batches_tracked`. A BatchNorm applied once per
 * timestep normalizes each timestep with its own batch statistics and updates
 * its buffers once per timestep, in `t_list` order, as the reference does.
 *
 * @returns the names written
 * @throws `ConfigError` for a bad head spec, missing inputs or a learning rate that is not a finite number; `StateDictMismatchError` listing missing, unexpected and mis-shaped parameters
 * @public
 */
export async function headStep(options: HeadStepOptions): Promise<string[]> {
  checkLearningRate(options.lr);
  const spec = parseHeadSpec(await readJsonFile(options.head, '--head'));
  const input = await readTensorFile(options.input, '--input');
  const labels = inputLabels(input, options.input);
  const head = buildHead(spec, input);
  head.module.loadStateDict(await readTensorFile(options.params, '--params'), { allowMissing: isBatchNormBuffer });
  const feeds: Record<string, HostTensor> = { labels };
  for (const name of head.inputs.keys()) {
    const tensor = input.get(name)!;
    if (tensor.dtype !== 'float32') throw new DTypeError(`--input: ${name} must be float32; found ${tensor.dtype}`);
    if (tensor.shape[0] !== labels.shape[0]) throw new ShapeError(`--input: ${name} has ${tensor.shape[0]} images but labels has ${labels.shape[0]}`);
    feeds[name] = tensor;
  }
  const graph = new Graph();
  const context = new BuildContext(graph, head.module, { mode: 'train' });
  const inputs = new Map([...head.inputs].map(([name, shape]) => [name, graph.input(name, 'float32', ['batch', ...shape])]));
  const logits = head.forward(context, inputs);
  return writeReferenceStep(context, logits, feeds, { ...runtimeOf(options), lr: options.lr, out: options.out, bufferUpdates: true });
}
