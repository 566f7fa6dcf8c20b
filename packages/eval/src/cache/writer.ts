import { mkdir, mkdtemp, open, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ConfigError, DTypeError, NonFiniteError, ShapeError, shapeSize, type HostTensor } from '@diffssl/core';
import { featureKey } from '@diffssl/unet';
import {
  CACHE_FORMAT,
  CACHE_VERSION,
  checkTensorName,
  INDEX_FILE,
  LABELS_FILE,
  serializeIndex,
  shardRange,
  tensorFile,
  type CacheTensorEntry,
  type FeatureCacheIndex,
} from './format.js';
import { canonicalKey, keyDigest, type FeatureCacheKey } from './key.js';
import { publishEntry } from './publish.js';
import { openFeatureCache, type FeatureCache } from './reader.js';

const BYTES = Float32Array.BYTES_PER_ELEMENT;
/** The shard folder of a cache written in one piece. */
export const SINGLE_SHARD_FOLDER = 'data';

/**
 * One batch of features to store: the features of some images for one noise
 * draw. `FeatureExtractor.stream` of `@diffssl/unet` yields exactly this shape
 * (without `draw`); see {@link featureBatchesForDraws}.
 *
 * @public
 */
export interface CacheFeatureBatch {
  /** The noise draw, from 0 (default 0). */
  draw?: number;
  /** Data-set indices of the images, one per row of each feature tensor. */
  imageIds: readonly number[];
  /** float32 [imageIds.length, ...shape] per `t{T}/block{NN}`. */
  features: ReadonlyMap<string, HostTensor>;
}

/** Options of {@link writeFeatureCache}. @public */
export interface WriteFeatureCacheOptions {
  /** The cache root: entries are folders in it named by {@link featureCachePath}. */
  root: string;
  /** What the features were extracted for. */
  key: FeatureCacheKey;
  /** Images in the whole data set (a shard holds a slice of them). */
  imageCount: number;
  /** Labels of all `imageCount` images, stored for the slice written. */
  labels?: ArrayLike<number>;
  /** Class names in class-index order. */
  classNames?: readonly string[];
  /** Write only shard `index` of `count` (a contiguous slice of the images, see {@link shardRange}). */
  shard?: {
    /** k, the shard, from 0. */
    index: number;
    /** n, the number of shards. */
    count: number;
  };
  /** The features, in any order; every (image, draw) of the slice exactly once. */
  batches: AsyncIterable<CacheFeatureBatch> | Iterable<CacheFeatureBatch>;
  /** Reject NaN and infinite features (default true). */
  checkFinite?: boolean;
  /** Called after each batch with (image, draw) rows written so far and the total. */
  onProgress?: (progress: { done: number; total: number }) => void;
}

/**
 * The tensor names a key asks for, in index order (timesteps, then blocks):
 * `t{T}/block{NN}` as `@diffssl/unet`'s `featureKey` spells them.
 *
 * @param key - the key
 * @returns the names
 * @public
 */
export function featureNames(key: FeatureCacheKey): string[] {
  const canonical = canonicalKey(key);
  return canonical.timesteps.flatMap((t) => canonical.blocks.map((b) => featureKey(t, b)));
}

/**
 * Where the cache entry of a key lives under a root: `features-<32 hex digits
 * of the key digest>`, with `.shard-<k>-of-<n>` appended for a shard.
 *
 * @param root - the cache root
 * @param key - the key
 * @param shard - the shard, for a shard's folder
 * @returns the entry's directory
 * @public
 */
export function featureCachePath(root: string, key: FeatureCacheKey, shard?: { index: number; count: number }): string {
  const name = `features-${keyDigest(key).slice(0, 32)}`;
  return join(root, shard ? `${name}.shard-${shard.index}-of-${shard.count}` : name);
}

/**
 * Finds the complete cache entry of a key under a root. An entry that is
 * missing, partial or written for another key is never returned.
 *
 * @param root - the cache root
 * @param key - the key
 * @returns the opened cache, or undefined
 * @public
 */
export async function findFeatureCache(root: string, key: FeatureCacheKey): Promise<FeatureCache | undefined> {
  try {
    return await openFeatureCache(featureCachePath(root, key), key);
  } catch {
    return undefined;
  }
}

