import { ConfigError, NonFiniteError, ShapeError } from '../errors.js';
import { checkStateDict } from '../nn/state-dict.js';
import type { Dim } from '../graph/dim.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { gradients } from '../autodiff/gradients.js';
import { add } from '../ops/add.js';
import { collectNodes, GraphLowering, valueInfo } from '../onnx/lowering.js';
import { compileModel, OnnxModel, type ValueDescription } from '../onnx/model.js';
import type { Runner, RunnerOptions } from '../runtime/runner.js';
import { HostTensor } from '../tensor/host-tensor.js';
import type { Optimizer } from './optimizers.js';

/** Options of `compileTrainStep`. @public */
export interface TrainStepOptions {
  /** Scalar loss to minimize. */
  loss: SymbolicTensor;
  /** Weights to train; every other weight stays frozen (an initializer). */
  parameters: readonly SymbolicTensor[];
  /** The optimizer (for example `sgd({ momentum: 0.9 })`). */
  optimizer: Optimizer;
  /** Extra tensors to return from each step (for example the logits). */
  outputs?: Record<string, SymbolicTensor>;
  /**
   * Steps per session run. With more than 1, batches are stacked along a new
   * leading axis and an ONNX `Loop` runs them with the parameters and
   * optimizer state carried on the device between steps. Default 1.
   */
  stepsPerRun?: number;
  /** Session options (providers, threads, ORT's memory options). */
  runner?: RunnerOptions;
  /**
   * Buffers that each step updates without differentiating them (BatchNorm's
   * running statistics in training mode): the buffer weight and its new value.
   * They are carried between runs like parameters and saved with the state.
   */
  bufferUpdates?: ReadonlyMap<SymbolicTensor, SymbolicTensor>;
}

/** What a train-step state tensor is. @public */
export type TrainStateRole = 'parameter' | 'buffer' | 'optimizer' | 'step';

/** What one `TrainStep.run` returns. @public */
export interface TrainStepResult {
  /** The loss of each step taken, in order (one entry when stepsPerRun is 1). */
  losses: number[];
  /** Requested extra outputs (stacked along a leading axis when stepsPerRun > 1). */
  outputs: Record<string, HostTensor>;
}

const LEARNING_RATE = 'train/learning_rate';
const STEP = 'train/step';
const updatedName = (name: string) => `${name}/updated`;

/** The model of a train step plus the names of its state. @internal */
export interface TrainStepModel {
  model: OnnxModel;
  /** Inputs that carry state between runs (parameters, buffers, optimizer slots, step) and their output names. */
  state: { input: string; output: string; initial: HostTensor; role: TrainStateRole }[];
  /** Data inputs the caller feeds (stacked when looping). */
  dataInputs: ValueDescription[];
  extraOutputs: string[];
}

