import { ConfigError, HostTensor, RandomGenerator, ShapeError } from '@diffssl/core';
import type { Dataset } from './dataset.js';
import { imagePlanes } from './resample.js';
import { centerCrop, PIXEL_TO_MODEL, randomCrop, type ImageTransform } from './transforms.js';

/** Stream keys of `RandomGenerator` (`@diffssl/core`): which use a stream serves. */
const SHUFFLE_STREAM = 0x5348_5546; // 'SHUF'
const AUGMENT_STREAM = 0x4155_474d; // 'AUGM'

/**
 * How one epoch is cut into batches. Training: `shuffle: true, dropLast: true`
 * (as the reference's loaders). Evaluation: the defaults, `shuffle: false,
 * dropLast: false`, so that every image is seen exactly once, the last partial
 * batch included.
 *
 * @public
 */
export interface EpochPlan {
  /** Examples per batch. */
  batchSize: number;
  /** Visit the examples in a seeded random order, a new one each epoch (default false: dataset order). */
  shuffle?: boolean;
  /** Leave out the last batch when it is smaller than `batchSize` (default false). */
  dropLast?: boolean;
  /** Seed of the order and the augmentation (uint32, default 0). */
  seed?: number;
}

/** Options of {@link loadBatch}: how images become model input. @public */
export interface BatchOptions {
  /** Resize/crop/flip (default `{ kind: 'none' }`: images must already have the expected size). */
  transform?: ImageTransform;
  /** [H,W] every image must have under transform `none` (default: the dataset's fixed image size). */
  imageSize?: readonly [number, number];
  /** Output channels: 3 (default; gray replicated to RGB) or 1 (gray images only, e.g. the raw-pixel baseline). */
  channels?: 1 | 3;
  /** Seed of the random crops and flips (uint32, default 0). */
  seed?: number;
  /** The epoch, which selects fresh random crops and flips (default 0). */
  epoch?: number;
}

/**
 * A batch of model input: float32 [B,C,H,W] images in [-1, 1] and their int64
 * [B] labels.
 *
 * @public
 */
export interface Batch {
  /** float32 [B,C,H,W] images in [-1, 1]. */
  images: HostTensor<'float32'>;
  /** int64 [B] class labels. */
  labels: HostTensor<'int64'>;
  /** Dataset index of each row. */
  indices: readonly number[];
}

/** A batch of {@link iterateBatches}, with its position. @public */
export interface EpochBatch extends Batch {
  /** The epoch the batch belongs to. */
  epoch: number;
  /** Index of the batch within its epoch (0-based). */
  batchIndex: number;
}

function checkUint32(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new ConfigError(`${what} must be an integer in [0, 2^32); found ${value}`);
}

function checkPlan(plan: EpochPlan, epoch: number): void {
  if (!Number.isSafeInteger(plan.batchSize) || plan.batchSize < 1) throw new ConfigError(`batch size must be a positive integer; found ${plan.batchSize}`);
  checkUint32(plan.seed ?? 0, 'seed');
  checkUint32(epoch, 'epoch');
}

/**
 * The number of batches of one epoch.
 *
 * @param length - dataset size
 * @param plan - batch size and whether the last partial batch is dropped
 * @returns `floor(length / batchSize)` when dropping, else `ceil(length / batchSize)`
 * @throws `ConfigError` for a bad batch size
 * @public
 */
export function batchCount(length: number, plan: EpochPlan): number {
  checkPlan(plan, 0);
  return plan.dropLast ? Math.floor(length / plan.batchSize) : Math.ceil(length / plan.batchSize);
}

/**
 * The order in which an epoch visits the dataset: `0..length-1`, or, with
 * `shuffle`, a permutation that depends only on `(seed, epoch)` (never on the
 * batch size).
 *
 * @param length - dataset size
 * @param options - shuffle, seed and epoch
 * @returns the dataset indices in visiting order
 * @throws `ConfigError` for a bad seed or epoch
 * @public
 */
