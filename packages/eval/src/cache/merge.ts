import { link, mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ConfigError } from '@diffssl/core';
import { canonicalJson } from './key.js';
import { INDEX_FILE, LABELS_FILE, serializeIndex, type CacheShardEntry, type FeatureCacheIndex } from './format.js';
import { publishEntry } from './publish.js';
import { openFeatureCache, type FeatureCache } from './reader.js';
import { featureCachePath, SINGLE_SHARD_FOLDER } from './writer.js';

/** Options of {@link mergeShards}. @public */
export interface MergeShardsOptions {
  /** The cache root to publish the merged entry in (default: the folder of the first shard). */
  root?: string;
  /**
   * `copy` (default): concatenate each tensor's shard files into one file, so
   * the entry is byte-identical to one written by a single process.
   * `link`: hard-link the shard files instead (no data copied; same file
   * system only); the entry then lists one folder per shard.
   */
  mode?: 'copy' | 'link';
  /** Delete the shard folders after the merged entry is published (default false). */
  removeShards?: boolean;
}

const COPY_CHUNK = 8 << 20;

async function appendFile(target: import('node:fs/promises').FileHandle, source: string, position: number): Promise<number> {
  const input = await open(source, 'r');
  const buffer = new Uint8Array(COPY_CHUNK);
  try {
    for (;;) {
      const { bytesRead } = await input.read(buffer, 0, COPY_CHUNK, null);
      if (bytesRead === 0) return position;
      await target.write(buffer, 0, bytesRead, position);
      position += bytesRead;
    }
  } finally {
    await input.close();
  }
}

/**
 * Joins the shards of one extraction (written with `shard: { index, count }`)
 * into one cache entry. Every shard is checked completely first; they must
 * share one key, image count, draw count, tensor list, labels presence and
 * class names, and together cover every image exactly once. The entry is
 * built in a temporary folder and renamed into place.
 *
 * @param shardDirectories - the shard folders, in any order
 * @param options - root, copy or link, and whether to remove the shards
 * @returns the merged cache, opened
 * @throws {@link @diffssl/core!ConfigError} for shards of different extractions, overlapping or missing images; {@link @diffssl/core!FormatError} for an incomplete shard
 * @example
 * ```ts
 * const cache = await mergeShards(['/scratch/features-ab12.shard-0-of-2', '/scratch/features-ab12.shard-1-of-2']);
 * ```
 * @public
 */
export async function mergeShards(shardDirectories: readonly string[], options: MergeShardsOptions = {}): Promise<FeatureCache> {
  if (shardDirectories.length === 0) throw new ConfigError('mergeShards: expected at least one shard folder; found none');
  const mode = options.mode ?? 'copy';
  if (mode !== 'copy' && mode !== 'link') throw new ConfigError(`mergeShards: mode must be 'copy' or 'link'; found '${String(mode)}'`);
  const shards: FeatureCache[] = [];
  try {
    for (const directory of shardDirectories) shards.push(await openFeatureCache(directory));
    const first = shards[0]!.index;
    const same = (field: string, value: (index: FeatureCacheIndex) => unknown) => {
      for (let i = 1; i < shards.length; i++) {
        if (canonicalJson(value(shards[i]!.index)) !== canonicalJson(value(first))) {
          throw new ConfigError(`mergeShards: ${shardDirectories[i]} and ${shardDirectories[0]} differ in ${field}; they are not shards of one extraction`);
        }
      }
    };
    same('key', (index) => index.keyDigest);
    same('image count', (index) => index.imageCount);
    same('tensors', (index) => index.tensors);
    same('labels presence', (index) => index.labels);
    same('class names', (index) => index.classNames);
    const order = shards
      .map((cache, i) => ({ cache, directory: shardDirectories[i]! }))
      .sort((a, b) => a.cache.index.imageRange[0] - b.cache.index.imageRange[0]);
    let next = 0;
    for (const { cache, directory } of order) {
      const [start, end] = cache.index.imageRange;
      if (start > next) throw new ConfigError(`mergeShards: no shard holds images ${next}..${start - 1} of ${first.imageCount}`);
      if (start < next) throw new ConfigError(`mergeShards: ${directory} overlaps another shard (images ${start}..${Math.min(end, next) - 1})`);
      next = end;
    }
    if (next !== first.imageCount) throw new ConfigError(`mergeShards: no shard holds images ${next}..${first.imageCount - 1} of ${first.imageCount}`);

    const root = options.root ?? dirname(shardDirectories[0]!);
    const final = featureCachePath(root, first.key);
    await mkdir(root, { recursive: true });
    const temporary = await mkdtemp(join(root, `.tmp-${basename(final)}-`));
    try {
      const folders: CacheShardEntry[] = [];
      if (mode === 'copy') {
        folders.push({ path: SINGLE_SHARD_FOLDER, imageRange: [0, first.imageCount] });
        for (const tensor of first.tensors) {
          const path = join(temporary, SINGLE_SHARD_FOLDER, tensor.file);
          await mkdir(dirname(path), { recursive: true });
          const target = await open(path, 'w');
          try {
            let position = 0;
            for (const { cache } of order) {
              for (const folder of cache.index.shards) position = await appendFile(target, join(cache.directory, folder.path, tensor.file), position);
            }
            await target.datasync();
          } finally {
            await target.close();
          }
        }
      } else {
        for (const { cache } of order) {
          for (const folder of cache.index.shards) {
            const path = `shard-${String(folders.length).padStart(5, '0')}`;
            folders.push({ path, imageRange: [...folder.imageRange] });
            for (const tensor of first.tensors) {
              const target = join(temporary, path, tensor.file);
              await mkdir(dirname(target), { recursive: true });
              await link(join(cache.directory, folder.path, tensor.file), target);
            }
          }
        }
      }
      if (first.labels) {
        const labels = new Int32Array(first.imageCount);
        for (const { cache } of order) labels.set(cache.labels!, cache.index.imageRange[0]);
        await writeFile(join(temporary, LABELS_FILE), new Uint8Array(labels.buffer));
      }
      const index: FeatureCacheIndex = { ...first, imageRange: [0, first.imageCount], shard: null, shards: folders };
      await writeFile(join(temporary, INDEX_FILE), serializeIndex(index));
      const merged = await publishEntry(temporary, final, first.key);
      if (options.removeShards) {
        for (const cache of shards) await cache.close();
        for (const directory of shardDirectories) await rm(directory, { recursive: true, force: true });
      }
      return merged;
    } catch (error) {
      await rm(temporary, { recursive: true, force: true });
      throw error;
    }
  } finally {
    await Promise.all(shards.map((cache) => cache.close()));
  }
}