/** Builds forward, backward and update into the loss's graph and compiles them. @internal */
export function buildTrainStepModel(options: TrainStepOptions): TrainStepModel {
  const { loss, parameters, optimizer } = options;
  const steps = options.stepsPerRun ?? 1;
  if (!Number.isSafeInteger(steps) || steps < 1) throw new ConfigError(`compileTrainStep: expected stepsPerRun to be a positive integer; found ${steps}`);
  if (loss.rank !== 0) throw new ShapeError(`compileTrainStep: expected a scalar loss; found ${loss.describe()}`);
  if (parameters.length === 0) throw new ConfigError('compileTrainStep: expected at least one parameter to train; found none');
  for (const parameter of parameters) {
    if (parameter.source !== 'weight') throw new ConfigError(`compileTrainStep: parameters must be weights (graph.weight); found ${parameter.describe()}`);
  }
  const bufferUpdates = options.bufferUpdates ?? new Map<SymbolicTensor, SymbolicTensor>();
  for (const [buffer, update] of bufferUpdates) {
    if (buffer.source !== 'weight') throw new ConfigError(`compileTrainStep: bufferUpdates keys must be weights (graph.weight); found ${buffer.describe()}`);
    if (parameters.includes(buffer)) throw new ConfigError(`compileTrainStep: '${buffer.name}' is both a parameter and an updated buffer`);
    if (update.dtype !== buffer.dtype || update.shape.join() !== buffer.shape.join()) {
      throw new ShapeError(
        `compileTrainStep: the update of buffer '${buffer.name}' must be ${buffer.dtype}[${buffer.shape.join(', ')}]; found ${update.describe()}`,
      );
    }
  }
  checkRunningStatistics([loss, ...Object.values(options.outputs ?? {})], bufferUpdates);
  const graph = loss.graph;
  const learningRate = graph.get(LEARNING_RATE) ?? graph.input(LEARNING_RATE, loss.dtype, []);
  const step = graph.get(STEP) ?? graph.input(STEP, loss.dtype, []);
  const nextStep = add(step, 1);
  const grads = gradients(loss, parameters);
  const state: TrainStepModel['state'] = [];
  const updated: Record<string, SymbolicTensor> = {};
  const slotInputs: SymbolicTensor[] = [];
  parameters.forEach((parameter, index) => {
    const slots = optimizer.slots.map((slot) => {
      const name = `train/${parameter.name}/${slot}`;
      const input = graph.get(name) ?? graph.input(name, parameter.dtype, parameter.shape);
      slotInputs.push(input);
      return input;
    });
    const result = optimizer.update({ parameter, gradient: grads[index]!, slots, learningRate, step: nextStep });
    state.push({ input: parameter.name!, output: updatedName(parameter.name!), initial: parameter.value!, role: 'parameter' });
    updated[updatedName(parameter.name!)] = result.parameter;
    slots.forEach((slot, i) => {
      state.push({ input: slot.name!, output: updatedName(slot.name!), initial: HostTensor.zeros(parameter.dtype, parameter.value!.shape), role: 'optimizer' });
      updated[updatedName(slot.name!)] = result.slots[i]!;
    });
  });
  for (const [buffer, update] of bufferUpdates) {
    state.push({ input: buffer.name!, output: updatedName(buffer.name!), initial: buffer.value!, role: 'buffer' });
    updated[updatedName(buffer.name!)] = update;
  }
  state.push({ input: STEP, output: updatedName(STEP), initial: HostTensor.zeros(loss.dtype, []), role: 'step' });
  updated[updatedName(STEP)] = nextStep;
  const extra = options.outputs ?? {};
  for (const name of Object.keys(extra)) {
    if (name === 'loss' || name in updated) throw new ConfigError(`compileTrainStep: output name '${name}' is reserved`);
  }
  const allOutputs = { loss, ...extra, ...updated };
  const single = compileModel({ outputs: allOutputs, weightsAsInputs: [...parameters, ...bufferUpdates.keys()], inputs: [learningRate, step, ...slotInputs] });
  const stateNames = new Set(state.map((s) => s.input));
  const dataInputs = single.inputs.filter((input) => !stateNames.has(input.name) && input.name !== LEARNING_RATE);
  if (steps === 1) return { model: single, state, dataInputs, extraOutputs: Object.keys(extra) };
  return { model: buildLoopModel(allOutputs, state, dataInputs, single, [learningRate]), state, dataInputs, extraOutputs: Object.keys(extra) };
}

/**
 * A batchNorm in training mode computes new running statistics; a train step
 * that drops them would silently leave the buffers at their initial values.
 * A batchNorm applied several times in one step chains its updates: a later
 * application reads the running statistics an earlier one computed, and only
 * the last one's result needs to be a buffer update.
 *
 * @throws {@link ConfigError} naming the buffers whose updates are missing
 */
function checkRunningStatistics(outputs: readonly SymbolicTensor[], bufferUpdates: ReadonlyMap<SymbolicTensor, SymbolicTensor>): void {
  const updated = new Set([...bufferUpdates.keys()].map((buffer) => buffer.id));
  const finalValues = new Set([...bufferUpdates.values()].map((update) => update.id));
  const trainingNorms = [...collectNodes(outputs, new Set())].filter(
    (node) => node.op.name === 'batchNorm' && (node.attributes as { training?: boolean }).training,
  );
  const chainedInputs = new Set(trainingNorms.flatMap((node) => [node.inputs[3]!.id, node.inputs[4]!.id]));
  const isTrainingNormOutput = (tensor: SymbolicTensor) =>
    tensor.producer?.op.name === 'batchNorm' && (tensor.producer.attributes as { training?: boolean }).training === true;
  const missing: string[] = [];
  for (const node of trainingNorms) {
    for (const buffer of [node.inputs[3]!, node.inputs[4]!]) {
      if (!updated.has(buffer.id) && !isTrainingNormOutput(buffer)) missing.push(buffer.name ?? buffer.describe());
    }
    for (const update of [node.outputs[1]!, node.outputs[2]!]) {
      if (!finalValues.has(update.id) && !chainedInputs.has(update.id))
        missing.push(
          `the ${update === node.outputs[1] ? 'running mean' : 'running variance'} computed from ${node.inputs[3 + (update === node.outputs[1] ? 0 : 1)]!.name ?? 'a chained update'}`,
        );
    }
  }
  if (missing.length > 0) {
    throw new ConfigError(
      `compileTrainStep: batchNorm in training mode updates its running statistics, but bufferUpdates has no update for ${[...new Set(missing)].join(', ')}; pass them (modules built with a BuildContext in 'train' mode do this)`,
    );
  }
}

