import { ConfigError, FormatError } from '@diffssl/core';
import { canonicalJson, type CanonicalFeatureCacheKey } from './key.js';

/** The `format` field of every cache index. */
export const CACHE_FORMAT = 'diffssl-feature-cache';
/** The format version this code writes and reads. */
export const CACHE_VERSION = 1;
/** The name of the index file inside a cache directory. */
export const INDEX_FILE = 'index.json';
/** The name of the labels file inside a cache directory. */
export const LABELS_FILE = 'labels.i32';

/** One tensor of the cache: its name, the shape of one image's feature and its file. @public */
export interface CacheTensorEntry {
  /** `t{T}/block{NN}`. */
  name: string;
  /** The shape of one image's feature, e.g. [C, h, w]. */
  shape: number[];
  /** The file under each shard folder: `<name>.f32`. */
  file: string;
}

/** One shard folder of a cache: which images its tensor files hold. @public */
export interface CacheShardEntry {
  /** The folder, relative to the cache directory. */
  path: string;
  /** Image indices [start, end) held by this folder's files. */
  imageRange: [number, number];
}

/**
 * The content of `index.json` (see FORMAT.md beside this file).
 *
 * @public
 */
export interface FeatureCacheIndex {
  /** Always `'diffssl-feature-cache'`. */
  format: typeof CACHE_FORMAT;
  /** The format version (1). */
  version: number;
  /** The canonical key the features were extracted for. */
  key: CanonicalFeatureCacheKey;
  /** SHA-256 of the key's canonical JSON. */
  keyDigest: string;
  /** Images in the whole data set. */
  imageCount: number;
  /** Image indices [start, end) this directory holds: all of them, or one shard's slice. */
  imageRange: [number, number];
  /** For a shard written by `shard k/n`: k (from 0) and n; null for a complete cache. */
  shard: {
    /** k, the shard, from 0. */
    index: number;
    /** n, the number of shards. */
    count: number;
  } | null;
  /** Noise draws per image. */
  draws: number;
  /** The element type of every tensor file. */
  dtype: 'float32';
  /** The byte order of every tensor file and of `labels.i32`. */
  byteOrder: 'little';
  /** Row order inside each tensor file: image-major, then draw. */
  layout: 'image,draw,element';
  /** Every tensor, in the order timesteps then blocks. */
  tensors: CacheTensorEntry[];
  /** `labels.i32` (int32 little-endian, one per image of `imageRange`), or null. */
  labels: string | null;
  /** Class names in class-index order, or null. */
  classNames: string[] | null;
  /** The folders holding the tensor files, covering `imageRange` in order. */
  shards: CacheShardEntry[];
}

const TENSOR_NAME = /^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/;

/**
 * Checks that a tensor name is safe as a relative file path.
 *
 * @throws {@link @diffssl/core!ConfigError} for names with other characters, empty parts or `..`
 */
export function checkTensorName(name: string): void {
  if (!TENSOR_NAME.test(name)) throw new ConfigError(`feature cache: tensor name '${name}' must be parts of letters, digits, '_' or '-' separated by '/'`);
}

/** The file of a tensor inside a shard folder. */
export function tensorFile(name: string): string {
  return `${name}.f32`;
}

/**
 * The images of shard `index` of `count`: the contiguous slice
 * [floor(index*N/count), floor((index+1)*N/count)).
 *
 * @param index - the shard, from 0
 * @param count - the number of shards
 * @param imageCount - images in the data set
 * @returns [start, end)
 * @throws {@link @diffssl/core!ConfigError} when index is not in 0..count-1
 * @public
 */
export function shardRange(index: number, count: number, imageCount: number): [number, number] {
  if (!Number.isSafeInteger(count) || count < 1) throw new ConfigError(`shard: the shard count must be a positive integer; found ${count}`);
  if (!Number.isSafeInteger(index) || index < 0 || index >= count) throw new ConfigError(`shard: the shard index must be in 0..${count - 1}; found ${index}`);
  return [Math.floor((index * imageCount) / count), Math.floor(((index + 1) * imageCount) / count)];
}

/**
 * Parses `k/n` (k from 0, as Kubernetes' JOB_COMPLETION_INDEX and a Slurm
 * `--array=0-(n-1)` give it).
 *
 * @param text - e.g. `2/4`
 * @returns the shard index and count
 * @throws {@link @diffssl/core!ConfigError} for anything but `k/n` with 0 <= k < n
 * @public
 */
export function parseShard(text: string): {
  /** k, the shard, from 0. */
  index: number;
  /** n, the number of shards. */
  count: number;
} {
  const match = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!match) throw new ConfigError(`--shard: expected k/n with k from 0 to n-1 (e.g. 0/4); found '${text}'`);
  const index = Number(match[1]);
  const count = Number(match[2]);
  if (count < 1 || index >= count) throw new ConfigError(`--shard: expected k/n with k from 0 to n-1 (e.g. 0/4); found '${text}'`);
  return { index, count };
}

