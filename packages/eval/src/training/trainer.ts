import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  BuildContext,
  compileModel,
  compileModuleTrainStep,
  ConfigError,
  createRunner,
  crossEntropy,
  Graph,
  HostTensor,
  readTrainingState,
  sgd,
  writeFileAtomic,
  type ModuleTrainStep,
  type Runner,
  type RunnerOptions,
  type SymbolicTensor,
} from '@diffssl/core';
import { epochBatches } from '../data/batches.js';
import { MetricsAccumulator, type ClassificationMetrics } from '../metrics/classification.js';
import type { EpochRecord, EvaluationRecord } from '../report/run-report.js';
import type { ClassifierGraph, ExampleSource } from './classifier-graph.js';

/** Progress of a training run, for bars and logs. @public */
export type TrainingProgress =
  | {
      /** A training step. */
      phase: 'train';
      /** The epoch, from 1. */
      epoch: number;
      /** Epochs of the run. */
      epochs: number;
      /** Batches done in this epoch. */
      batch: number;
      /** Batches of an epoch. */
      batches: number;
      /** Mean training loss of the epoch so far. */
      loss: number;
    }
  | {
      /** An evaluation of the test examples. */
      phase: 'evaluate';
      /** The epoch after which it runs. */
      epoch: number;
      /** Test examples scored so far. */
      done: number;
      /** Test examples in all. */
      total: number;
    };

/** Options of {@link trainClassifier} (defaults are the reference's). @public */
export interface TrainOptions {
  /** The classifier. */
  model: ClassifierGraph;
  /** Training examples. */
  train: ExampleSource;
  /** Test examples: every one is scored once. */
  test: ExampleSource;
  /** Epochs (default 28). */
  epochs?: number;
  /** Batch size (default 32); the last partial training batch is dropped, as the reference's loader does. */
  batchSize?: number;
  /**
   * Gradient accumulation: split each training batch into micro-batches of
   * at most this many examples, sum their gradients (weighted so that the sum
   * is the gradient of the whole batch's mean loss) and take one SGD step per
   * batch: the step count and the learning-rate schedule are unchanged, and
   * only one micro-batch's activations are in memory at a time. Without
   * BatchNorm the result equals the whole batch's (up to float rounding);
   * with BatchNorm each micro-batch normalizes with its own statistics and
   * the running statistics advance once per micro-batch, as PyTorch does
   * when given micro-batches. A value at least `batchSize` means no split.
   * Default: no split.
   */
  microBatch?: number;
  /** Batch size of evaluation (default: `batchSize`); the last partial batch is kept. */
  evalBatchSize?: number;
  /** Initial learning rate of plain SGD. */
  learningRate: number;
  /** StepLR: multiply the learning rate by `lrGamma` every `lrStep` epochs (defaults 7 and 0.1). */
  lrStep?: number;
  /** StepLR factor (default 0.1). */
  lrGamma?: number;
  /** SGD momentum (default 0, as the reference). */
  momentum?: number;
  /** SGD weight decay (default 0). */
  weightDecay?: number;
  /** Seed of the data order (default 0). */
  seed?: number;
  /** Evaluate after every N epochs (default: only after the last). */
  evalEvery?: number;
  /**
   * Folder for the per-epoch checkpoint (`checkpoint.safetensors`, written
   * atomically). With `resume`, a run continues from it.
   */
  directory?: string;
  /** Continue from the checkpoint in `directory`; a `ConfigError` when there is none (a run never silently starts over). */
  resume?: boolean;
  /** A string that identifies everything else about the run (data, features, protocol); a checkpoint of another run is refused. */
  fingerprint?: string;
  /** Session options. */
  runner?: RunnerOptions;
  /** Receives progress. */
  onProgress?: (progress: TrainingProgress) => void;
  /** Receives the loss of every training step (the batch's mean cross-entropy, before the step's update). */
  onStep?: (step: TrainingStep) => void;
}

/** One training step's loss, for {@link TrainOptions.onStep}. @public */
export interface TrainingStep {
  /** The epoch, from 1. */
  epoch: number;
  /** The batch in the epoch, from 1. */
  batch: number;
  /** The batch's mean cross-entropy, computed before the step's update. */
  loss: number;
  /** The step's learning rate. */
  learningRate: number;
}

/** What {@link trainClassifier} returns. @public */
export interface TrainResult {
  /** Mean training loss, learning rate and time of each epoch (resumed epochs included). */
  epochs: EpochRecord[];
  /** Each evaluation's accuracy and loss. */
  evaluations: EvaluationRecord[];
  /** Metrics of the final evaluation (all test examples). */
  metrics: ClassificationMetrics;
  /** Whether the run continued from a checkpoint, and from which epoch. */
  resumedFromEpoch: number | undefined;
}

const CHECKPOINT = 'checkpoint.safetensors';

