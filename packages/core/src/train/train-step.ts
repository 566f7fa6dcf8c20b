import { ConfigError, NonFiniteError, ShapeError } from '../errors.js';
import { checkStateDict } from '../nn/state-dict.js';
import type { Dim } from '../graph/dim.js';
import type { SymbolicTensor } from '../graph/graph.js';
import { gradients } from '../autodiff/gradients.js';
import { add } from '../ops/add.js';
import { mul } from '../ops/mul.js';
import { collectNodes, GraphLowering, valueInfo } from '../onnx/lowering.js';
import { compileModel, OnnxModel, type ValueDescription } from '../onnx/model.js';
import type { Runner, RunnerOptions } from '../runtime/runner.js';
import { bytesPerElement } from '../tensor/dtype.js';
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
  /**
   * Session options (providers, threads, ORT's memory options). Unless
   * `cpuMemoryArena` is set, a model with 64 MiB of weights or more trains with
   * ORT's CPU memory arena off: with it, memory freed during a step stays in
   * the process (the paper's DifFormer step at batch 16 peaked at 12.94 GiB
   * with the arena and 7.09 GiB without, and was not slower without).
   */
  runner?: RunnerOptions;
  /**
   * Buffers that each step updates without differentiating them (BatchNorm's
   * running statistics in training mode): the buffer weight and its new value.
   * They are carried between runs like parameters and saved with the state.
   */
  bufferUpdates?: ReadonlyMap<SymbolicTensor, SymbolicTensor>;
  /**
   * Gradient accumulation: split each batch into micro-batches of at most this
   * many examples (along the first axis of every data input, which must be
   * one named size such as `'batch'`), run forward and backward on each, sum
   * their gradients weighted as {@link TrainStepOptions.lossReduction} says,
   * then take ONE optimizer step: the step count and the learning rate are
   * those of one step. Only the activations of one micro-batch are alive at a
   * time. Buffer updates (BatchNorm's running statistics) chain from one
   * micro-batch to the next, and each micro-batch normalizes with its own
   * statistics, as PyTorch does when given micro-batches. A batch of at most
   * `microBatch` examples is one micro-batch. Needs `stepsPerRun` 1; extra
   * `outputs` must have the batch as their first axis (they are concatenated).
   * Default: no split (forward, backward and update in one session run).
   */
  microBatch?: number;
  /**
   * How the loss reduces over the examples of a batch, which fixes how
   * micro-batch gradients combine: `'mean'` (default, as `crossEntropy`'s
   * default) weights each micro-batch's gradient by its share of the batch,
   * so the sum is the gradient of the whole batch's mean loss; `'sum'` adds
   * them as they are. Only read with `microBatch`.
   */
  lossReduction?: 'mean' | 'sum';
}

/** What a train-step state tensor is. @public */
export type TrainStateRole = 'parameter' | 'buffer' | 'optimizer' | 'step';

/** What one `TrainStep.run` returns. @public */
export interface TrainStepResult {
  /** The loss of each step taken, in order (one entry when stepsPerRun is 1). */
  losses: number[];
  /** Requested extra outputs (stacked along a leading axis when stepsPerRun > 1). */
  outputs: Record<string, HostTensor>;
  /** Forward passes this run made: the steps taken times the micro-batches of each (what BatchNorm's `num_batches_tracked` counts). */
  forwardPasses: number;
}

const LEARNING_RATE = 'train/learning_rate';
const STEP = 'train/step';
const GRADIENT_SCALE = 'train/gradient_scale';
const updatedName = (name: string) => `${name}/updated`;
const gradientSumName = (name: string) => `train/${name}/gradient_sum`;

/**
 * The two models of a micro-batched step: `gradient` runs forward and backward
 * on one micro-batch and adds its scaled gradients to the running sums;
 * `apply` takes the optimizer step from the sums. @internal
 */
export interface MicroBatchModels {
  /** Examples per micro-batch, at most. */
  size: number;
  /** How the loss reduces over examples. */
  lossReduction: 'mean' | 'sum';
  /** Forward and backward of one micro-batch; its data inputs are {@link TrainStepModel.dataInputs}. */
  gradient: OnnxModel;
  /** The optimizer step from the summed gradients. */
  apply: OnnxModel;
  /** Per parameter: its name, the gradient-sum input (of both models) and the gradient model's output of the new sum. */
  sums: { parameter: string; input: string; output: string; zeros: HostTensor }[];
}