/** The index as written to disk: fixed field order, two-space indentation, final newline. */
export function serializeIndex(index: FeatureCacheIndex): string {
  const ordered: FeatureCacheIndex = {
    format: index.format,
    version: index.version,
    key: JSON.parse(canonicalJson(index.key)) as CanonicalFeatureCacheKey,
    keyDigest: index.keyDigest,
    imageCount: index.imageCount,
    imageRange: index.imageRange,
    shard: index.shard,
    draws: index.draws,
    dtype: index.dtype,
    byteOrder: index.byteOrder,
    layout: index.layout,
    tensors: index.tensors.map((t) => ({ name: t.name, shape: t.shape, file: t.file })),
    labels: index.labels,
    classNames: index.classNames,
    shards: index.shards.map((s) => ({ path: s.path, imageRange: s.imageRange })),
  };
  return `${JSON.stringify(ordered, null, 2)}\n`;
}

function isRange(value: unknown): value is [number, number] {
  return (
    Array.isArray(value) &&
    value.length === 2 &&
    value.every((v) => Number.isSafeInteger(v) && (v as number) >= 0) &&
    (value[0] as number) <= (value[1] as number)
  );
}

/**
 * Parses and checks an index file's text.
 *
 * @param text - the content of `index.json`
 * @param where - the file, for messages
 * @returns the index
 * @throws {@link @diffssl/core!FormatError} for anything that does not follow FORMAT.md
 */
export function parseIndex(text: string, where: string): FeatureCacheIndex {
  let raw: Partial<FeatureCacheIndex>;
  try {
    raw = JSON.parse(text) as Partial<FeatureCacheIndex>;
  } catch (cause) {
    throw new FormatError(`feature cache: ${where} is not JSON: ${(cause as Error).message}`);
  }
  const fail = (what: string): never => {
    throw new FormatError(`feature cache: ${where}: ${what}`);
  };
  if (raw === null || typeof raw !== 'object') fail('expected a JSON object');
  if (raw.format !== CACHE_FORMAT) fail(`expected format '${CACHE_FORMAT}'; found ${JSON.stringify(raw.format)}`);
  if (raw.version !== CACHE_VERSION) fail(`expected version ${CACHE_VERSION}; found ${JSON.stringify(raw.version)}`);
  if (raw.dtype !== 'float32' || raw.byteOrder !== 'little' || raw.layout !== 'image,draw,element')
    fail(`expected float32, little, 'image,draw,element'; found ${raw.dtype}, ${raw.byteOrder}, '${raw.layout}'`);
  if (!raw.key || typeof raw.keyDigest !== 'string') fail('key or keyDigest missing');
  if (!Number.isSafeInteger(raw.imageCount) || raw.imageCount! < 0) fail(`imageCount must be a non-negative integer; found ${raw.imageCount}`);
  if (!isRange(raw.imageRange) || raw.imageRange[1] > raw.imageCount!)
    fail(`imageRange must be [start, end] within 0..${raw.imageCount}; found ${JSON.stringify(raw.imageRange)}`);
  if (!Number.isSafeInteger(raw.draws) || raw.draws! < 1) fail(`draws must be a positive integer; found ${raw.draws}`);
  if (!Array.isArray(raw.tensors) || raw.tensors.length === 0) fail('expected a non-empty tensors list');
  for (const tensor of raw.tensors!) {
    if (typeof tensor?.name !== 'string' || !TENSOR_NAME.test(tensor.name) || tensor.file !== tensorFile(tensor.name))
      fail(`bad tensor entry ${JSON.stringify(tensor)}`);
    if (!Array.isArray(tensor.shape) || !tensor.shape.every((d) => Number.isSafeInteger(d) && d > 0))
      fail(`tensor ${tensor.name}: shape must be positive integers; found ${JSON.stringify(tensor.shape)}`);
  }
  if (!Array.isArray(raw.shards) || raw.shards.length === 0) fail('expected a non-empty shards list');
  let next = raw.imageRange![0];
  for (const shard of raw.shards!) {
    if (typeof shard?.path !== 'string' || !TENSOR_NAME.test(shard.path) || !isRange(shard.imageRange) || shard.imageRange[0] !== next)
      fail(`shards must cover imageRange in order; found ${JSON.stringify(shard)}`);
    next = shard.imageRange[1];
  }
  if (next !== raw.imageRange![1]) fail(`shards end at image ${next}; imageRange ends at ${raw.imageRange![1]}`);
  if (raw.shard !== null && !(raw.shard && Number.isSafeInteger(raw.shard.index) && Number.isSafeInteger(raw.shard.count)))
    fail(`shard must be null or {index, count}; found ${JSON.stringify(raw.shard)}`);
  if (raw.labels !== null && raw.labels !== LABELS_FILE) fail(`labels must be null or '${LABELS_FILE}'; found ${JSON.stringify(raw.labels)}`);
  if (raw.classNames !== null && !(Array.isArray(raw.classNames) && raw.classNames.every((n) => typeof n === 'string')))
    fail('classNames must be null or a list of strings');
  return raw as FeatureCacheIndex;
}