/**
 * The checkpoint a resumed run continues from, checked to exist: `resume`
 * with no checkpoint fails instead of silently starting over.
 *
 * @param directory - the run's folder (`--out`)
 * @returns the checkpoint's path
 * @throws `ConfigError` when there is no folder or no checkpoint in it
 */
export function resumeCheckpoint(directory: string | undefined): string {
  if (!directory) throw new ConfigError('train: resume needs the folder of the run to continue (directory)');
  const path = join(directory, CHECKPOINT);
  if (!existsSync(path))
    throw new ConfigError(`--resume: there is no checkpoint to continue from in ${directory} (expected ${path}); drop --resume to start a new run`);
  return path;
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new ConfigError(`train: ${name} must be a positive integer; found ${value}`);
  return value;
}

/** The learning rate of an epoch (0-based) under StepLR. @public */
export function stepLearningRate(base: number, epoch: number, step = 7, gamma = 0.1): number {
  return base * gamma ** Math.floor(epoch / step);
}

/**
 * Trains a classifier with plain SGD and StepLR, checkpointing the whole
 * training state after every epoch (atomically), and evaluates it on every
 * test example. A run killed at any point and resumed (`resume: true`, same
 * options) ends with bit-identical weights, because each epoch's order depends
 * only on the seed and the epoch.
 *
 * @throws `ConfigError` for bad options, `resume` without a checkpoint, or a checkpoint of another run; `NonFiniteError` when the loss diverges
 * @public
 */
export async function trainClassifier(options: TrainOptions): Promise<TrainResult> {
  const { model, train, test } = options;
  const epochs = positiveInteger('epochs', options.epochs ?? 28);
  const batchSize = positiveInteger('batchSize', options.batchSize ?? 32);
  const evalBatchSize = positiveInteger('evalBatchSize', options.evalBatchSize ?? batchSize);
  const microBatch = options.microBatch === undefined ? undefined : positiveInteger('microBatch', options.microBatch);
  const evalEvery = positiveInteger('evalEvery', options.evalEvery ?? epochs);
  const seed = options.seed ?? 0;
  if (!(Number.isFinite(options.learningRate) && options.learningRate > 0))
    throw new ConfigError(`train: learningRate must be a positive number; found ${options.learningRate}`);
  if (train.length < batchSize)
    throw new ConfigError(`train: ${train.length} training examples are fewer than one batch of ${batchSize} (the last partial batch is dropped)`);
  if (test.length === 0) throw new ConfigError('train: there are no test examples to evaluate');
  const fingerprint = JSON.stringify({
    run: options.fingerprint ?? '',
    epochs,
    batchSize,
    learningRate: options.learningRate,
    lrStep: options.lrStep ?? 7,
    lrGamma: options.lrGamma ?? 0.1,
    momentum: options.momentum ?? 0,
    weightDecay: options.weightDecay ?? 0,
    seed,
  });

  // Checked before anything is compiled or written: resume with nothing to resume fails at once.
  const resumeFrom = options.resume ? resumeCheckpoint(options.directory) : undefined;
  // A micro-batch of the whole batch or more splits nothing: the one-run step is kept.
  const step = await compileTrainer(model, options, microBatch !== undefined && microBatch < batchSize ? microBatch : undefined);
  const evaluator = await compileEvaluator(model, options.runner);
  try {
    const history: { epochs: EpochRecord[]; evaluations: EvaluationRecord[] } = { epochs: [], evaluations: [] };
    let firstEpoch = 0;
    let resumedFromEpoch: number | undefined;
    const checkpointPath = options.directory ? join(options.directory, CHECKPOINT) : undefined;
    if (options.directory) await mkdir(options.directory, { recursive: true });
    if (resumeFrom) {
      const bytes = await readFile(resumeFrom);
      const { metadata } = readTrainingState(bytes);
      if (metadata.run !== fingerprint)
        throw new ConfigError(`train: the checkpoint ${checkpointPath} belongs to a run with other settings; use another --out or drop --resume`);
      step.loadState(bytes);
      firstEpoch = Number(metadata.epochs_done);
      Object.assign(history, JSON.parse(metadata.history ?? '{"epochs":[],"evaluations":[]}') as typeof history);
      resumedFromEpoch = firstEpoch;
    }
    let metrics: ClassificationMetrics | undefined;
    const plan = { batchSize, shuffle: true, dropLast: true, seed };
    for (let epoch = firstEpoch; epoch < epochs; epoch++) {
      const started = performance.now();
      const learningRate = stepLearningRate(options.learningRate, epoch, options.lrStep, options.lrGamma);
      const batches = epochBatches(train.length, plan, epoch);
      let lossSum = 0;
      for (const [index, indices] of batches.entries()) {
        const feeds = await train.read(indices, { epoch, training: true });
        const labels = HostTensor.from(
          'int64',
          [indices.length],
          indices.map((i) => BigInt(train.label(i))),
        );
        const { losses } = await step.run({ ...feeds, labels }, { learningRate });
        lossSum += losses[0]!;
        options.onStep?.({ epoch: epoch + 1, batch: index + 1, loss: losses[0]!, learningRate });
        options.onProgress?.({ phase: 'train', epoch: epoch + 1, epochs, batch: index + 1, batches: batches.length, loss: lossSum / (index + 1) });
      }
      history.epochs.push({ epoch: epoch + 1, loss: lossSum / batches.length, learning_rate: learningRate, seconds: (performance.now() - started) / 1000 });
      if ((epoch + 1) % evalEvery === 0 || epoch + 1 === epochs) {
        metrics = await evaluate(evaluator, step, model, test, evalBatchSize, epoch + 1, options.onProgress);
        history.evaluations.push({ epoch: epoch + 1, top1: metrics.top1, top5: metrics.top5, loss: metrics.meanCrossEntropy });
      }
      if (checkpointPath) {
        await writeFileAtomic(checkpointPath, step.saveState({ run: fingerprint, epochs_done: String(epoch + 1), history: JSON.stringify(history) }));
      }
    }
    step.syncModules();
    metrics ??= await evaluate(evaluator, step, model, test, evalBatchSize, epochs, options.onProgress);
    return { epochs: history.epochs, evaluations: history.evaluations, metrics, resumedFromEpoch };
  } finally {
    await step.release();
    await evaluator.runner.release();
  }
}