/** The model of a train step plus the names of its state. @internal */
export interface TrainStepModel {
  model: OnnxModel;
  /** Inputs that carry state between runs (parameters, buffers, optimizer slots, step) and their output names. */
  state: { input: string; output: string; initial: HostTensor; role: TrainStateRole }[];
  /** Data inputs the caller feeds (stacked when looping). */
  dataInputs: ValueDescription[];
  extraOutputs: string[];
  /** Set when each batch is split into micro-batches; `model` is then the gradient model. */
  microBatch?: MicroBatchModels;
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
  if (options.microBatch !== undefined) return buildMicroBatchModels(options, bufferUpdates);
  const graph = loss.graph;
  const learningRate = graph.get(LEARNING_RATE) ?? graph.input(LEARNING_RATE, loss.dtype, []);
  const step = graph.get(STEP) ?? graph.input(STEP, loss.dtype, []);
  const nextStep = add(step, 1);
  const grads = gradients(loss, parameters);
  const state: TrainStepModel['state'] = [];
  const updated: Record<string, SymbolicTensor> = {};
  const slotInputs: SymbolicTensor[] = [];
  addOptimizerUpdates(parameters, optimizer, grads, { learningRate, step: nextStep }, { state, outputs: updated, slotInputs });
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
 * Adds the optimizer's update of each parameter from its gradient to a train
 * step under construction: the slot inputs (created once per graph), the new
 * values of the parameters and slots as outputs named by `updatedName`, and
 * their state entries (parameter, then its slots, in parameter order).
 */
function addOptimizerUpdates(
  parameters: readonly SymbolicTensor[],
  optimizer: Optimizer,
  gradients: readonly SymbolicTensor[],
  at: { learningRate: SymbolicTensor; step: SymbolicTensor },
  into: { state: TrainStepModel['state']; outputs: Record<string, SymbolicTensor>; slotInputs: SymbolicTensor[] },
): void {
  parameters.forEach((parameter, index) => {
    const graph = parameter.graph;
    const slots = optimizer.slots.map((slot) => {
      const name = `train/${parameter.name}/${slot}`;
      const input = graph.get(name) ?? graph.input(name, parameter.dtype, parameter.shape);
      into.slotInputs.push(input);
      return input;
    });
    const result = optimizer.update({ parameter, gradient: gradients[index]!, slots, learningRate: at.learningRate, step: at.step });
    into.state.push({ input: parameter.name!, output: updatedName(parameter.name!), initial: parameter.value!, role: 'parameter' });
    into.outputs[updatedName(parameter.name!)] = result.parameter;
    slots.forEach((slot, i) => {
      into.state.push({
        input: slot.name!,
        output: updatedName(slot.name!),
        initial: HostTensor.zeros(parameter.dtype, parameter.value!.shape),
        role: 'optimizer',
      });
      into.outputs[updatedName(slot.name!)] = result.slots[i]!;
    });
  });
}

/**
 * The micro-batched form of a train step: a gradient model (forward, backward,
 * gradient sums, buffer updates) and an apply model (the optimizer step from
 * the sums), both lowered from the loss's graph. The gradient sums are the
 * same graph inputs in both, so the apply model reads what the gradient model
 * accumulated.
 */
function buildMicroBatchModels(options: TrainStepOptions, bufferUpdates: ReadonlyMap<SymbolicTensor, SymbolicTensor>): TrainStepModel {
  const { loss, parameters, optimizer } = options;
  const size = options.microBatch!;
  if (!Number.isSafeInteger(size) || size < 1) throw new ConfigError(`compileTrainStep: expected microBatch to be a positive integer; found ${size}`);
  if ((options.stepsPerRun ?? 1) !== 1)
    throw new ConfigError(`compileTrainStep: microBatch needs stepsPerRun 1 (one step per run); found stepsPerRun ${options.stepsPerRun}`);
  const lossReduction = options.lossReduction ?? 'mean';
  if (lossReduction !== 'mean' && lossReduction !== 'sum')
    throw new ConfigError(`compileTrainStep: expected lossReduction 'mean' or 'sum'; found '${String(lossReduction)}'`);
  const graph = loss.graph;
  const learningRate = graph.get(LEARNING_RATE) ?? graph.input(LEARNING_RATE, loss.dtype, []);
  const step = graph.get(STEP) ?? graph.input(STEP, loss.dtype, []);
  const scale = graph.get(GRADIENT_SCALE) ?? graph.input(GRADIENT_SCALE, loss.dtype, []);
  const nextStep = add(step, 1);
  const grads = gradients(loss, parameters);
  const state: TrainStepModel['state'] = [];
  const sums: MicroBatchModels['sums'] = [];
  const gradientOutputs: Record<string, SymbolicTensor> = {};
  const applied: Record<string, SymbolicTensor> = {};
  const slotInputs: SymbolicTensor[] = [];
  const sumInputs: SymbolicTensor[] = [];
  const sumTensors = parameters.map((parameter, index) => {
    const name = gradientSumName(parameter.name!);
    const sum = graph.get(name) ?? graph.input(name, parameter.dtype, parameter.shape);
    sumInputs.push(sum);
    sums.push({ parameter: parameter.name!, input: name, output: updatedName(name), zeros: HostTensor.zeros(parameter.dtype, parameter.value!.shape) });
    gradientOutputs[updatedName(name)] = add(sum, mul(grads[index]!, scale));
    return sum;
  });
  addOptimizerUpdates(parameters, optimizer, sumTensors, { learningRate, step: nextStep }, { state, outputs: applied, slotInputs });
  for (const [buffer, update] of bufferUpdates) {
    state.push({ input: buffer.name!, output: updatedName(buffer.name!), initial: buffer.value!, role: 'buffer' });
    gradientOutputs[updatedName(buffer.name!)] = update;
  }
  state.push({ input: STEP, output: updatedName(STEP), initial: HostTensor.zeros(loss.dtype, []), role: 'step' });
  applied[updatedName(STEP)] = nextStep;
  const extra = options.outputs ?? {};
  for (const name of Object.keys(extra)) {
    if (name === 'loss' || name in gradientOutputs || name in applied) throw new ConfigError(`compileTrainStep: output name '${name}' is reserved`);
  }
  const gradient = compileModel({
    outputs: { loss, ...extra, ...gradientOutputs },
    weightsAsInputs: [...parameters, ...bufferUpdates.keys()],
    inputs: [scale, ...sumInputs],
    name: 'train_step_gradient',
  });
  const apply = compileModel({
    outputs: applied,
    weightsAsInputs: [...parameters],
    inputs: [learningRate, step, ...slotInputs, ...sumInputs],
    name: 'train_step_apply',
  });
  const internal = new Set([...state.map((s) => s.input), ...sums.map((s) => s.input), GRADIENT_SCALE, LEARNING_RATE]);
  const dataInputs = gradient.inputs.filter((input) => !internal.has(input.name));
  const batchAxis = dataInputs[0]?.shape[0];
  const unsplittable = dataInputs.filter((input) => typeof input.shape[0] !== 'string' || input.shape[0] !== batchAxis);
  if (dataInputs.length === 0 || typeof batchAxis !== 'string' || unsplittable.length > 0) {
    throw new ConfigError(
      `compileTrainStep: microBatch splits every data input along its first axis, which must be one named size (such as 'batch'); found ${
        dataInputs.map((input) => `'${input.name}' [${input.shape.join(', ')}]`).join(', ') || 'no data input'
      }`,
    );
  }
  for (const [name, tensor] of Object.entries(extra)) {
    if (tensor.shape[0] !== batchAxis)
      throw new ConfigError(
        `compileTrainStep: with microBatch, extra outputs are concatenated over micro-batches, so their first axis must be '${batchAxis}'; found '${name}' ${tensor.describe()}`,
      );
  }
  return { model: gradient, state, dataInputs, extraOutputs: Object.keys(extra), microBatch: { size, lossReduction, gradient, apply, sums } };
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
    /** The runner of the apply model when micro-batching. */
    private readonly applyRunner?: Runner,
  ) {
    if ((spec.microBatch === undefined) !== (applyRunner === undefined))
      throw new ConfigError('TrainStep: a micro-batched step needs the runner of its apply model, and only such a step takes one');
    for (const entry of spec.state) this.values.set(entry.input, entry.initial);
  }