/**
 * Wraps the step in an ONNX Loop: data inputs get a leading 'steps' axis, the
 * state is loop-carried, loss and extra outputs are scan outputs.
 */
function buildLoopModel(
  outputs: Record<string, SymbolicTensor>,
  state: TrainStepModel['state'],
  dataInputs: ValueDescription[],
  single: OnnxModel,
  outerScope: readonly SymbolicTensor[],
): OnnxModel {
  const graph = outputs.loss!.graph;
  const initializers = new Map<string, HostTensor>();
  const tensorByName = (name: string) => graph.get(name)!;
  const bindings = new Map<SymbolicTensor, string>();
  for (const tensor of outerScope) bindings.set(tensor, tensor.name!);
  for (const entry of state) bindings.set(tensorByName(entry.input), `body/in/${entry.input}`);
  for (const input of dataInputs) bindings.set(tensorByName(input.name), `body/data/${input.name}`);
  const body = new GraphLowering('body/', initializers, bindings);
  const iteration = 'body/iteration';
  for (const input of dataInputs) {
    body.nodes.push({ input: [input.name, iteration], output: [`body/data/${input.name}`], name: `body/slice/${input.name}`, opType: 'Gather', attribute: [] });
  }
  const outputTensors = Object.values(outputs);
  body.lower(outputTensors);
  const scanNames = Object.keys(outputs).filter((name) => !state.some((s) => s.output === name));
  body.nodes.push({ input: ['body/condition'], output: ['body/condition/out'], name: 'body/condition/identity', opType: 'Identity', attribute: [] });
  const carriedOut = state.map((entry) => `body/out/${entry.input}`);
  state.forEach((entry, i) =>
    body.nodes.push({
      input: [body.nameOf(outputs[entry.output]!)],
      output: [carriedOut[i]!],
      name: `body/carry/${entry.input}`,
      opType: 'Identity',
      attribute: [],
    }),
  );
  scanNames.forEach((name) =>
    body.nodes.push({ input: [body.nameOf(outputs[name]!)], output: [`body/scan/${name}`], name: `body/scan/${name}`, opType: 'Identity', attribute: [] }),
  );
  const stateInfo = (name: string) => single.inputs.find((input) => input.name === name)!;
  const bodyGraph = {
    name: 'train_step_body',
    node: body.nodes,
    input: [
      valueInfo(iteration, { dtype: 'int64', shape: [] }),
      valueInfo('body/condition', { dtype: 'bool', shape: [] }),
      ...state.map((entry) => valueInfo(`body/in/${entry.input}`, stateInfo(entry.input))),
    ],
    output: [
      valueInfo('body/condition/out', { dtype: 'bool', shape: [] }),
      ...state.map((entry, i) => valueInfo(carriedOut[i]!, stateInfo(entry.input))),
      ...scanNames.map((name) => valueInfo(`body/scan/${name}`, outputs[name]!)),
    ],
  };
  const first = dataInputs[0]!;
  const tripCount = 'loop/trip_count';
  initializers.set('loop/zero', HostTensor.from('int64', [], [0n]));
  const nodes = [
    { input: [first.name], output: ['loop/data_shape'], name: 'loop/shape', opType: 'Shape', attribute: [] },
    { input: ['loop/data_shape', 'loop/zero'], output: [tripCount], name: 'loop/steps', opType: 'Gather', attribute: [] },
    {
      input: [tripCount, '', ...state.map((entry) => entry.input)],
      output: [...state.map((entry) => entry.output), ...scanNames],
      name: 'loop',
      opType: 'Loop',
      attribute: [],
    },
  ];
  nodes[2]!.attribute = [{ name: 'body', type: 5, g: bodyGraph }] as never[];
  const stacked = (info: ValueDescription): ValueDescription => ({ name: info.name, dtype: info.dtype, shape: ['steps' as Dim, ...info.shape] });
  const inputs: ValueDescription[] = [...single.inputs.filter((input) => !dataInputs.includes(input)), ...dataInputs.map(stacked)];
  const modelOutputs: ValueDescription[] = [
    ...state.map((entry) => ({ ...stateInfo(entry.input), name: entry.output })),
    ...scanNames.map((name) => stacked({ name, dtype: outputs[name]!.dtype, shape: outputs[name]!.shape })),
  ];
  return new OnnxModel(inputs, modelOutputs, { node: nodes as never, name: 'train_step' }, initializers);
}

/**
 * A compiled train step: forward, loss, backward and optimizer update in one
 * ONNX Runtime session run. It owns the current parameters and optimizer
 * state; a step whose loss is not finite is rejected and changes nothing.
 *
 * @public
 */
