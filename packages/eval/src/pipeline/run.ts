import type { PipelineRuntimeOptions } from './runtime-options.js';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { access, mkdir } from 'node:fs/promises';
import { constants } from 'node:fs';
import { ConfigError, writeFileAtomic, writeSafetensors, type HostTensor, type RunnerOptions } from '@diffssl/core';
import { createFeatureExtractor, writeTorchCheckpoint, type NoiseSplit, type UNetPrecision } from '@diffssl/unet';
import { FASHION_MNIST_CLASSES } from '../data/idx.js';
import type { Dataset } from '../data/dataset.js';
import { loadBatch, type BatchOptions } from '../data/batches.js';
import { exportClassifier } from '../export/export.js';
import { createProgress, type Progress, type ProgressOptions } from '../progress.js';
import { checkProtocolOptions, createProtocolModel, protocolKind, type Protocol } from '../heads/registry.js';
import type { ProtocolModel, ProtocolSettings } from '../heads/head-kind.js';
import { pixelSource } from '../protocols/pixels.js';
import type { FeatureHeadClassifier } from '../protocols/feature-head.js';
import { FINETUNE_LEARNING_RATE, finetunedWeights, UNET_PREFIX } from '../protocols/finetune.js';
import { reportFieldsFromMetrics, writeRunReport, type RunReport } from '../report/run-report.js';
import type { ExampleSource } from '../training/classifier-graph.js';
import { resumeCheckpoint, trainClassifier, type TrainingProgress, type TrainOptions } from '../training/trainer.js';
import { cacheSource, imageNoiseSource } from './sources.js';
import { cachedFeatures, openSplits, preparation, type DataOptions } from './splits.js';
import type { SavedRunSettings } from './saved-model.js';
import { loadUNet, unetLoadDisplay, unetSetupLog, type LoadedUNet } from './unet-source.js';

/** Options of {@link runProtocol} (the `diffssl train` command). @public */
export interface RunOptions
  extends DataOptions,
    PipelineRuntimeOptions,
    Pick<ProtocolSettings, 'prePoolSize' | 'headArc' | 'fusionArc' | 'normType' | 'feedbackFrom' | 'feedbackArch'> {
  /** The protocol. */
  protocol: Protocol;
  /** U-Net weights (not for pixels; the random baseline uses only the flags). */
  checkpoint?: string;
  /** guided-diffusion flags file or preset name (not for pixels). */
  config?: string;
  /** Blocks and timesteps read. */
  blocks?: readonly number[];
  /** Timesteps read. */
  timesteps?: readonly number[];
  /** Training (defaults: the reference's). */
  epochs?: number;
  /** SGD learning rate (default: the protocol's, from the head registry). */
  learningRate?: number;
  /** Training batch size (default 32). */
  batchSize?: number;
  /** Evaluation batch size (default: `batchSize`). */
  evalBatchSize?: number;
  /**
   * Gradient accumulation (`--micro-batch`): split each training batch into
   * micro-batches of at most this many examples and take one SGD step from
   * their summed gradients; see `TrainOptions.microBatch`. At least
   * `batchSize` means no split. Default: no split.
   */
  microBatch?: number;
  /** SGD momentum (default 0). */
  momentum?: number;
  /** SGD weight decay (default 0). */
  weightDecay?: number;
  /** StepLR: epochs between learning-rate drops (default 7). */
  lrStep?: number;
  /** StepLR factor (default 0.1). */
  lrGamma?: number;
  /** Evaluate after every N epochs (default: only after the last). */
  evalEvery?: number;
  /** Seed of the head's initialization, the data order and the noise (default 0). */
  seed?: number;
  /** Noise draws per image in the feature cache (default 1). */
  draws?: number;
  /** Output folder: report, checkpoint, weights. */
  out: string;
  /** Continue a killed run from its checkpoint in `out`; a `ConfigError` when there is none. */
  resume?: boolean;
  /** Feature cache root (default `$DIFFSSL_CACHE` or `~/.cache/diffssl/features`). */
  cacheDirectory?: string;
  /** Use the feature cache for frozen protocols (default true); false recomputes features every epoch. Only protocols on frozen features take it. */
  cache?: boolean;
  /** Also export the trained model as `out/model.onnx` (+ `model.json`). */
  exportModel?: boolean;
  /**
   * Backbone mode `finetune` (default false: `freeze`): the U-Net's weights
   * train with the head in one SGD optimizer (learning rate 1e-3 unless
   * given), on fresh seeded noise every step, without the feature cache.
   * The run also writes the fine-tuned U-Net as `unet.safetensors` and
   * `unet.pt` (PyTorch `state_dict` names). Kinds on a pretrained U-Net
   * only (linear, attention, difformer, diffeed).
   */
  finetune?: boolean;
  /** Receives the loss of every training step. */
  onStep?: TrainOptions['onStep'];
}