  /** The execution provider in use. */
  get provider(): string {
    return this.runner.provider;
  }

  /** Examples per micro-batch at most, or undefined when a batch is not split. */
  get microBatch(): number | undefined {
    return this.spec.microBatch?.size;
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
    if (this.spec.microBatch) return this.runMicroBatches(this.spec.microBatch, batch, learningRate);
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
    return { losses, outputs, forwardPasses: losses.length };
  }

  /**
   * One step over micro-batches: the gradient model runs on each slice of the
   * batch, carrying the gradient sums and the buffers, then the apply model
   * takes the optimizer step. Nothing is committed until every micro-batch's
   * loss is finite.
   */
  private async runMicroBatches(micro: MicroBatchModels, batch: Record<string, HostTensor>, learningRate: number): Promise<TrainStepResult> {
    const where = 'TrainStep.run';
    for (const input of this.spec.dataInputs) {
      if (!batch[input.name])
        throw new ConfigError(
          `${where}: missing input '${input.name}' (${input.dtype}[${input.shape.join(', ')}]); given: ${Object.keys(batch).join(', ') || 'nothing'}`,
        );
    }
    const unknown = Object.keys(batch).filter((name) => !this.spec.dataInputs.some((input) => input.name === name));
    if (unknown.length > 0) throw new ConfigError(`${where}: unknown input${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => `'${n}'`).join(', ')}`);
    const first = this.spec.dataInputs[0]!;
    const examples = batch[first.name]!.shape[0] ?? 0;
    for (const input of this.spec.dataInputs) {
      const rows = batch[input.name]!.shape[0];
      if (rows !== examples)
        throw new ShapeError(
          `${where}: every data input must have the batch's ${examples} rows ('${first.name}'); found '${input.name}' with ${rows ?? 'no axis'}`,
        );
    }
    if (examples === 0) throw new ShapeError(`${where}: expected a batch of at least one example; found 0 rows`);
    const dense = Object.fromEntries(this.spec.dataInputs.map((input) => [input.name, batch[input.name]!.contiguous()]));
    const lossDtype = this.values.get(STEP)!.dtype;
    const parameterFeeds: Record<string, HostTensor> = {};
    const buffers: Record<string, HostTensor> = {};
    for (const entry of this.spec.state) {
      if (entry.role === 'parameter') parameterFeeds[entry.input] = this.values.get(entry.input)!;
      if (entry.role === 'buffer') buffers[entry.input] = this.values.get(entry.input)!;
    }
    const sums: Record<string, HostTensor> = Object.fromEntries(micro.sums.map((sum) => [sum.input, sum.zeros]));
    const extraParts: Record<string, HostTensor[]> = Object.fromEntries(this.spec.extraOutputs.map((name) => [name, []]));
    let loss = 0;
    let passes = 0;
    for (let start = 0; start < examples; start += micro.size) {
      const end = Math.min(start + micro.size, examples);
      const share = micro.lossReduction === 'mean' ? (end - start) / examples : 1;
      const feeds: Record<string, HostTensor> = { ...parameterFeeds, ...buffers, ...sums, [GRADIENT_SCALE]: HostTensor.from(lossDtype, [], [share]) };
      for (const [name, tensor] of Object.entries(dense)) feeds[name] = rowsOf(tensor, start, end);
      const results = await this.runner.run(feeds);
      passes++;
      const value = results.loss!.get();
      if (!Number.isFinite(value)) {
        throw new NonFiniteError(
          `${where}: the loss of step ${this.stepCount + 1} is ${value} (micro-batch ${passes}, examples ${start}..${end - 1}); parameters, buffers and optimizer state were left as they were before this run`,
        );
      }
      loss += share * value;
      for (const sum of micro.sums) sums[sum.input] = results[sum.output]!;
      for (const name of Object.keys(buffers)) buffers[name] = results[updatedName(name)]!;
      for (const name of this.spec.extraOutputs) extraParts[name]!.push(results[name]!);
    }
    const applyFeeds: Record<string, HostTensor> = { ...sums, [LEARNING_RATE]: HostTensor.from(lossDtype, [], [learningRate]) };
    for (const entry of this.spec.state) if (entry.role !== 'buffer') applyFeeds[entry.input] = this.values.get(entry.input)!;
    const applied = await this.applyRunner!.run(applyFeeds);
    for (const entry of this.spec.state) this.values.set(entry.input, entry.role === 'buffer' ? buffers[entry.input]! : applied[entry.output]!);
    const outputs: Record<string, HostTensor> = {};
    for (const name of this.spec.extraOutputs) outputs[name] = concatenateRows(extraParts[name]!);
    return { losses: [loss], outputs, forwardPasses: passes };
  }