interface OpenTensor extends CacheTensorEntry {
  elements: number;
  handle: FileHandle;
}

/**
 * Stores features on disk as a cache entry (format: FORMAT.md beside this
 * file). Everything is written into a temporary folder beside the entry and
 * renamed into place only once every (image, draw) row is written and
 * flushed, so a crash or an error never leaves a half entry under the final
 * name. When a valid entry for the same key appeared meanwhile, it is kept and
 * returned.
 *
 * @param options - root, key, image count, labels, shard and the batches
 * @returns the cache, opened
 * @throws {@link @diffssl/core!ConfigError} for rows outside the slice, written twice or never, or unexpected tensor names; {@link @diffssl/core!ShapeError} / {@link @diffssl/core!DTypeError} for bad tensors; {@link @diffssl/core!NonFiniteError} for NaN features
 * @example
 * ```ts
 * const cache = await writeFeatureCache({ root: '.cache', key, imageCount: 10000, labels, batches: featureBatchesForDraws(key, (draw, seed) => stream(seed)) });
 * ```
 * @public
 */
export async function writeFeatureCache(options: WriteFeatureCacheOptions): Promise<FeatureCache> {
  const key = canonicalKey(options.key);
  const { imageCount } = options;
  if (!Number.isSafeInteger(imageCount) || imageCount < 1)
    throw new ConfigError(`writeFeatureCache: imageCount must be a positive integer; found ${imageCount}`);
  const shard = options.shard ? { index: options.shard.index, count: options.shard.count } : null;
  const [start, end] = shard ? shardRange(shard.index, shard.count, imageCount) : [0, imageCount];
  if (end === start)
    throw new ConfigError(`writeFeatureCache: shard ${shard!.index}/${shard!.count} of ${imageCount} images holds no image; use at most ${imageCount} shards`);
  const labels = options.labels ? checkLabels(options.labels, imageCount, options.classNames) : undefined;
  const names = featureNames(key);
  for (const name of names) checkTensorName(name);
  const expectedNames = [...names].sort().join(',');
  const draws = key.draws;
  const rows = (end - start) * draws;
  const written = new Uint8Array(rows);
  let done = 0;

  const final = featureCachePath(options.root, key, shard ?? undefined);
  await mkdir(options.root, { recursive: true });
  const temporary = await mkdtemp(join(options.root, `.tmp-${basename(final)}-`));
  const tensors = new Map<string, OpenTensor>();
  try {
    await mkdir(join(temporary, SINGLE_SHARD_FOLDER));
    for await (const batch of options.batches) {
      const draw = batch.draw ?? 0;
      if (!Number.isSafeInteger(draw) || draw < 0 || draw >= draws) throw new ConfigError(`writeFeatureCache: draw ${draw} is outside 0..${draws - 1}`);
      const count = batch.imageIds.length;
      const featureNamesFound = [...batch.features.keys()].sort();
      if (featureNamesFound.join(',') !== expectedNames) {
        throw new ConfigError(`writeFeatureCache: expected features ${names.join(', ')}; found ${featureNamesFound.join(', ') || 'none'}`);
      }
      for (const id of batch.imageIds) {
        if (!Number.isSafeInteger(id) || id < start || id >= end)
          throw new ConfigError(`writeFeatureCache: image id ${id} is outside this ${shard ? 'shard' : 'cache'}'s images ${start}..${end - 1}`);
        const row = (id - start) * draws + draw;
        if (written[row]) throw new ConfigError(`writeFeatureCache: image ${id}, draw ${draw} came twice`);
        written[row] = 1;
      }
      if (tensors.size === 0) {
        for (const name of names) {
          const shape = batch.features.get(name)!.shape.slice(1);
          if (shape.length === 0 || shape.some((d) => d < 1))
            throw new ShapeError(`writeFeatureCache: ${name}: expected [${count}, C, h, w]; found [${batch.features.get(name)!.shape.join(', ')}]`);
          const path = join(temporary, SINGLE_SHARD_FOLDER, tensorFile(name));
          await mkdir(dirname(path), { recursive: true });
          const handle = await open(path, 'w+');
          tensors.set(name, { name, shape: [...shape], file: tensorFile(name), elements: shapeSize(shape), handle });
          await handle.truncate(rows * shapeSize(shape) * BYTES);
        }
      }
      const writes: Promise<unknown>[] = [];
      for (const tensor of tensors.values()) {
        const features = batch.features.get(tensor.name)!;
        if (features.dtype !== 'float32') throw new DTypeError(`writeFeatureCache: ${tensor.name}: expected float32 features; found ${features.dtype}`);
        if (features.shape.length !== tensor.shape.length + 1 || features.shape[0] !== count || features.shape.slice(1).some((d, i) => d !== tensor.shape[i])) {
          throw new ShapeError(`writeFeatureCache: ${tensor.name}: expected [${count}, ${tensor.shape.join(', ')}]; found [${features.shape.join(', ')}]`);
        }
        const dense = features.contiguous();
        const data = (dense.data as Float32Array).subarray(dense.offset, dense.offset + dense.size);
        if (options.checkFinite ?? true) {
          const bad = data.findIndex((v) => !Number.isFinite(v));
          if (bad >= 0)
            throw new NonFiniteError(`writeFeatureCache: ${tensor.name} of image ${batch.imageIds[Math.floor(bad / tensor.elements)]} holds ${data[bad]}`);
        }
        const rowBytes = tensor.elements * BYTES;
        for (let i = 0; i < count; ) {
          let run = 1;
          while (draws === 1 && i + run < count && batch.imageIds[i + run] === batch.imageIds[i]! + run) run++;
          const position = ((batch.imageIds[i]! - start) * draws + draw) * rowBytes;
          writes.push(tensor.handle.write(new Uint8Array(data.buffer, data.byteOffset + i * rowBytes, run * rowBytes), 0, run * rowBytes, position));
          i += run;
        }
      }
      await Promise.all(writes);
      done += count;
      options.onProgress?.({ done, total: rows });
    }
    const missing = written.indexOf(0);
    if (missing >= 0) {
      throw new ConfigError(
        `writeFeatureCache: the batches covered ${done} of ${rows} (image, draw) rows; image ${start + Math.floor(missing / draws)}, draw ${missing % draws} is missing`,
      );
    }
    const entries: CacheTensorEntry[] = names.map((name) => ({ name, shape: tensors.get(name)!.shape, file: tensorFile(name) }));
    for (const tensor of tensors.values()) {
      await tensor.handle.datasync();
      await tensor.handle.close();
    }
    tensors.clear();
    if (labels) await writeFile(join(temporary, LABELS_FILE), new Uint8Array(labels.slice(start, end).buffer));
    const index: FeatureCacheIndex = {
      format: CACHE_FORMAT,
      version: CACHE_VERSION,
      key,
      keyDigest: keyDigest(key),
      imageCount,
      imageRange: [start, end],
      shard,
      draws,
      dtype: 'float32',
      byteOrder: 'little',
      layout: 'image,draw,element',
      tensors: entries,
      labels: labels ? LABELS_FILE : null,
      classNames: options.classNames ? [...options.classNames] : null,
      shards: [{ path: SINGLE_SHARD_FOLDER, imageRange: [start, end] }],
    };
    await writeFile(join(temporary, INDEX_FILE), serializeIndex(index));
    return await publishEntry(temporary, final, options.key);
  } catch (error) {
    await Promise.all([...tensors.values()].map((t) => t.handle.close().catch(() => undefined)));
    await rm(temporary, { recursive: true, force: true });
    throw error;
  }
}

/** Checks labels and returns them as int32. */
export function checkLabels(labels: ArrayLike<number>, imageCount: number, classNames?: readonly string[]): Int32Array {
  if (labels.length !== imageCount) throw new ConfigError(`feature cache: expected ${imageCount} labels (one per image); found ${labels.length}`);
  const out = new Int32Array(imageCount);
  for (let i = 0; i < imageCount; i++) {
    const label = labels[i]!;
    if (!Number.isSafeInteger(label) || label < 0 || (classNames && label >= classNames.length) || label > 0x7fffffff) {
      throw new ConfigError(`feature cache: label ${label} of image ${i} is outside the classes 0..${classNames ? classNames.length - 1 : '2^31'}`);
    }
    out[i] = label;
  }
  return out;
}
