import { createHash } from 'node:crypto';
import type { RunnerOptions } from '@diffssl/core';
import { createFeatureExtractor, type ExtractorSetupProgress, type NoiseSplit, type UNetPrecision } from '@diffssl/unet';
import { featureBatchesForDraws } from '../cache/extractor-adapter.js';
import { shardRange } from '../cache/format.js';
import { dataIdentity, type FeatureCacheKey } from '../cache/key.js';
import type { FeatureCache } from '../cache/reader.js';
import { findFeatureCache, writeFeatureCache } from '../cache/writer.js';
import { loadBatch, type BatchOptions } from '../data/batches.js';
import type { Dataset } from '../data/dataset.js';
import { folderFiles } from '../data/image-folder.js';
import type { Progress } from '../progress.js';
import type { LoadedUNet } from './unet-source.js';

/** Images decoded at once while extracting (the extractor batches them further). */
const EXTRACTION_CHUNK = 256;

/**
 * The identity of a dataset split for feature-cache keys: every example's
 * source and label, every file below its data directory at any depth (its
 * relative path, size and modification time: an edited, renamed, added or
 * removed image gives another identity), and how the split was selected and
 * transformed.
 *
 * Path, size and modification time rather than a hash of the contents, as
 * make and rsync decide: it costs one `stat` per file, where hashing every
 * image on every run would read the whole data set (10,000 files of 110 kB on
 * a shared 2-core machine: 0.4-0.7 s to walk, 7-11 s to hash with the page
 * cache warm; ImageNet's 1.3 million files would take minutes to hash). What it misses is an edit
 * that keeps both the size and the modification time, which only a tool that
 * resets the time makes. Copies of the data with other times (another
 * machine) get other identities, so shards to merge are extracted from one
 * copy.
 *
 * @public
 */
export async function datasetIdentity(dataset: Dataset, directory: string, selection: Record<string, unknown>): Promise<string> {
  const sources = createHash('sha256');
  for (let i = 0; i < dataset.length; i++) sources.update(`${dataset.source(i)}\n`);
  const files = await folderFiles(directory);
  const labels = Array.from({ length: dataset.length }, (_, i) => dataset.label(i));
  return dataIdentity({ labels, files, selection: { ...selection, sources: sources.digest('hex') } });
}

/** Options of {@link ensureFeatureCache}. @public */
export interface EnsureFeatureCacheOptions {
  /** The U-Net and its identity (part of the cache key). */
  unet: LoadedUNet;
  /** The images. */
  dataset: Dataset;
  /** Its identity ({@link datasetIdentity}). */
  data: string;
  /** Which split the images are: each split draws its own noise stream (part of the cache key). */
  split: NoiseSplit;
  /** U-Net blocks to store (1-based). */
  blocks: readonly number[];
  /** Diffusion timesteps to store. */
  timesteps: readonly number[];
  /** Pool each block to at most this side (the head's `pre_pool_size`). */
  pool: number;
  /** Noise draws per image (default 1). */
  draws?: number;
  /** Seed of the `q_sample` noise of draw 0 (part of the cache key). */
  noiseSeed: number;
  /** The cache root. */
  root: string;
  /** How images become model input (transform; gray to RGB). */
  batch?: Omit<BatchOptions, 'channels' | 'epoch' | 'seed'>;
  /** Write only one shard (k of n). */
  shard?: {
    /** k, the shard, from 0. */
    index: number;
    /** n, the number of shards. */
    count: number;
  };
  /** Images per session run. */
  batchSize?: number;
  /** Session options. */
  runner?: RunnerOptions;
  /** The U-Net's compute precision (default float32; part of the cache key). */
  precision?: UNetPrecision;
  /** Progress display. */
  progress?: Progress;
  /** Receives the U-Net model's setup steps (graph build, ONNX Runtime compile) before extraction. */
  onSetup?: (progress: ExtractorSetupProgress) => void;
}

/** The feature-cache key of an extraction. @public */
export function featureCacheKey(
  options: Pick<EnsureFeatureCacheOptions, 'unet' | 'data' | 'split' | 'blocks' | 'timesteps' | 'pool' | 'draws' | 'noiseSeed' | 'batch' | 'precision'>,
): FeatureCacheKey {
  return {
    checkpoint: options.unet.identity,
    config: options.unet.config,
    blocks: options.blocks,
    timesteps: options.timesteps,
    noiseSeed: options.noiseSeed,
    noiseSplit: options.split,
    draws: options.draws ?? 1,
    data: options.data,
    extra: { pool: options.pool, dtype: options.precision ?? 'float32', transform: options.batch?.transform ?? { kind: 'none' } },
  };
}

/**
 * The U-Net features of a dataset, from the feature cache, extracted and
 * written there first when absent (or when only `shard` is asked, that shard).
 * The noise of image i is `seededNoise(drawSeed(noiseSeed, draw), i, t, size, split)`,
 * so it depends neither on batching nor on sharding, and image i of the
 * training split and image i of the test split get independent noise.
 *
 * @returns the cache (of the shard, when one is asked)
 * @public
 */
export async function ensureFeatureCache(options: EnsureFeatureCacheOptions): Promise<{
  /** The cache entry (or the shard's folder). */
  cache: FeatureCache;
  /** Whether the features were extracted now (false: read from the cache). */
  extracted: boolean;
}> {
  const key = featureCacheKey(options);
  if (!options.shard) {
    const found = await findFeatureCache(options.root, key);
    if (found) return { cache: found, extracted: false };
  }
  const { dataset } = options;
  const [start, end] = options.shard ? shardRange(options.shard.index, options.shard.count, dataset.length) : [0, dataset.length];
  const labels = Array.from({ length: dataset.length }, (_, i) => dataset.label(i));
  const cache = await writeFeatureCache({
    root: options.root,
    key,
    imageCount: dataset.length,
    labels,
    classNames: dataset.classes,
    ...(options.shard ? { shard: options.shard } : {}),
    onProgress: ({ done }) => options.progress?.update(done),
    batches: featureBatchesForDraws({ draws: key.draws, noiseSeed: options.noiseSeed }, async function* (_draw, seed) {
      const extractor = await createFeatureExtractor({
        unet: options.unet.unet,
        blocks: options.blocks,
        timesteps: options.timesteps,
        pool: options.pool,
        seed,
        batchSize: options.batchSize ?? 32,
        dtype: options.precision ?? 'float32',
        runner: options.runner,
        onSetup: options.onSetup,
      });
      try {
        for (let chunk = start; chunk < end; chunk += EXTRACTION_CHUNK) {
          const indices = Array.from({ length: Math.min(EXTRACTION_CHUNK, end - chunk) }, (_, i) => chunk + i);
          const { images } = await loadBatch(dataset, indices, { ...options.batch, channels: 3 });
          yield* extractor.stream(images, { ids: indices, split: options.split });
        }
      } finally {
        await extractor.release();
      }
    }),
  });
  options.progress?.finish();
  return { cache, extracted: true };
}