/** The file names of a fine-tuned U-Net in a run's output folder. @public */
export const FINETUNED_UNET_FILES = { safetensors: 'unet.safetensors', torch: 'unet.pt' } as const;

/** The default root of the feature cache. @public */
export function defaultCacheDirectory(): string {
  return process.env.DIFFSSL_CACHE ?? join(homedir(), '.cache', 'diffssl', 'features');
}

async function checkWritable(directory: string): Promise<void> {
  try {
    await mkdir(directory, { recursive: true });
    await access(directory, constants.W_OK);
  } catch (cause) {
    throw new ConfigError(`--out: cannot write to ${directory}: ${(cause as Error).message}`);
  }
}

/** The protocol settings of run options. */
function settingsOf(options: RunOptions, numClasses: number): ProtocolSettings {
  return {
    protocol: options.protocol,
    blocks: options.blocks ?? [],
    timesteps: options.timesteps ?? [],
    numClasses,
    prePoolSize: options.prePoolSize ?? protocolKind(options.protocol).protocol.prePoolSize,
    headArc: options.headArc,
    fusionArc: options.fusionArc,
    normType: options.normType,
    feedbackFrom: options.feedbackFrom,
    feedbackArch: options.feedbackArch,
    seed: options.seed ?? 0,
    ...(options.finetune ? { finetune: true } : {}),
  };
}

/**
 * Trains and evaluates one protocol end to end: reads the data, loads the
 * U-Net, extracts the features into the feature cache (frozen protocols),
 * trains with checkpoints every epoch, scores every test image, and writes
 * `report.json`, `report.md`, SVG charts and `model.safetensors` (the
 * reference's names) into `out`.
 *
 * @returns the report
 * @throws one-line `DiffSSLError`s for bad data, checkpoints or options
 * @public
 */
