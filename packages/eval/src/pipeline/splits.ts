import type { PipelineRuntimeOptions } from './runtime-options.js';
import { ConfigError, ShapeError } from '@diffssl/core';
import { openDataset } from '../data/open.js';
import type { Dataset } from '../data/dataset.js';
import type { BatchOptions } from '../data/batches.js';
import type { FeatureCache } from '../cache/reader.js';
import { createProgress } from '../progress.js';
import { datasetIdentity, ensureFeatureCache, type EnsureFeatureCacheOptions } from './features.js';
import { unetSetupLog, type LoadedUNet } from './unet-source.js';

/** Where the data comes from and which part of it (options shared by the commands). @public */
export interface DataOptions {
  /** Data directory: IDX files, or `train/` and `val/` class folders. */
  data: string;
  /** Keep the first N training images, in file order. */
  trainLimit?: number;
  /** Keep the first N test images. */
  testLimit?: number;
  /** A subset list (file names) of training images, for semi-supervised runs. */
  subsetList?: string;
  /** Class names of IDX data (default `0`..`9`). */
  classNames?: readonly string[];
  /**
   * Resize images of one fixed size (IDX, arrays) that differ from the
   * U-Net's size, as image folders are (the reference's BICUBIC resize and
   * crops). Default false: such images are refused.
   */
  resize?: boolean;
}

/** The training and test splits. @public */
export interface Splits {
  /** The training split (after `trainLimit` and the subset list). */
  train: Dataset;
  /** The test split (after `testLimit`): every image is scored. */
  test: Dataset;
}

/** How the images of each split are prepared for the U-Net ({@link preparation}). @public */
export interface SplitPreparation {
  /** Training images: the reference's random resized crop and flip, or nothing when the size already fits. */
  train: Omit<BatchOptions, 'channels' | 'epoch'>;
  /** Test images: the reference's resize and center crop, or nothing when the size already fits. */
  test: Omit<BatchOptions, 'channels' | 'epoch'>;
}

/** The feature caches of both splits ({@link cachedFeatures}). @public */
export interface SplitFeatures {
  /** Features of the training split (with its noise draws). */
  train: FeatureCache;
  /** Features of the test split (one draw). */
  test: FeatureCache;
}

/**
 * Opens the training and test splits of a data directory.
 *
 * @throws `ConfigError` when they have different classes; the readers' errors
 * @public
 */
export async function openSplits(options: DataOptions): Promise<Splits> {
  const classes = options.classNames ? { classes: options.classNames } : {};
  const train = await openDataset(options.data, {
    split: 'train',
    ...classes,
    ...(options.trainLimit ? { limit: options.trainLimit } : {}),
    ...(options.subsetList ? { subsetList: options.subsetList } : {}),
  });
  const test = await openDataset(options.data, { split: 'test', ...classes, ...(options.testLimit ? { limit: options.testLimit } : {}) });
  if (train.classes.join('\n') !== test.classes.join('\n'))
    throw new ConfigError(`data: the training classes (${train.classes.length}) differ from the test classes (${test.classes.length})`);
  return { train, test };
}

/**
 * Image preparation for a model of side `size`. Images of one fixed size
 * (IDX files, arrays) are used as they are and must have the model's size
 * unless `resize` is set; image folders (and resized data) get the reference's
 * crops (random for training, center for evaluation and cached features).
 *
 * @throws `ShapeError` for fixed-size images of another size without `resize`
 * @public
 */
export function preparation(dataset: Dataset, size: number, resize = false): SplitPreparation {
  const shape = dataset.imageShape;
  if (shape && shape[1] === size && shape[2] === size) return { train: {}, test: {} };
  if (shape && !resize) {
    throw new ShapeError(
      `data: the images are ${shape[1]}x${shape[2]} and the U-Net takes ${size}x${size}; IDX and array data are used as they are unless you resize them (--resize)`,
    );
  }
  return { train: { transform: { kind: 'random-crop', size } }, test: { transform: { kind: 'center-crop', size } } };
}

/** Options of {@link cachedFeatures}. @public */
export interface CachedFeaturesOptions
  extends DataOptions,
    PipelineRuntimeOptions,
    Pick<EnsureFeatureCacheOptions, 'unet' | 'blocks' | 'timesteps' | 'pool' | 'noiseSeed' | 'root'> {
  /** The images of both splits. */
  splits: Splits;
  /** Noise draws of the training features (default 1; test features always have 1). */
  draws?: number;
}

/**
 * The identity of one split for feature-cache keys ({@link datasetIdentity}
 * with the split's selection: limit, subset list and classes). `diffssl
 * extract` and the commands that read the cache both key by it, so their keys
 * agree.
 *
 * @param dataset - the split's images
 * @param options - the data options the split was opened with
 * @param split - which split
 * @returns the identity
 * @internal
 */
export function splitIdentity(dataset: Dataset, options: DataOptions, split: 'train' | 'test'): Promise<string> {
  return datasetIdentity(dataset, options.data, {
    split,
    limit: (split === 'train' ? options.trainLimit : options.testLimit) ?? null,
    subset: split === 'train' ? (options.subsetList ?? null) : null,
    classes: dataset.classes,
  });
}

/**
 * How cached features' images are prepared (part of the cache key): the
 * evaluation preprocessing of the training split's {@link preparation}, for
 * both splits.
 *
 * @param splits - the splits
 * @param unet - the U-Net (its image size)
 * @param resize - resize fixed-size images of another size
 * @returns the batch options
 * @throws as {@link preparation}
 * @internal
 */
export function cachedPreparation(splits: Splits, unet: LoadedUNet, resize?: boolean): SplitPreparation['test'] {
  return preparation(splits.train, unet.unet.info.imageSize, resize).test;
}

/**
 * The U-Net features of one split from the feature cache, extracted there
 * first when absent (evaluation preprocessing, no augmentation).
 *
 * @param options - the splits, U-Net, features and cache root
 * @param split - which split
 * @param draws - noise draws per image
 * @returns the cache, opened
 * @internal
 */
export async function splitFeatures(options: CachedFeaturesOptions, split: 'train' | 'test', draws: number): Promise<FeatureCache> {
  const batch = cachedPreparation(options.splits, options.unet, options.resize);
  const dataset = options.splits[split];
  const data = await splitIdentity(dataset, options, split);
  const progress = createProgress({ label: `extract ${split}`, total: dataset.length * draws, unit: 'img', mode: options.progress ?? 'auto' });
  const { cache, extracted } = await ensureFeatureCache({
    unet: options.unet,
    dataset,
    data,
    split,
    blocks: options.blocks,
    timesteps: options.timesteps,
    pool: options.pool,
    draws,
    noiseSeed: options.noiseSeed,
    root: options.root,
    batch,
    progress,
    runner: options.runner,
    ...(options.precision ? { precision: options.precision } : {}),
    onSetup: unetSetupLog(options.log),
  });
  options.log?.(`features (${split}): ${extracted ? 'extracted to' : 'read from'} the feature cache ${cache.directory}`);
  return cache;
}

/**
 * The U-Net features of both splits from the feature cache, extracted there
 * first when absent. Both splits use evaluation preprocessing (no
 * augmentation), as the reference's cached features do.
 *
 * @public
 */
export async function cachedFeatures(options: CachedFeaturesOptions): Promise<SplitFeatures> {
  return { train: await splitFeatures(options, 'train', options.draws ?? 1), test: await splitFeatures(options, 'test', 1) };
}
