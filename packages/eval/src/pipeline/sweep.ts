import type { HostTensor, RunnerOptions } from '@diffssl/core';
import { featureKey } from '@diffssl/unet';
import type { FeatureCache } from '../cache/reader.js';
import type { ClassificationMetrics } from '../metrics/classification.js';
import { knnProbe } from '../probes/knn.js';
import { ridgeProbe } from '../probes/ridge.js';
import { linearHeadKind } from '../heads/kinds/linear.js';
import { createProtocolModel } from '../heads/registry.js';
import { bestSweepCell, writeSweepReport, type SweepCell, type SweepReport } from '../report/sweep-report.js';
import { trainClassifier } from '../training/trainer.js';
import { defaultCacheDirectory } from './run.js';
import { cacheSource } from './sources.js';
import { cachedFeatures, openSplits, type DataOptions, type SplitFeatures, type Splits } from './splits.js';
import type { PipelineRuntimeOptions } from './runtime-options.js';
import { loadUNet, unetLoadDisplay, type LoadedUNet } from './unet-source.js';

/** How a sweep or probe scores one (block, timestep) cell. @public */
export type Scorer = 'linear' | 'ridge' | 'knn';

/** Options of {@link runSweep} (the `diffssl sweep` command). @public */
export interface SweepOptions extends DataOptions, PipelineRuntimeOptions, ScorerSettings {
  /** The U-Net's weights (a guided-diffusion `.pt` or a safetensors file). */
  checkpoint: string;
  /** guided-diffusion flags file or preset name. */
  config: string;
  /** Blocks (default: all). */
  blocks?: readonly number[];
  /** Timesteps. */
  timesteps: readonly number[];
  /** `linear`: GD(L) trained with the reference's protocol; `ridge`: closed-form ridge probe; `knn`: cosine k-nearest neighbours (default `linear`). */
  scorer?: Scorer;
  /** Pooling of the features (`pre_pool_size`, default 2 as GD(L)). */
  prePoolSize?: number;
  /** Seed of the heads' initialization, the data order and the noise (default 0). */
  seed?: number;
  /** Output folder for sweep.json, sweep.md and sweep.svg. */
  out: string;
  /** Feature cache root (default `$DIFFSSL_CACHE` or `~/.cache/diffssl/features`). */
  cacheDirectory?: string;
}

/** How a sweep cell is scored: GD(L)'s training, kNN's neighbours, ridge's penalty. @public */
export interface ScorerSettings {
  /** GD(L) epochs (default 28). */
  epochs?: number;
  /** GD(L) learning rate (default 1e-2). */
  learningRate?: number;
  /** GD(L) batch size (default 32). */
  batchSize?: number;
  /** kNN neighbours (default 20). */
  k?: number;
  /** Ridge penalty relative to the mean squared feature (default the probe's). */
  lambda?: number;
}

/** Reads every image of one feature, flattened to [N, D]. */
async function flatFeature(cache: FeatureCache, name: string): Promise<HostTensor<'float32'>> {
  const indices = Array.from({ length: cache.imageCount }, (_, i) => i);
  const tensor = (await cache.readBatch(indices, 0, [name])).get(name)!;
  return tensor.reshape([tensor.shape[0]!, -1]) as HostTensor<'float32'>;
}

/** Options of {@link scoreCell}. @public */
export interface ScoreCellOptions extends ScorerSettings {
  /** GD(L), ridge or kNN. */
  scorer: Scorer;
  /** The U-Net whose features the caches hold. */
  unet: LoadedUNet;
  /** The images (for labels and class names). */
  splits: Splits;
  /** Cached pooled features of both splits, holding this cell. */
  caches: SplitFeatures;
  /** The U-Net block (1-based). */
  block: number;
  /** The diffusion timestep. */
  timestep: number;
  /** The pooled side the caches hold (`pre_pool_size`). */
  prePoolSize: number;
  /** Seed of GD(L)'s initialization and data order (default 0). */
  seed?: number;
  /** Where GD(L) trains (default: CUDA when present, else CPU). */
  runner?: RunnerOptions;
}

