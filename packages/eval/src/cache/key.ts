import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { ConfigError, fmix32, type HostTensor } from '@diffssl/core';
import type { NoiseSplit } from '@diffssl/unet';

/**
 * Everything that decides the values of cached features. Two extractions with
 * equal keys produce the same features, so a cache written for one is reused
 * by the other; any difference gives another cache entry.
 *
 * @public
 */
export interface FeatureCacheKey {
  /** Content digest of the checkpoint file (`sha256:<hex>`, see {@link checkpointDigest}). */
  checkpoint: string;
  /** The guided-diffusion flags (a JSON object) or a preset name. */
  config: unknown;
  /** Block numbers (order and repeats do not matter). */
  blocks: readonly number[];
  /** Timesteps (order and repeats do not matter). */
  timesteps: readonly number[];
  /** The noise seed of draw 0 (see {@link drawSeed} for the others). */
  noiseSeed: number;
  /**
   * The split whose noise stream the features were extracted with (`seededNoise`
   * of `@diffssl/unet`): training and test images draw independent noise.
   */
  noiseSplit: NoiseSplit;
  /** Noise draws per image (at least 1). */
  draws: number;
  /** Identity of the images, in order (see {@link dataIdentity}). */
  data: string;
  /** Anything else that changes the features: precision, preprocessing, ... (JSON values). */
  extra?: Record<string, unknown>;
}

/** A key in canonical form: sorted unique blocks and timesteps, `extra` always present. @public */
export interface CanonicalFeatureCacheKey {
  /** Content digest of the checkpoint file (`sha256:<hex>`). */
  checkpoint: string;
  /** The guided-diffusion flags (a JSON object) or a preset name. */
  config: unknown;
  /** Block numbers, sorted, repeats removed. */
  blocks: number[];
  /** Timesteps, sorted, repeats removed. */
  timesteps: number[];
  /** The noise seed of draw 0. */
  noiseSeed: number;
  /** The split whose noise stream the features were extracted with. */
  noiseSplit: NoiseSplit;
  /** Noise draws per image (at least 1). */
  draws: number;
  /** Identity of the images, in order. */
  data: string;
  /** Anything else that changes the features (`{}` when none was given). */
  extra: Record<string, unknown>;
}

function sortedUnique(values: readonly number[], what: string, minimum: number): number[] {
  for (const value of values) {
    if (!Number.isSafeInteger(value) || value < minimum) throw new ConfigError(`feature cache key: ${what} must be integers >= ${minimum}; found ${value}`);
  }
  if (values.length === 0) throw new ConfigError(`feature cache key: expected at least one of ${what}; found none`);
  return [...new Set(values)].sort((a, b) => a - b);
}

/**
 * Checks a key and brings it to canonical form.
 *
 * @param key - the key
 * @returns the canonical key (a new object)
 * @throws {@link @diffssl/core!ConfigError} for empty or non-integer blocks/timesteps, a bad seed, noise split or draw count, empty identities
 * @public
 */
export function canonicalKey(key: FeatureCacheKey): CanonicalFeatureCacheKey {
  if (typeof key.checkpoint !== 'string' || key.checkpoint.length === 0)
    throw new ConfigError('feature cache key: checkpoint must be a non-empty digest string');
  if (typeof key.data !== 'string' || key.data.length === 0) throw new ConfigError('feature cache key: data must be a non-empty identity string');
  if (!Number.isSafeInteger(key.noiseSeed) || key.noiseSeed < 0 || key.noiseSeed > 0xffffffff)
    throw new ConfigError(`feature cache key: noiseSeed must be an integer in [0, 2^32); found ${key.noiseSeed}`);
  if (key.noiseSplit !== 'train' && key.noiseSplit !== 'test')
    throw new ConfigError(`feature cache key: noiseSplit must be 'train' or 'test'; found ${JSON.stringify(key.noiseSplit)}`);
  if (!Number.isSafeInteger(key.draws) || key.draws < 1) throw new ConfigError(`feature cache key: draws must be a positive integer; found ${key.draws}`);
  if (key.config === undefined) throw new ConfigError('feature cache key: config is missing');
  return {
    checkpoint: key.checkpoint,
    config: JSON.parse(canonicalJson(key.config)) as unknown,
    blocks: sortedUnique(key.blocks, 'blocks', 1),
    timesteps: sortedUnique(key.timesteps, 'timesteps', 0),
    noiseSeed: key.noiseSeed,
    noiseSplit: key.noiseSplit,
    draws: key.draws,
    data: key.data,
    extra: JSON.parse(canonicalJson(key.extra ?? {})) as Record<string, unknown>,
  };
}