export class TrainStep {
  private readonly values = new Map<string, HostTensor>();

  /** @internal */
  constructor(
    private readonly runner: Runner,
    private readonly spec: TrainStepModel,
    /** Steps per run (1, or the Loop length bound given at compile time). */
    readonly stepsPerRun: number,
  ) {
    for (const entry of spec.state) this.values.set(entry.input, entry.initial);
  }

  /** The execution provider in use. */
  get provider(): string {
    return this.runner.provider;
  }

  /** The data inputs to feed each run (before stacking). */
  get dataInputs(): readonly ValueDescription[] {
    return this.spec.dataInputs;
  }

  /** Number of optimizer steps taken so far. */
  get stepCount(): number {
    return this.values.get(STEP)!.get();
  }

  /** Current values of the trained parameters by weight name. */
  parameters(): Record<string, HostTensor> {
    return this.valuesOf('parameter');
  }

  /** Current values of the updated buffers (running statistics) by weight name. */
  buffers(): Record<string, HostTensor> {
    return this.valuesOf('buffer');
  }

  private valuesOf(role: TrainStateRole): Record<string, HostTensor> {
    const out: Record<string, HostTensor> = {};
    for (const entry of this.spec.state) if (entry.role === role) out[entry.input] = this.values.get(entry.input)!;
    return out;
  }

  /**
   * The whole training state: parameters, buffers, optimizer slots
   * (`train/<parameter>/<slot>`) and the step count (`train/step`), by name.
   * Save it (for example with `writeSafetensors`) and give it to
   * {@link TrainStep.loadState} to resume bit-identically.
   */
  state(): Map<string, HostTensor> {
    return new Map(this.spec.state.map((entry) => [entry.input, this.values.get(entry.input)!]));
  }

  /** The role of each state tensor, by name. */
  stateRoles(): Map<string, TrainStateRole> {
    return new Map(this.spec.state.map((entry) => [entry.input, entry.role]));
  }

  /**
   * Replaces the whole training state (as {@link TrainStep.state} returns it).
   * Every name must be present with its dtype and shape; nothing else may be.
   *
   * @throws {@link StateDictMismatchError} listing missing, unexpected and mis-shaped names (the state is left unchanged)
   */
  loadState(state: ReadonlyMap<string, HostTensor>): void {
    checkStateDict('TrainStep.loadState', this.state(), state);
    for (const [name, value] of state) this.values.set(name, value.contiguous());
  }

  /**
   * Takes one step (or `stepsPerRun` steps, batches stacked on a leading axis).
   *
   * @param batch - data inputs by name (for example `x` and `labels`)
   * @param options - `learningRate` for this run
   * @returns the losses and extra outputs
   * @throws {@link NonFiniteError} when a loss is NaN or infinite (state unchanged); {@link ConfigError} for a bad learning rate or missing inputs
   */
  async run(batch: Record<string, HostTensor>, options: { learningRate: number }): Promise<TrainStepResult> {
    const { learningRate } = options;
    if (!(Number.isFinite(learningRate) && learningRate >= 0)) {
      throw new ConfigError(`TrainStep.run: expected a finite, non-negative learningRate; found ${learningRate}`);
    }
    const lossDtype = this.values.get(STEP)!.dtype;
    const feeds: Record<string, HostTensor> = { ...batch, [LEARNING_RATE]: HostTensor.from(lossDtype, [], [learningRate]) };
    for (const [name, value] of this.values) feeds[name] = value;
    const results = await this.runner.run(feeds);
    const losses = results.loss!.toArray();
    const bad = losses.findIndex((loss) => !Number.isFinite(loss));
    if (bad >= 0) {
      throw new NonFiniteError(
        `TrainStep.run: the loss of step ${this.stepCount + bad + 1} is ${losses[bad]}; parameters and optimizer state were left as they were before this run`,
      );
    }
    for (const entry of this.spec.state) this.values.set(entry.input, results[entry.output]!);
    const outputs: Record<string, HostTensor> = {};
    for (const name of this.spec.extraOutputs) outputs[name] = results[name]!;
    return { losses, outputs };
  }

  /** Releases the session. */
  async release(): Promise<void> {
    await this.runner.release();
  }
}

/** Creates a runner for a model (the entry point's `createRunner`). */
export type RunnerFactory = (model: OnnxModel, options?: RunnerOptions) => Promise<Runner>;

/** Compiles a train step with a given runner factory. @internal */
export async function compileTrainStepWith(createRunner: RunnerFactory, options: TrainStepOptions): Promise<TrainStep> {
  const spec = buildTrainStepModel(options);
  const runner = await createRunner(spec.model, options.runner);
  return new TrainStep(runner, spec, options.stepsPerRun ?? 1);
}
