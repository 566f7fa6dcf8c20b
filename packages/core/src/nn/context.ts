import { ConfigError } from '../errors.js';
import type { Graph, SymbolicTensor } from '../graph/graph.js';
import type { Module, ModuleTensor } from './module.js';

/** Whether a graph is built for training (batch statistics, buffer updates) or evaluation. @public */
export type BuildMode = 'train' | 'eval';

/** Options of {@link BuildContext}. @public */
export interface BuildContextOptions {
  /** `'train'` or `'eval'` (default). */
  mode?: BuildMode;
  /** Prefix of the graph weight names (the state-dict names stay unprefixed), to keep several models apart in one graph. */
  weightPrefix?: string;
}

/**
 * What a module's `forward` builds into: a graph, a mode fixed for the whole
 * build (as PyTorch's `train()`/`eval()`), the graph weights of the modules'
 * tensors (named with their state-dict names), and the buffer updates that a
 * training step must apply.
 *
 * @example
 * ```ts
 * const graph = new Graph();
 * const context = new BuildContext(graph, head, { mode: 'train' });
 * const logits = head.forward(context, graph.input('x', 'float32', ['batch', 64, 7, 7]));
 * ```
 * @public
 */
export class BuildContext {
  /** The graph being built. */
  readonly graph: Graph;
  /** The build mode. */
  readonly mode: BuildMode;
  private readonly names = new Map<ModuleTensor, string>();
  private readonly weights = new Map<ModuleTensor, SymbolicTensor>();
  private readonly updates = new Map<ModuleTensor, SymbolicTensor>();
  private readonly counters = new Map<ModuleTensor, number>();
  private readonly prefix: string;

  /**
   * @param graph - the graph to build into
   * @param modules - the root module(s) whose tensors the forward passes use; their state-dict names must not clash
   * @param options - mode and weight-name prefix
   * @throws {@link ConfigError} when two roots hold a tensor of the same name
   */
  constructor(graph: Graph, modules: Module | readonly Module[], options: BuildContextOptions = {}) {
    this.graph = graph;
    this.mode = options.mode ?? 'eval';
    if (this.mode !== 'train' && this.mode !== 'eval') throw new ConfigError(`BuildContext: mode must be 'train' or 'eval'; found ${String(this.mode)}`);
    this.prefix = options.weightPrefix ?? '';
    const seen = new Set<string>();
    for (const module of Array.isArray(modules) ? modules : [modules as Module]) {
      for (const [name, tensor] of module.namedTensors()) {
        if (seen.has(name)) throw new ConfigError(`BuildContext: two modules hold a tensor named '${name}'`);
        seen.add(name);
        this.names.set(tensor, name);
      }
    }
  }

  /** Whether the mode is `'train'`. */
  get training(): boolean {
    return this.mode === 'train';
  }

  /** The state-dict name of a module tensor. */
  nameOf(tensor: ModuleTensor): string {
    const name = this.names.get(tensor);
    if (name === undefined) throw new ConfigError('BuildContext: this tensor belongs to no module given to the context');
    return name;
  }

  /** The graph weight holding a module tensor (created on first use). */
  weight(tensor: ModuleTensor): SymbolicTensor {
    let weight = this.weights.get(tensor);
    if (!weight) {
      weight = this.graph.weight(`${this.prefix}${this.nameOf(tensor)}`, tensor.value);
      this.weights.set(tensor, weight);
    }
    return weight;
  }

  /**
   * The current value of a buffer in the graph being built: its latest
   * recorded update, or its graph weight when none was recorded yet. A module
   * applied several times in one forward pass (a block's pre-layer at each
   * timestep, a feedback network at each timestep) starts each application's
   * running-statistic update from the previous application's, as PyTorch's
   * in-place buffer updates do.
   */
  bufferValue(buffer: ModuleTensor): SymbolicTensor {
    return this.updates.get(buffer) ?? this.weight(buffer);
  }

  /**
   * Records the new value a training step gives a buffer (BatchNorm's running
   * statistics). Recording again replaces the previous update: build the new
   * value from {@link BuildContext.bufferValue} so the updates chain.
   *
   * @throws {@link ConfigError} in eval mode, or for a tensor that is not a buffer
   */
  updateBuffer(buffer: ModuleTensor, update: SymbolicTensor): void {
    if (!this.training) throw new ConfigError(`BuildContext: buffer '${this.nameOf(buffer)}' can only be updated in 'train' mode`);
    if (buffer.role !== 'buffer') throw new ConfigError(`BuildContext: '${this.nameOf(buffer)}' is a parameter, not a buffer`);
    this.weight(buffer);
    this.updates.set(buffer, update);
  }

  /**
   * Records one application of a module whose integer buffer counts training
   * applications (BatchNorm's `num_batches_tracked`), advanced on the host by
   * the number of applications per step.
   */
  countStep(buffer: ModuleTensor): void {
    if (this.training) this.counters.set(buffer, (this.counters.get(buffer) ?? 0) + 1);
  }

  /** Every module tensor the graph uses, with its graph weight. */
  usedTensors(): {
    /** The module tensor. */
    tensor: ModuleTensor;
    /** Its graph weight (an input or initializer of the graph). */
    weight: SymbolicTensor;
  }[] {
    return [...this.weights].map(([tensor, weight]) => ({ tensor, weight }));
  }

  /** The trainable module tensors the graph uses, with their graph weights. */
  trainableWeights(): {
    /** The module tensor. */
    tensor: ModuleTensor;
    /** Its graph weight (an input or initializer of the graph). */
    weight: SymbolicTensor;
  }[] {
    return [...this.weights].filter(([tensor]) => tensor.role === 'parameter' && tensor.trainable).map(([tensor, weight]) => ({ tensor, weight }));
  }

  /** Buffer weight -> its updated value, for `compileTrainStep`'s `bufferUpdates`. */
  bufferUpdates(): Map<SymbolicTensor, SymbolicTensor> {
    return new Map([...this.updates].map(([buffer, update]) => [this.weight(buffer), update]));
  }

  /** The buffers updated in the graph, with their graph weights. */
  updatedBuffers(): {
    /** The module tensor. */
    tensor: ModuleTensor;
    /** Its graph weight (an input or initializer of the graph). */
    weight: SymbolicTensor;
  }[] {
    return [...this.updates.keys()].map((tensor) => ({ tensor, weight: this.weight(tensor) }));
  }

  /** The step-counting buffers, with how much one training step advances each (the number of applications in the graph). */
  stepCounters(): {
    /** The counting buffer. */
    tensor: ModuleTensor;
    /** Applications per training step. */
    increment: number;
  }[] {
    return [...this.counters].map(([tensor, increment]) => ({ tensor, increment }));
  }
}