export async function runProtocol(options: RunOptions): Promise<RunReport> {
  const started = performance.now();
  const log = options.log ?? (() => {});
  await checkWritable(options.out);
  // Before the data and the U-Net are read: --resume with nothing to resume fails at once.
  if (options.resume) resumeCheckpoint(options.out);
  const { protocol } = options;
  const support = protocolKind(protocol).protocol;
  // The model files are not checked here: one object of common options may carry them for a set of runs (the demo's
  // pixels, linear and attention); `diffssl train` refuses --checkpoint and --config where they do not apply.
  checkProtocolOptions(protocol, {
    finetune: options.finetune || undefined,
    blocks: options.blocks,
    timesteps: options.timesteps,
    draws: options.draws,
    cache: options.cache,
    prePoolSize: options.prePoolSize,
    headArc: options.headArc,
    fusionArc: options.fusionArc,
    normType: options.normType,
    feedbackFrom: options.feedbackFrom,
    feedbackArch: options.feedbackArch,
  });
  const seed = options.seed ?? 0;
  const noiseSeed = seed;
  const { train, test } = await openSplits(options);
  log(`data: ${train.length} training and ${test.length} test images, ${train.classes.length} classes`);
  const settings = settingsOf(options, train.classes.length);
  let loaded: LoadedUNet | undefined;
  if (support.unet !== 'none') {
    if (!options.config) throw new ConfigError(`--config: ${protocol} needs the U-Net's guided-diffusion flags (a JSON file or a preset name)`);
    loaded = await loadUNet({
      config: options.config,
      ...(support.unet === 'random' ? { randomInit: { seed } } : { checkpoint: options.checkpoint }),
      onProgress: unetLoadDisplay(options.progress ?? 'auto'),
    });
    log(
      `U-Net: ${loaded.unet.blocks.length} blocks${support.unet === 'random' ? ', freshly initialized (random baseline)' : options.finetune ? ', fine-tuned with the head' : ''}`,
    );
  }
  const imageShape = train.imageShape;
  const model: ProtocolModel = createProtocolModel(settings, loaded?.unet, imageShape ? [imageShape[0], imageShape[1], imageShape[2]] : undefined);
  const progressMode = options.progress ?? 'auto';
  const cleanups: (() => Promise<void>)[] = [];
  try {
    const { sources, notes } = await exampleSources({ options, model, loaded, train, test, noiseSeed, progressMode, log }, cleanups);
    const defaults = support;
    const epochs = options.epochs ?? 28;
    let progress: Progress | undefined;
    const onProgress = (event: TrainingProgress) => {
      if (event.phase === 'train') crashIfAsked(event.epoch, event.batch);
      const [label, done, total, unit] =
        event.phase === 'train'
          ? [`epoch ${event.epoch}/${event.epochs}`, event.batch, event.batches, 'batch']
          : [`evaluate after epoch ${event.epoch}`, event.done, event.total, 'img'];
      progress ??= createProgress({ label, total, unit, mode: progressMode });
      const note = event.phase === 'train' ? `loss ${event.loss.toFixed(4)}` : undefined;
      progress.update(done, note);
      if (done === total) {
        progress.finish(note);
        progress = undefined;
      }
    };
    const training = {
      epochs,
      learningRate: options.learningRate ?? (options.finetune ? FINETUNE_LEARNING_RATE : defaults.learningRate),
      batchSize: options.batchSize ?? 32,
      // Recorded only when given: a split changes memory, not the settings of the run (BatchNorm aside).
      ...(options.microBatch !== undefined ? { microBatch: options.microBatch } : {}),
      momentum: options.momentum ?? 0,
      weightDecay: options.weightDecay ?? 0,
      lrStep: options.lrStep ?? 7,
      lrGamma: options.lrGamma ?? 0.1,
      seed,
      draws: options.draws ?? 1,
    };
    const result = await trainClassifier({
      model,
      train: sources.train,
      test: sources.test,
      epochs,
      batchSize: training.batchSize,
      evalBatchSize: options.evalBatchSize,
      microBatch: options.microBatch,
      learningRate: training.learningRate,
      momentum: training.momentum,
      weightDecay: training.weightDecay,
      lrStep: training.lrStep,
      lrGamma: training.lrGamma,
      evalEvery: options.evalEvery,
      seed,
      directory: options.out,
      resume: options.resume,
      fingerprint: JSON.stringify({
        settings,
        data: options.data,
        trainLimit: options.trainLimit ?? null,
        testLimit: options.testLimit ?? null,
        subset: options.subsetList ?? null,
        resize: options.resize ?? false,
        draws: options.draws ?? 1,
        checkpoint: loaded?.identity ?? null,
        // Only another precision than float32 enters the fingerprint, so earlier float32 runs still resume.
        ...(options.precision && options.precision !== 'float32' ? { precision: options.precision } : {}),
      }),
      runner: options.runner,
      onProgress,
      ...(options.onStep ? { onStep: options.onStep } : {}),
    });
    if (result.resumedFromEpoch !== undefined) log(`resumed from the checkpoint after epoch ${result.resumedFromEpoch}`);
    const unetWeights = finetunedWeights(model);
    // A fine-tuned U-Net is saved on its own (unet.safetensors, unet.pt); model.safetensors holds the rest.
    const weights = new Map<string, HostTensor>(
      model
        .modules()
        .flatMap((module) => [...module.stateDict()])
        .filter(([name]) => !(unetWeights && name.startsWith(`${UNET_PREFIX}.`))),
    );
    if (unetWeights) {
      const state = unetWeights.stateDict();
      await writeFileAtomic(join(options.out, FINETUNED_UNET_FILES.safetensors), writeSafetensors(state, { format: 'pt' }));
      await writeTorchCheckpoint(join(options.out, FINETUNED_UNET_FILES.torch), state);
    }
    const saved: SavedRunSettings = {
      model: settings,
      checkpoint: support.unet === 'pretrained' ? (options.checkpoint ?? null) : null,
      config: support.unet === 'none' ? null : (options.config ?? null),
      data: {
        data: options.data,
        ...(options.trainLimit ? { trainLimit: options.trainLimit } : {}),
        ...(options.testLimit ? { testLimit: options.testLimit } : {}),
        ...(options.subsetList ? { subsetList: options.subsetList } : {}),
        ...(options.resize ? { resize: true } : {}),
      },
      classNames: [...train.classes],
      imageShape: imageShape ? [imageShape[0], imageShape[1], imageShape[2]] : null,
      noiseSeed,
      training,
    };
    await writeFileAtomic(join(options.out, 'model.safetensors'), writeSafetensors(weights, { protocol, run: JSON.stringify(saved) }));
    const recorded = { ...settings, checkpoint: saved.checkpoint, config: saved.config, ...saved.data, ...training };
    const report: RunReport = {
      protocol,
      ...reportFieldsFromMetrics(result.metrics),
      train_images: train.length,
      epochs: result.epochs,
      evaluations: result.evaluations,
      class_names: [...train.classes],
      wall_seconds: (performance.now() - started) / 1000,
      settings: recorded,
      ...(notes.length > 0 ? { notes } : {}),
    };
    await writeRunReport(options.out, report);
    if (options.exportModel) {
      const channels = loaded ? loaded.unet.info.inChannels : imageShape?.[0] === 1 ? 3 : imageShape![0];
      const size = loaded ? loaded.unet.info.imageSize : imageShape![1];
      await exportClassifier({
        model,
        path: join(options.out, 'model.onnx'),
        protocol,
        classNames: train.classes,
        imageSize: size,
        channels,
        noiseSeed,
        settings: recorded,
      });
    }
    return report;
  } finally {
    for (const cleanup of cleanups) await cleanup();
  }
}