export function epochOrder(length: number, options: { shuffle?: boolean; seed?: number; epoch: number }): Int32Array {
  checkUint32(options.seed ?? 0, 'seed');
  checkUint32(options.epoch, 'epoch');
  const order = Int32Array.from({ length }, (_, i) => i);
  if (options.shuffle) new RandomGenerator(options.seed ?? 0, SHUFFLE_STREAM, options.epoch).shuffle(order);
  return order;
}

/**
 * The batches of one epoch as lists of dataset indices: {@link epochOrder}
 * cut into runs of `batchSize`, the last partial run kept unless `dropLast`.
 *
 * @param length - dataset size
 * @param plan - the epoch plan
 * @param epoch - the epoch number (0-based)
 * @returns one index list per batch
 * @throws `ConfigError` for a bad plan or epoch
 * @public
 */
export function epochBatches(length: number, plan: EpochPlan, epoch: number): number[][] {
  checkPlan(plan, epoch);
  const order = epochOrder(length, { shuffle: plan.shuffle ?? false, seed: plan.seed ?? 0, epoch });
  const batches: number[][] = [];
  const count = batchCount(length, plan);
  for (let b = 0; b < count; b++) batches.push(Array.from(order.subarray(b * plan.batchSize, Math.min(length, (b + 1) * plan.batchSize))));
  return batches;
}

/**
 * Applies a transform to one decoded image. Random transforms draw from a
 * stream keyed by `(seed, epoch, index)` only, so an image gets the same crop
 * whatever the batch size, the batch it lands in, or where a run resumed.
 *
 * @param image - uint8 [C,H,W]
 * @param transform - the transform
 * @param key - seed, epoch and dataset index of the image
 * @returns uint8 [C,H',W']
 * @throws `ConfigError` for an unknown transform kind
 * @public
 */
export function applyTransform(
  image: HostTensor<'uint8'>,
  transform: ImageTransform,
  key: { seed: number; epoch: number; index: number },
): HostTensor<'uint8'> {
  switch (transform.kind) {
    case 'none':
      return image;
    case 'center-crop':
      return centerCrop(image, transform.size);
    case 'random-crop':
      return randomCrop(image, transform.size, new RandomGenerator(key.seed, AUGMENT_STREAM, key.epoch, key.index), transform).image;
    default:
      throw new ConfigError(`transform: kind must be 'none', 'center-crop' or 'random-crop'; found '${(transform as { kind: unknown }).kind}'`);
  }
}

function outputSize(dataset: Dataset, options: BatchOptions): [number, number] {
  const transform = options.transform ?? { kind: 'none' };
  if (transform.kind !== 'none') return [transform.size, transform.size];
  const size = options.imageSize ?? (dataset.imageShape ? [dataset.imageShape[1], dataset.imageShape[2]] : undefined);
  if (!size) {
    throw new ConfigError(
      'batches: images of this dataset may differ in size; give a center-crop or random-crop transform, or the imageSize every image must have',
    );
  }
  return [size[0], size[1]];
}

/**
 * Loads examples as model input: decodes them (concurrently), applies the
 * transform, converts to float32 `x / 127.5 - 1` (gray replicated to RGB
 * unless `channels: 1`) and stacks them in the given order.
 *
 * @param dataset - the dataset
 * @param indices - dataset indices, one per row
 * @param options - transform, expected size, channels, seed and epoch
 * @returns float32 [B,C,H,W] images in [-1, 1] and int64 [B] labels
 * @throws `ShapeError` naming the file for an image of the wrong size under transform `none`, or an RGB image with `channels: 1`;
 *   `ConfigError` for a bad index or options; `FormatError` for an image that cannot be decoded
 * @example
 * ```ts
 * const { images, labels } = await loadBatch(test, [0, 1, 2, 3]);
 * ```
 * @public
 */
