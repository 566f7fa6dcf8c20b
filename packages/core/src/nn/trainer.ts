import { ConfigError, FormatError } from '../errors.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import type { RunnerOptions } from '../runtime/runner.js';
import { HostTensor } from '../tensor/host-tensor.js';
import type { Optimizer } from '../train/optimizers.js';
import { compileTrainStepWith, type RunnerFactory, type TrainStep, type TrainStepResult } from '../train/train-step.js';
import type { BuildContext } from './context.js';
import type { ModuleTensor } from './module.js';

/** Options of `compileModuleTrainStep`. @public */
export interface ModuleTrainStepOptions {
  /** The context the modules were built with, in `'train'` mode. */
  context: BuildContext;
  /** Scalar loss to minimize. */
  loss: SymbolicTensor;
  /** The optimizer (`sgd()`, `adamw()`). */
  optimizer: Optimizer;
  /** Extra tensors to return from each step (for example the logits). */
  outputs?: Record<string, SymbolicTensor>;
  /** Steps per session run (an ONNX Loop over stacked batches when above 1). */
  stepsPerRun?: number;
  /**
   * Gradient accumulation: split each batch into micro-batches of at most
   * this many examples and take one optimizer step from their summed
   * gradients (`TrainStepOptions.microBatch`). Each micro-batch is one
   * application of every BatchNorm: it normalizes with its own statistics,
   * and the running statistics and `num_batches_tracked` advance once per
   * micro-batch, as PyTorch does when given micro-batches.
   */
  microBatch?: number;
  /** How the loss reduces over examples, for combining micro-batch gradients (`'mean'`, the default, or `'sum'`). */
  lossReduction?: 'mean' | 'sum';
  /** Session options. */
  runner?: RunnerOptions;
}

const STATE_FORMAT = 'diffssl-training-state';
const STATE_VERSION = '1';

/**
 * A compiled train step of modules: the trainable tensors the graph uses are
 * trained, buffers (running statistics) are updated, step counters advance,
 * and the whole training state saves and loads as safetensors so a resumed
 * run continues bit-identically.
 *
 * @public
 */
export class ModuleTrainStep {
  /** @internal */
  constructor(
    /** The underlying train step. */
    readonly step: TrainStep,
    private readonly trained: readonly { tensor: ModuleTensor; name: string }[],
    private readonly buffers: readonly { tensor: ModuleTensor; name: string }[],
    private readonly counters: readonly { tensor: ModuleTensor; name: string; increment: number }[],
    private readonly optimizerName: string,
  ) {}

  /** Optimizer steps taken so far (including those of a loaded state). */
  get stepCount(): number {
    return this.step.stepCount;
  }

  /** The execution provider in use. */
  get provider(): string {
    return this.step.provider;
  }

  /** Examples per micro-batch at most, or undefined when batches are not split. */
  get microBatch(): number | undefined {
    return this.step.microBatch;
  }

  /**
   * Takes one step (or `stepsPerRun`), then advances the step counters by
   * their increment for every forward pass (every micro-batch).
   *
   * @throws as `TrainStep.run` (a non-finite loss changes nothing)
   */
  async run(batch: Record<string, HostTensor>, options: { learningRate: number }): Promise<TrainStepResult> {
    const result = await this.step.run(batch, options);
    for (const { tensor, increment } of this.counters) {
      tensor.value = HostTensor.from('int64', [], [BigInt(tensor.value.get()) + BigInt(result.forwardPasses * increment)]);
    }
    return result;
  }

  /** Writes the trained parameters and updated buffers back into the modules (so `stateDict()` and new builds see them). */
  syncModules(): void {
    const parameters = this.step.parameters();
    const buffers = this.step.buffers();
    for (const { tensor, name } of this.trained) tensor.value = parameters[name]!;
    for (const { tensor, name } of this.buffers) tensor.value = buffers[name]!;
  }

  /** The whole training state by name: parameters, buffers, optimizer slots, step, step counters. */
  state(): Map<string, HostTensor> {
    const state = this.step.state();
    for (const { tensor, name } of this.counters) state.set(name, tensor.value);
    return state;
  }