interface SourceContext {
  options: RunOptions;
  model: ProtocolModel;
  loaded: LoadedUNet | undefined;
  train: Dataset;
  test: Dataset;
  noiseSeed: number;
  progressMode: ProgressOptions['mode'];
  log: (line: string) => void;
}

/**
 * Where a protocol's examples come from: raw pixels, cached features (or
 * features recomputed every batch with `cache: false`), or images with seeded
 * noise for DifFeed. Resources to release go to `cleanups`.
 */
async function exampleSources(
  context: SourceContext,
  cleanups: (() => Promise<void>)[],
): Promise<{ sources: { train: ExampleSource; test: ExampleSource }; notes: string[] }> {
  const { options, model, loaded, train, test, noiseSeed, progressMode, log } = context;
  // A fine-tuned model reads images: its U-Net changes every step, so no features can be cached.
  const examples = options.finetune ? 'images' : protocolKind(options.protocol).protocol.examples;
  const notes: string[] = [];
  let sources: { train: ExampleSource; test: ExampleSource };
  if (examples === 'pixels') {
    sources = { train: pixelSource(train), test: pixelSource(test) };
  } else if (examples === 'features') {
    const head = model as FeatureHeadClassifier;
    const names = [...head.features.keys()];
    if (options.precision && options.precision !== 'float32') notes.push(`features extracted by the U-Net in ${options.precision}`);
    if (options.cache ?? true) {
      const caches = await cachedFeatures({
        ...options,
        unet: loaded!,
        splits: { train, test },
        blocks: head.blocks,
        timesteps: head.timesteps,
        pool: head.prePoolSize,
        noiseSeed,
        root: options.cacheDirectory ?? defaultCacheDirectory(),
        progress: progressMode,
        log,
      });
      cleanups.push(
        () => caches.train.close(),
        () => caches.test.close(),
      );
      sources = { train: cacheSource(caches.train, train, names), test: cacheSource(caches.test, test, names) };
    } else {
      notes.push('features recomputed by the U-Net for every batch (no feature cache)');
      const prepared = preparation(train, loaded!.unet.info.imageSize, options.resize);
      const recomputed = await recomputedSources(loaded!, head, train, test, prepared.test, noiseSeed, options.runner, log, options.precision);
      sources = recomputed;
      cleanups.push(() => recomputed.release());
    }
  } else {
    if ((options.precision ?? 'float32') !== 'float32')
      throw new ConfigError(
        `--precision ${options.precision}: ${options.finetune ? 'fine-tuning' : options.protocol} runs the U-Net in float32 (it trains through it); precision applies to frozen features (linear, attention, difformer)`,
      );
    notes.push(
      options.finetune
        ? 'fine-tuning: the U-Net trains with the head, so features cannot be cached; the U-Net runs on every step (fresh seeded noise each epoch, evaluation on the fixed test noise)'
        : `${options.protocol} cannot use the feature cache: it runs the U-Net itself on every step (fresh seeded noise each epoch)`,
    );
    log(notes[notes.length - 1]!);
    const prepared = preparation(train, loaded!.unet.info.imageSize, options.resize);
    const common = { timesteps: model.timesteps, noiseSeed, seed: options.seed ?? 0, train: prepared.train, test: prepared.test };
    sources = { train: imageNoiseSource(train, { ...common, split: 'train' }), test: imageNoiseSource(test, { ...common, split: 'test' }) };
  }
  return { sources, notes };
}