/**
 * JSON with object keys sorted at every level (arrays keep their order), so
 * equal values always give equal text.
 *
 * @param value - a JSON value (no functions, no cycles)
 * @returns the canonical JSON text
 * @throws {@link @diffssl/core!ConfigError} for values JSON cannot represent (undefined, functions, bigints, non-finite numbers)
 * @public
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new ConfigError(`canonicalJson: expected a finite number; found ${value}`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  throw new ConfigError(`canonicalJson: cannot represent a ${typeof value} in JSON`);
}

/**
 * The SHA-256 of a key's canonical JSON: the identity of a cache entry.
 *
 * @param key - the key
 * @returns 64 hex digits
 * @public
 */
export function keyDigest(key: FeatureCacheKey): string {
  return createHash('sha256')
    .update(canonicalJson(canonicalKey(key)))
    .digest('hex');
}

/**
 * The content digest of a checkpoint file: SHA-256 of its bytes, read as a
 * stream. Content rather than path and modification time, because the shards
 * of one extraction run on different machines that see the file under
 * different paths and times; hashing costs about a second per GB.
 *
 * @param path - the checkpoint file
 * @param onProgress - receives the bytes hashed so far (for a progress display)
 * @returns `sha256:<64 hex digits>`
 * @throws the file system's error when the file cannot be read
 * @public
 */
export async function checkpointDigest(path: string, onProgress?: (bytesHashed: number) => void): Promise<string> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).byteLength;
    onProgress?.(bytes);
  }
  return `sha256:${hash.digest('hex')}`;
}

/** The parts of a data set's identity: pass what you have. @public */
export interface DataIdentityParts {
  /** The images, in order: their dtype, shape and bytes are hashed. */
  images?: HostTensor;
  /** The labels, in order. */
  labels?: ArrayLike<number>;
  /** Source files (relative names, sizes and modification times), for data read from disk without hashing every byte. */
  files?: ReadonlyArray<{
    /** The file's name, relative to the data set's folder. */
    path: string;
    /** Its size in bytes. */
    size: number;
    /** Its modification time (milliseconds since the epoch), when known. */
    modified?: number;
  }>;
  /** Anything else that selects or changes the images (a limit, a subset list, a transform), as JSON. */
  selection?: unknown;
}

/**
 * The identity of a data set for the cache key: SHA-256 over the given parts.
 * With `images`, the exact bytes count; with only `files`, the sorted list of
 * names, sizes and modification times does: cheap for large folders (what
 * make and rsync compare), and blind only to an edit that keeps both a file's
 * size and its modification time.
 *
 * @param parts - images, labels, files and/or a selection
 * @returns `sha256:<64 hex digits>`
 * @throws {@link @diffssl/core!ConfigError} when no part is given
 * @example
 * ```ts
 * const data = dataIdentity({ images: trainImages, labels: trainLabels, selection: { split: 'train', limit: 10000 } });
 * ```
 * @public
 */
export function dataIdentity(parts: DataIdentityParts): string {
  if (!parts.images && !parts.labels && !parts.files && parts.selection === undefined)
    throw new ConfigError('dataIdentity: expected images, labels, files or a selection; found none');
  const hash = createHash('sha256');
  if (parts.images) {
    const dense = parts.images.contiguous();
    hash.update(`images:${dense.dtype}:[${dense.shape.join(',')}];`);
    const data = dense.data;
    hash.update(new Uint8Array(data.buffer, data.byteOffset + dense.offset * data.BYTES_PER_ELEMENT, dense.size * data.BYTES_PER_ELEMENT));
  }
  if (parts.labels) {
    const labels = Int32Array.from(parts.labels as ArrayLike<number>);
    hash.update(`labels:${labels.length};`);
    hash.update(new Uint8Array(labels.buffer));
  }
  if (parts.files) {
    const lines = parts.files.map((file) => `${file.path}\t${file.size}${file.modified === undefined ? '' : `\t${file.modified}`}`).sort();
    hash.update(`files:${lines.length};${lines.join('\n')};`);
  }
  if (parts.selection !== undefined) hash.update(`selection:${canonicalJson(parts.selection)};`);
  return `sha256:${hash.digest('hex')}`;
}

/**
 * The noise seed of draw `draw` of an extraction with seed `noiseSeed`: draw 0
 * uses `noiseSeed` itself (so a one-draw cache equals a plain extraction with
 * that seed); later draws use a 32-bit mix of both.
 *
 * @param noiseSeed - the key's noise seed, in [0, 2^32)
 * @param draw - the draw, from 0
 * @returns a seed in [0, 2^32) for the extractor
 * @throws {@link @diffssl/core!ConfigError} for a negative or non-integer draw
 * @public
 */
export function drawSeed(noiseSeed: number, draw: number): number {
  if (!Number.isSafeInteger(draw) || draw < 0) throw new ConfigError(`drawSeed: draw must be a non-negative integer; found ${draw}`);
  if (draw === 0) return noiseSeed;
  return fmix32(noiseSeed ^ Math.imul(draw, 0x9e3779b9));
}