/**
 * Scores one (block, timestep) cell from cached pooled features: GD(L)
 * trained as the reference does, a ridge probe or a kNN probe.
 *
 * @public
 */
export async function scoreCell(options: ScoreCellOptions): Promise<ClassificationMetrics> {
  const { splits, caches, block, timestep } = options;
  const name = featureKey(timestep, block);
  const labels = (dataset: Splits['train']) => Array.from({ length: dataset.length }, (_, i) => dataset.label(i));
  if (options.scorer === 'linear') {
    const model = createProtocolModel(
      {
        protocol: 'linear',
        blocks: [block],
        timesteps: [timestep],
        prePoolSize: options.prePoolSize,
        numClasses: splits.train.classes.length,
        seed: options.seed ?? 0,
      },
      options.unet.unet,
    );
    const result = await trainClassifier({
      model,
      train: cacheSource(caches.train, splits.train, [name]),
      test: cacheSource(caches.test, splits.test, [name]),
      epochs: options.epochs ?? 28,
      batchSize: options.batchSize ?? 32,
      learningRate: options.learningRate ?? linearHeadKind.protocol.learningRate,
      seed: options.seed ?? 0,
      runner: options.runner,
    });
    return result.metrics;
  }
  const input = {
    train: await flatFeature(caches.train, name),
    trainLabels: labels(splits.train),
    test: await flatFeature(caches.test, name),
    testLabels: labels(splits.test),
    classCount: splits.train.classes.length,
  };
  if (options.scorer === 'ridge') return (await ridgeProbe({ ...input, ...(options.lambda !== undefined ? { lambda: options.lambda } : {}) })).metrics;
  return (await knnProbe({ ...input, k: options.k ?? 20 })).metrics;
}

/**
 * A block x timestep grid, each cell scored from cached features (extracted
 * once per timestep for all blocks), written as a table and an SVG heatmap
 * like the paper's block/timestep figure.
 *
 * @returns the sweep, its best cell filled in
 * @public
 */
export async function runSweep(options: SweepOptions): Promise<SweepReport> {
  const log = options.log ?? (() => {});
  const scorer = options.scorer ?? 'linear';
  const prePoolSize = options.prePoolSize ?? linearHeadKind.protocol.prePoolSize;
  const splits = await openSplits(options);
  const unet = await loadUNet({ checkpoint: options.checkpoint, config: options.config, onProgress: unetLoadDisplay(options.progress ?? 'auto') });
  const blocks = options.blocks ?? unet.unet.blocks.map((block) => block.number);
  const cells: SweepCell[] = [];
  for (const timestep of options.timesteps) {
    const caches = await cachedFeatures({
      ...options,
      unet,
      splits,
      blocks,
      timesteps: [timestep],
      pool: prePoolSize,
      noiseSeed: options.seed ?? 0,
      root: options.cacheDirectory ?? defaultCacheDirectory(),
      log,
    });
    try {
      for (const block of blocks) {
        const started = performance.now();
        const metrics = await scoreCell({ ...options, scorer, unet, splits, caches, block, timestep, prePoolSize });
        cells.push({ block, timestep, top1: metrics.top1, seconds: (performance.now() - started) / 1000 });
        log(`sweep (${scorer}): block ${block} at t=${timestep}: ${metrics.top1.toFixed(2)}% of ${metrics.count} test images`);
      }
    } finally {
      await caches.train.close();
      await caches.test.close();
    }
  }
  const sweep: SweepReport = {
    scorer,
    blocks: [...blocks],
    timesteps: [...options.timesteps],
    cells,
    settings: {
      checkpoint: options.checkpoint,
      config: options.config,
      data: options.data,
      trainLimit: options.trainLimit ?? null,
      testLimit: options.testLimit ?? null,
      prePoolSize,
      seed: options.seed ?? 0,
    },
  };
  sweep.best = bestSweepCell(sweep);
  await writeSweepReport(options.out, sweep);
  return sweep;
}