/**
 * Test hook, internal: with `DIFFSSL_INTERNAL_CRASH_AFTER_STEP=<epoch>:<batch>` (both from 1)
 * in the environment, the process kills itself with SIGKILL right after that
 * training step, as a crash would, at a known point: the CLI test of `--resume`
 * uses it to interrupt a run mid-epoch deterministically. Nothing else reads it.
 *
 * @internal
 */
function crashIfAsked(epoch: number, batch: number): void {
  const at = process.env.DIFFSSL_INTERNAL_CRASH_AFTER_STEP;
  if (at !== undefined && at === `${epoch}:${batch}`) process.kill(process.pid, 'SIGKILL');
}

/** Frozen-protocol sources that run the U-Net for every batch (the no-cache comparison). */
async function recomputedSources(
  loaded: LoadedUNet,
  head: FeatureHeadClassifier,
  train: Dataset,
  test: Dataset,
  batch: Omit<BatchOptions, 'channels' | 'epoch'>,
  noiseSeed: number,
  runner?: RunnerOptions,
  log?: (line: string) => void,
  precision?: UNetPrecision,
) {
  const extractor = await createFeatureExtractor({
    unet: loaded.unet,
    blocks: head.blocks,
    timesteps: head.timesteps,
    pool: head.prePoolSize,
    seed: noiseSeed,
    batchSize: 64,
    runner,
    dtype: precision ?? 'float32',
    onSetup: unetSetupLog(log),
  });
  const source = (dataset: Dataset, split: NoiseSplit): ExampleSource => ({
    length: dataset.length,
    label: (index) => dataset.label(index),
    async read(indices) {
      const { images } = await loadBatch(dataset, indices, { ...batch, channels: 3 });
      return Object.fromEntries(await extractor.extract(images, { ids: indices, split }));
    },
  });
  return { train: source(train, 'train'), test: source(test, 'test'), release: () => extractor.release() };
}

/** The class names of a `--class-names` option: `fashion-mnist` or comma-separated names. @public */
export function parseClassNames(text: string): readonly string[] {
  if (text === 'fashion-mnist') return FASHION_MNIST_CLASSES;
  const names = text.split(',').map((name) => name.trim());
  if (names.some((name) => name === '')) throw new ConfigError(`--class-names: expected 'fashion-mnist' or names separated by commas; found '${text}'`);
  return names;
}