  /**
   * The training state as safetensors bytes, with the optimizer's name and
   * each tensor's role in the metadata, plus any `metadata` of the caller's
   * (for example the epoch reached); {@link readTrainingState} reads it back.
   */
  saveState(metadata: Record<string, string> = {}): Uint8Array {
    const roles: Record<string, string> = Object.fromEntries(this.step.stateRoles());
    for (const { name } of this.counters) roles[name] = 'counter';
    return writeSafetensors(this.state(), {
      ...metadata,
      format: STATE_FORMAT,
      version: STATE_VERSION,
      optimizer: this.optimizerName,
      roles: JSON.stringify(roles),
    });
  }

  /**
   * Restores a state saved by {@link ModuleTrainStep.saveState} (bytes) or
   * returned by {@link ModuleTrainStep.state} (a map).
   *
   * @throws `FormatError` for bytes that are not a training state of this optimizer; `StateDictMismatchError` listing missing, unexpected and mis-shaped names
   */
  loadState(source: Uint8Array | ReadonlyMap<string, HostTensor>): void {
    let state: ReadonlyMap<string, HostTensor>;
    if (source instanceof Uint8Array) {
      const file = readTrainingState(source);
      if (file.metadata.optimizer !== this.optimizerName) {
        throw new ConfigError(
          `ModuleTrainStep.loadState: the state was saved with optimizer '${file.metadata.optimizer}'; this step uses '${this.optimizerName}'`,
        );
      }
      state = file.state;
    } else {
      state = source;
    }
    const counterNames = new Set(this.counters.map((counter) => counter.name));
    this.step.loadState(new Map([...state].filter(([name]) => !counterNames.has(name))));
    for (const { tensor, name } of this.counters) {
      const value = state.get(name);
      if (value) tensor.value = value.contiguous();
    }
  }

  /** Releases the session. */
  async release(): Promise<void> {
    await this.step.release();
  }
}

/**
 * Reads a training state written by {@link ModuleTrainStep.saveState}: the
 * tensors and the metadata (the caller's keys included).
 *
 * @throws `FormatError` for bytes that are not such a state
 * @public
 */
export function readTrainingState(bytes: Uint8Array): {
  /** Every tensor of the state by name: parameters, buffers, optimizer slots, step, step counters. */
  state: Map<string, HostTensor>;
  /** The file's metadata: format, version, optimizer, roles and the caller's keys. */
  metadata: Record<string, string>;
} {
  const file = readSafetensors(bytes);
  if (file.metadata.format !== STATE_FORMAT)
    throw new FormatError(`training state: expected a ${STATE_FORMAT} file; found format ${file.metadata.format ?? 'none'}`);
  return { state: file.tensors, metadata: file.metadata };
}

/** Compiles a module train step with the entry point's runner factory. @internal */
export async function compileModuleTrainStepWith(createRunner: RunnerFactory, options: ModuleTrainStepOptions): Promise<ModuleTrainStep> {
  const { context } = options;
  if (!context.training) throw new ConfigError("compileModuleTrainStep: the modules were built in 'eval' mode; build them with a BuildContext in 'train' mode");
  const trainable = context.trainableWeights();
  if (trainable.length === 0) throw new ConfigError('compileModuleTrainStep: the graph uses no trainable module tensor');
  const step = await compileTrainStepWith(createRunner, {
    loss: options.loss,
    parameters: trainable.map(({ weight }) => weight),
    optimizer: options.optimizer,
    outputs: options.outputs,
    stepsPerRun: options.stepsPerRun,
    microBatch: options.microBatch,
    lossReduction: options.lossReduction,
    runner: options.runner,
    bufferUpdates: context.bufferUpdates(),
  });
  return new ModuleTrainStep(
    step,
    trainable.map(({ tensor, weight }) => ({ tensor, name: weight.name! })),
    context.updatedBuffers().map(({ tensor, weight }) => ({ tensor, name: weight.name! })),
    context.stepCounters().map(({ tensor, increment }) => ({ tensor, name: context.nameOf(tensor), increment })),
    options.optimizer.name,
  );
}
