import {
  compileModel,
  ConfigError,
  createRunner,
  crossEntropy,
  DTypeError,
  gradients,
  HostTensor,
  mul,
  sub,
  writeFileAtomic,
  writeSafetensors,
  type BuildContext,
  type SymbolicTensor,
} from '@diffssl/core';
import type { StepRuntimeOptions } from './options.js';

/**
 * What the reference checks `head-step` and `finetune-step` share: their
 * input checks and the one plain SGD step whose values they write.
 */

/**
 * Checks a reference step's learning rate.
 *
 * @throws `ConfigError` for a learning rate that is not a finite number
 */
export function checkLearningRate(lr: number): void {
  if (!Number.isFinite(lr)) throw new ConfigError(`--lr: expected a finite number; found ${lr}`);
}

/**
 * The `labels` (int64 [B]) of a reference step's `--input` file.
 *
 * @throws `ConfigError` when they are missing; `DTypeError` when they are not int64 [B]
 */
export function inputLabels(input: ReadonlyMap<string, HostTensor>, path: string): HostTensor {
  const labels = input.get('labels');
  if (!labels) throw new ConfigError(`--input: expected a tensor 'labels' (int64 [B]) in ${path}; found ${[...input.keys()].join(', ') || 'none'}`);
  if (labels.dtype !== 'int64' || labels.rank !== 1)
    throw new DTypeError(`--input: labels must be int64 [B]; found ${labels.dtype}[${labels.shape.join(', ')}]`);
  return labels;
}

/** The runtime part of the step commands' options, as {@link writeReferenceStep} takes it. */
export function runtimeOf(options: StepRuntimeOptions): StepRuntimeOptions {
  return {
    ...(options.providers ? { providers: options.providers } : {}),
    ...(options.strict !== undefined ? { strict: options.strict } : {}),
    ...(options.threads !== undefined ? { threads: options.threads } : {}),
    ...(options.onPlacement ? { onPlacement: options.onPlacement } : {}),
  };
}

/** Options of {@link writeReferenceStep}. */
export interface ReferenceStepOptions extends StepRuntimeOptions {
  /** Learning rate of the plain SGD step. */
  lr: number;
  /** Where to write the result. */
  out: string;
  /** Also write `buffer_after/<name>` for every BatchNorm running statistic and `num_batches_tracked`. */
  bufferUpdates: boolean;
}

/**
 * Runs one step as the reference fixtures were made, from logits built in a
 * `'train'` context whose graph takes an int64 [B] input `labels`: mean
 * cross-entropy, and writes (atomically) `logits`, `loss` [1], and
 * `grad/<name>` and `after_sgd/<name>` (one plain SGD step at `lr`) for every
 * trainable tensor the graph uses.
 *
 * @returns the names written
 */
export async function writeReferenceStep(
  context: BuildContext,
  logits: SymbolicTensor,
  feeds: Record<string, HostTensor>,
  options: ReferenceStepOptions,
): Promise<string[]> {
  const loss = crossEntropy(logits, context.graph.input('labels', 'int64', ['batch']));
  const trainable = context.trainableWeights();
  const grads = gradients(
    loss,
    trainable.map(({ weight }) => weight),
  );
  const outputs: Record<string, SymbolicTensor> = { logits, loss };
  trainable.forEach(({ weight }, i) => {
    outputs[`grad/${weight.name}`] = grads[i]!;
    outputs[`after_sgd/${weight.name}`] = sub(weight, mul(grads[i]!, options.lr));
  });
  if (options.bufferUpdates) {
    for (const { weight } of context.updatedBuffers()) outputs[`buffer_after/${weight.name}`] = context.bufferUpdates().get(weight)!;
  }
  const runner = await createRunner(compileModel({ outputs }), {
    executionProviders: options.providers ?? ['cpu'],
    strict: options.strict ?? false,
    ...(options.threads ? { intraOpThreads: options.threads } : {}),
    ...(options.onPlacement ? { onPlacement: options.onPlacement } : {}),
  });
  try {
    const result = await runner.run(feeds);
    const written = new Map(Object.keys(outputs).map((name) => [name, name === 'loss' ? result[name]!.reshape([1]) : result[name]!]));
    if (options.bufferUpdates) {
      // num_batches_tracked advances once per application of its BatchNorm (once per timestep for a pre-layer shared by timesteps).
      for (const { tensor, increment } of context.stepCounters()) {
        written.set(`buffer_after/${context.nameOf(tensor)}`, HostTensor.from('int64', [], [BigInt(tensor.value.get()) + BigInt(increment)]));
      }
    }
    await writeFileAtomic(options.out, writeSafetensors(written));
    return [...written.keys()];
  } finally {
    await runner.release();
  }
}