  /** Releases the session (both sessions of a micro-batched step). */
  async release(): Promise<void> {
    await this.runner.release();
    await this.applyRunner?.release();
  }
}

/** Rows `start..end-1` of a contiguous tensor, sharing its memory. */
function rowsOf(tensor: HostTensor, start: number, end: number): HostTensor {
  if (start === 0 && end === tensor.shape[0]) return tensor;
  const row = tensor.shape.slice(1).reduce((a, b) => a * b, 1);
  const data = tensor.data.subarray(tensor.offset + start * row, tensor.offset + end * row) as typeof tensor.data;
  return new HostTensor(tensor.dtype, data, [end - start, ...tensor.shape.slice(1)]);
}

/** The tensors stacked along their first axis, in order. */
function concatenateRows(parts: readonly HostTensor[]): HostTensor {
  if (parts.length === 1) return parts[0]!;
  const first = parts[0]!;
  const rows = parts.reduce((total, part) => total + part.shape[0]!, 0);
  const out = HostTensor.zeros(first.dtype, [rows, ...first.shape.slice(1)]);
  let at = 0;
  for (const part of parts) {
    const dense = part.contiguous();
    (out.data as unknown as { set(values: ArrayLike<unknown>, offset: number): void }).set(dense.data.subarray(dense.offset, dense.offset + dense.size), at);
    at += dense.size;
  }
  return out;
}