export async function loadBatch(dataset: Dataset, indices: readonly number[], options: BatchOptions = {}): Promise<Batch> {
  const transform = options.transform ?? { kind: 'none' };
  const seed = options.seed ?? 0;
  const epoch = options.epoch ?? 0;
  checkUint32(seed, 'seed');
  checkUint32(epoch, 'epoch');
  const channels = options.channels ?? 3;
  if (channels !== 1 && channels !== 3) throw new ConfigError(`batches: channels must be 1 or 3; found ${String(channels)}`);
  const [height, width] = outputSize(dataset, options);
  const pixels = height * width;
  const images = new Float32Array(indices.length * channels * pixels);
  const labels = new BigInt64Array(indices.length);
  const examples = await Promise.all(indices.map((index) => dataset.get(index)));
  examples.forEach((example, row) => {
    const transformed = applyTransform(example.image, transform, { seed, epoch, index: indices[row]! });
    const planes = imagePlanes(transformed, example.source);
    if (planes.height !== height || planes.width !== width) {
      throw new ShapeError(
        `${example.source}: image is ${planes.height}x${planes.width} (HxW); expected ${height}x${width}, and no resize is configured (use a center-crop or random-crop transform)`,
      );
    }
    if (channels === 1 && planes.channels !== 1)
      throw new ShapeError(`${example.source}: image has ${planes.channels} channels; channels: 1 needs gray images`);
    const base = row * channels * pixels;
    for (let c = 0; c < channels; c++) {
      const source = planes.channels === 1 ? 0 : c * pixels;
      const target = base + c * pixels;
      for (let p = 0; p < pixels; p++) images[target + p] = PIXEL_TO_MODEL[planes.data[source + p]!]!;
    }
    labels[row] = BigInt(example.label);
  });
  return {
    images: new HostTensor('float32', images, [indices.length, channels, height, width]),
    labels: new HostTensor('int64', labels, [indices.length]),
    indices: [...indices],
  };
}

/** Options of {@link iterateBatches}. @public */
export interface IterateOptions extends EpochPlan, Omit<BatchOptions, 'seed' | 'epoch'> {
  /** The epoch (0-based); selects the shuffle order and the augmentation. */
  epoch: number;
  /** Start at this batch of the epoch (resume); the batches after it are identical to an uninterrupted epoch's. Default 0. */
  startBatch?: number;
}

/**
 * The batches of one epoch, in order ({@link epochBatches} loaded with
 * {@link loadBatch}), decoding the next batch while the caller works on the
 * current one. Everything is a function of `(seed, epoch, batch index)`, so
 * starting at `startBatch` yields exactly the batches an uninterrupted epoch
 * yields from there.
 *
 * @param dataset - the dataset
 * @param options - the epoch plan, batch options, epoch and start batch
 * @returns an async iterator of batches with their epoch and batch index
 * @throws `ConfigError` for a bad plan or start batch; errors of {@link loadBatch} when a batch is reached
 * @example
 * ```ts
 * for await (const batch of iterateBatches(train, { batchSize: 32, shuffle: true, dropLast: true, seed: 0, epoch })) {
 *   await step.run({ x: batch.images, labels: batch.labels });
 * }
 * ```
 * @public
 */
export async function* iterateBatches(dataset: Dataset, options: IterateOptions): AsyncGenerator<EpochBatch, void, undefined> {
  const batches = epochBatches(dataset.length, options, options.epoch);
  const start = options.startBatch ?? 0;
  if (!Number.isSafeInteger(start) || start < 0 || start > batches.length) {
    throw new ConfigError(`startBatch must be an integer in 0..${batches.length} (the epoch's batch count); found ${start}`);
  }
  const batchOptions: BatchOptions = { ...options, seed: options.seed ?? 0, epoch: options.epoch };
  const load = (batchIndex: number): Promise<EpochBatch> =>
    loadBatch(dataset, batches[batchIndex]!, batchOptions).then((batch) => ({ ...batch, epoch: options.epoch, batchIndex }));
  let next = start < batches.length ? load(start) : undefined;
  for (let batchIndex = start; batchIndex < batches.length; batchIndex++) {
    const current = next!;
    next = batchIndex + 1 < batches.length ? load(batchIndex + 1) : undefined;
    // A prefetched batch whose consumer stopped early must not become an unhandled rejection.
    next?.catch(() => undefined);
    yield await current;
  }
}
