/**
 * Evaluation of DiffSSL on real data, and the `diffssl` command line:
 *
 * - data: IDX directories, image folders, in-memory arrays, subset lists, the
 *   reference's PIL-exact preprocessing, seeded and resumable epochs;
 * - protocols: `pixels`, `random`, `linear` (GD(L)), `attention`, `difformer`,
 *   `diffeed`, one entry each in the head registry ({@link HEAD_KINDS},
 *   {@link createProtocolModel}), trained end to end by
 *   {@link runProtocol} with per-epoch checkpoints and bit-identical resume;
 * - the feature cache (documented format, sharded extraction and merge);
 * - quick probes (kNN, ridge), block x timestep sweeps ({@link runSweep});
 * - metrics, JSON and Markdown reports with SVG charts;
 * - standalone ONNX export ({@link exportClassifier});
 * - the reference-check commands ({@link unetRun}, {@link headStep}, {@link finetuneStep}).
 *
 * @example
 * ```ts
 * import { runProtocol, FASHION_MNIST_CLASSES } from '@diffssl/eval';
 * const report = await runProtocol({ protocol: 'attention', checkpoint: 'adm.pt', config: 'flags.json', data: 'fashion-mnist',
 *   classNames: FASHION_MNIST_CLASSES, blocks: [10], timesteps: [50], out: 'runs/attention' });
 * console.log(report.top1);
 * ```
 *
 * @packageDocumentation
 * @module @diffssl/eval
 */
export { unetRun, parseBlocks, type UNetRunOptions } from './commands/unet-run.js';
export { headStep, type HeadStepOptions } from './commands/head-step.js';
export { finetuneStep, type FinetuneStepOptions } from './commands/finetune-step.js';
export type { StepRuntimeOptions } from './commands/options.js';
export {
  cpuFeatures,
  doctor,
  formatDoctor,
  type CpuFeatures,
  type DoctorOptions,
  type DoctorReport,
  type DoctorThreads,
  type FolderUsage,
} from './commands/doctor.js';
export { FineTunedHeadClassifier, FINETUNE_LEARNING_RATE, trainableUNetWeights, unetModule, UNET_PREFIX } from './protocols/finetune.js';
export * from './heads/index.js';
export * from './data/index.js';
export * from './cache/index.js';
export * from './metrics/index.js';
export * from './probes/index.js';
export * from './report/index.js';
export { createProgress, formatDuration, formatRate, Progress, type ProgressOptions, type ProgressStream } from './progress.js';
export {
  evaluateClassifier,
  trainClassifier,
  stepLearningRate,
  type TrainOptions,
  type TrainResult,
  type TrainingProgress,
  type TrainingStep,
} from './training/trainer.js';
export type { ClassifierGraph, ClassifierInput, ExampleSource } from './training/classifier-graph.js';
export { parseProtocol, readsFrozenFeatures, PROTOCOL_DEFAULTS } from './protocols/protocol.js';
export { FeatureHeadClassifier, pooledSize, type BlockShape, type FeatureHead, type FeatureHeadOptions, type ImageInputs } from './protocols/feature-head.js';
export { DifFeedModel, noiseInput, X_START, type DifFeedModelOptions } from './protocols/diffeed-model.js';
export { PixelClassifier, pixelSource, PIXELS } from './protocols/pixels.js';
export { classifierFeeds, topClasses, type ExportedClassifierInfo } from './export/classifier-inputs.js';
export { classifierGraph, exportClassifier, type ExportOptions } from './export/export.js';
export { defaultCacheDirectory, parseClassNames, runProtocol, type RunOptions } from './pipeline/run.js';
export { runSweep, scoreCell, type Scorer, type ScoreCellOptions, type ScorerSettings, type SweepOptions } from './pipeline/sweep.js';
export {
  cachedFeatures,
  openSplits,
  preparation,
  type CachedFeaturesOptions,
  type DataOptions,
  type SplitFeatures,
  type SplitPreparation,
  type Splits,
} from './pipeline/splits.js';
export { datasetIdentity, ensureFeatureCache, featureCacheKey, type EnsureFeatureCacheOptions } from './pipeline/features.js';
export { extractFeatures, type ExtractOptions, type ShardSelection } from './pipeline/extract.js';
export {
  evaluateSavedModel,
  loadSavedModel,
  type EvaluateOptions,
  type SavedModel,
  type SavedModelEvaluation,
  type SavedRunSettings,
} from './pipeline/saved-model.js';
export type { PipelineRuntimeOptions } from './pipeline/runtime-options.js';
export { cacheSource, imageNoiseSource, type ImageNoiseSourceOptions } from './pipeline/sources.js';
export { loadUNet, readFlags, type LoadedUNet, type LoadUNetOptions, type UNetLoadProgress } from './pipeline/unet-source.js';