/**
 * A train step whose model holds at least this many initializer bytes runs
 * with ONNX Runtime's CPU memory arena off unless its `runner` options set
 * `cpuMemoryArena`. With the arena, memory freed during a step stays in the
 * process, so a large training graph's peak RSS is far above what it keeps
 * live: the paper's DifFormer step at batch 16 (blocks 19/24/30 x t
 * 90/150/300, about 100 MB of weights; `pnpm --filter @diffssl/difformer run
 * bench:memory --batch 16`) peaked at 12.94 GiB with the arena and 7.09 GiB
 * without, at 37.8 and 34.1 s/step in the same run. Small steps keep the
 * arena: core's bench times its ViT head step (6 MB of weights) 1.27x slower
 * without it.
 *
 * @internal
 */
export const NO_ARENA_MODEL_BYTES = 64 * 1024 * 1024;

/** The session options a train step's runners get: the caller's, with the arena rule of {@link NO_ARENA_MODEL_BYTES} (trained parameters and constant weights counted). */
function trainStepRunnerOptions(model: OnnxModel, options: TrainStepOptions): RunnerOptions {
  const parameterBytes = options.parameters.reduce((sum, parameter) => sum + sizeOf(parameter.shape) * bytesPerElement(parameter.dtype), 0);
  const large = model.initializerBytes + parameterBytes >= NO_ARENA_MODEL_BYTES;
  return { ...(large ? { cpuMemoryArena: false } : {}), ...options.runner };
}

/** Elements of a weight's static shape. */
function sizeOf(shape: readonly Dim[]): number {
  return shape.reduce<number>((product, dim) => product * (typeof dim === 'number' ? dim : 0), 1);
}

/** Creates a runner for a model (the entry point's `createRunner`). */
export type RunnerFactory = (model: OnnxModel, options?: RunnerOptions) => Promise<Runner>;

/** Compiles a train step with a given runner factory. @internal */
export async function compileTrainStepWith(createRunner: RunnerFactory, options: TrainStepOptions): Promise<TrainStep> {
  const spec = buildTrainStepModel(options);
  const runnerOptions = trainStepRunnerOptions(spec.model, options);
  const runner = await createRunner(spec.model, runnerOptions);
  if (!spec.microBatch) return new TrainStep(runner, spec, options.stepsPerRun ?? 1);
  let applyRunner: Runner;
  try {
    applyRunner = await createRunner(spec.microBatch.apply, runnerOptions);
  } catch (error) {
    await runner.release();
    throw error;
  }
  return new TrainStep(runner, spec, 1, applyRunner);
}