async function compileTrainer(model: ClassifierGraph, options: TrainOptions, microBatch: number | undefined): Promise<ModuleTrainStep> {
  const graph = new Graph();
  const context = new BuildContext(graph, model.modules(), { mode: 'train' });
  const inputs = graphInputs(graph, model);
  const logits = model.forward(context, inputs);
  const labels = graph.input('labels', 'int64', ['batch']);
  return compileModuleTrainStep({
    context,
    loss: crossEntropy(logits, labels),
    optimizer: sgd({ momentum: options.momentum ?? 0, weightDecay: options.weightDecay ?? 0 }),
    microBatch,
    runner: options.runner,
  });
}

function graphInputs(graph: Graph, model: ClassifierGraph): Map<string, SymbolicTensor> {
  return new Map([...model.inputs()].map(([name, input]) => [name, graph.input(name, input.dtype, ['batch', ...input.shape])]));
}

interface Evaluator {
  runner: Runner;
  /** Graph weight name of each module tensor the evaluation graph reads (fed from the training state). */
  weights: string[];
}

/** The evaluation graph (eval mode) with the module tensors as inputs, so one session serves every evaluation. */
async function compileEvaluator(model: ClassifierGraph, runner?: RunnerOptions): Promise<Evaluator> {
  const graph = new Graph();
  const context = new BuildContext(graph, model.modules(), { mode: 'eval' });
  const logits = model.forward(context, graphInputs(graph, model));
  const used = context.usedTensors().map(({ weight }) => weight);
  return { runner: await createRunner(compileModel({ outputs: { logits }, weightsAsInputs: used }), runner), weights: used.map((weight) => weight.name!) };
}

/**
 * Scores a classifier (in eval mode, with its modules' current values) on
 * every example of a source, the last partial batch included.
 *
 * @returns the metrics over all examples
 * @public
 */
export async function evaluateClassifier(
  model: ClassifierGraph,
  source: ExampleSource,
  options: { batchSize?: number; runner?: RunnerOptions; onProgress?: TrainOptions['onProgress'] } = {},
): Promise<ClassificationMetrics> {
  const evaluator = await compileEvaluator(model, options.runner);
  try {
    return await evaluate(evaluator, undefined, model, source, options.batchSize ?? 32, 0, options.onProgress);
  } finally {
    await evaluator.runner.release();
  }
}

async function evaluate(
  evaluator: Evaluator,
  step: ModuleTrainStep | undefined,
  model: ClassifierGraph,
  test: ExampleSource,
  batchSize: number,
  epoch: number,
  onProgress: TrainOptions['onProgress'],
): Promise<ClassificationMetrics> {
  const state = step?.state() ?? new Map<string, HostTensor>();
  const moduleTensors = new Map(model.modules().flatMap((module) => module.namedTensors()));
  const weights: Record<string, HostTensor> = {};
  for (const name of evaluator.weights) weights[name] = state.get(name) ?? moduleTensors.get(name)!.value;
  const metrics = new MetricsAccumulator(model.numClasses);
  const batches = epochBatches(test.length, { batchSize }, 0);
  let done = 0;
  for (const indices of batches) {
    const feeds = await test.read(indices, { epoch: 0, training: false });
    const { logits } = await evaluator.runner.run({ ...feeds, ...weights });
    metrics.add(
      logits!,
      indices.map((i) => test.label(i)),
    );
    done += indices.length;
    onProgress?.({ phase: 'evaluate', epoch, done, total: test.length });
  }
  return metrics.result();
}
