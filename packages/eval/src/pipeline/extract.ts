import type { PipelineRuntimeOptions } from './runtime-options.js';
import { readdir } from 'node:fs/promises';
import { basename } from 'node:path';
import { ConfigError } from '@diffssl/core';
import type { FeatureCacheKey } from '../cache/key.js';
import { mergeShards } from '../cache/merge.js';
import type { FeatureCache } from '../cache/reader.js';
import { featureCachePath } from '../cache/writer.js';
import { createProgress } from '../progress.js';
import { ensureFeatureCache, featureCacheKey } from './features.js';
import { cachedPreparation, openSplits, splitIdentity, type DataOptions } from './splits.js';
import { loadUNet, unetLoadDisplay, unetSetupLog } from './unet-source.js';

/** Options of {@link extractFeatures} (the `diffssl extract` command). @public */
export interface ExtractOptions extends DataOptions, PipelineRuntimeOptions {
  /** The U-Net's weights (a guided-diffusion `.pt` or a safetensors file). */
  checkpoint: string;
  /** guided-diffusion flags file or preset name. */
  config: string;
  /** U-Net blocks to extract (1-based). */
  blocks: readonly number[];
  /** Diffusion timesteps to extract. */
  timesteps: readonly number[];
  /** Pool each block to at most this side (`--pre-pool-size`; the head's). */
  pool: number;
  /** Noise draws per training image (default 1). */
  draws?: number;
  /** Noise seed (default 0). */
  seed?: number;
  /** Which splits (default both). */
  split?: 'train' | 'test' | 'both';
  /** The cache root. */
  cacheDirectory: string;
  /** Write only shard `index` (0-based) of `count`. */
  shard?: ShardSelection;
  /** Merge the shards written by earlier `shard` runs into the cache entry. */
  merge?: boolean;
  /** Images per session run. */
  batchSize?: number;
}

/** One shard of an extraction: shard `index` (0-based) of `count`. @public */
export interface ShardSelection {
  /** This shard, from 0 to `count - 1` (a Kubernetes completion index or a Slurm array task id). */
  index: number;
  /** How many shards the splits are cut into. */
  count: number;
}

/**
 * Extracts U-Net features into the feature cache: whole splits, one shard of
 * them (`shard`, for a Kubernetes Indexed Job or a Slurm job array), or the
 * merge of shards written before (`merge`). Cached features carry no
 * augmentation (evaluation preprocessing), as the reference's.
 *
 * @returns the cache entry (or shard) folder of each split
 * @throws `ConfigError` for a missing or foreign shard when merging
 * @public
 */
export async function extractFeatures(options: ExtractOptions): Promise<Record<string, string>> {
  if (options.shard && options.merge) throw new ConfigError('extract: --shard writes one shard and --merge joins them; give one of them');
  const splits = await openSplits(options);
  const unet = await loadUNet({ checkpoint: options.checkpoint, config: options.config, onProgress: unetLoadDisplay(options.progress ?? 'auto') });
  const batch = cachedPreparation(splits, unet, options.resize);
  const chosen = options.split === 'both' || !options.split ? (['train', 'test'] as const) : [options.split];
  const written: Record<string, string> = {};
  for (const split of chosen) {
    const dataset = splits[split];
    const draws = split === 'train' ? (options.draws ?? 1) : 1;
    const data = await splitIdentity(dataset, options, split);
    const common = {
      unet,
      data,
      split,
      blocks: options.blocks,
      timesteps: options.timesteps,
      pool: options.pool,
      draws,
      noiseSeed: options.seed ?? 0,
      batch,
      ...(options.precision ? { precision: options.precision } : {}),
    };
    let cache: FeatureCache;
    if (options.merge) {
      cache = await mergeShards(await shardFolders(options.cacheDirectory, featureCacheKey(common)), { root: options.cacheDirectory });
      options.log?.(`extract (${split}): merged the shards into ${cache.directory}`);
    } else {
      const total = options.shard ? Math.ceil((dataset.length * draws) / options.shard.count) : dataset.length * draws;
      const progress = createProgress({
        label: `extract ${split}${options.shard ? ` shard ${options.shard.index}/${options.shard.count}` : ''}`,
        total,
        unit: 'img',
        mode: options.progress ?? 'auto',
      });
      const result = await ensureFeatureCache({
        ...common,
        dataset,
        root: options.cacheDirectory,
        progress,
        batchSize: options.batchSize,
        runner: options.runner,
        onSetup: unetSetupLog(options.log),
        ...(options.shard ? { shard: options.shard } : {}),
      });
      cache = result.cache;
      options.log?.(`extract (${split}): ${result.extracted ? 'wrote' : 'found'} ${cache.directory}`);
    }
    written[split] = cache.directory;
    await cache.close();
  }
  return written;
}

/** The shard folders of a cache entry, checked complete (0..n-1 of one n). */
async function shardFolders(root: string, key: FeatureCacheKey): Promise<string[]> {
  const prefix = `${basename(featureCachePath(root, key))}.shard-`;
  let names: string[];
  try {
    names = (await readdir(root)).filter((name) => name.startsWith(prefix));
  } catch (cause) {
    throw new ConfigError(`extract --merge: cannot read the cache folder ${root}: ${(cause as Error).message}`);
  }
  const shards = names
    .map((name) => /^(\d+)-of-(\d+)$/.exec(name.slice(prefix.length)))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => ({ index: Number(match[1]), count: Number(match[2]) }));
  if (shards.length === 0)
    throw new ConfigError(`extract --merge: no shards of this extraction in ${root}; run 'diffssl extract --shard k/n' with the same options first`);
  const count = shards[0]!.count;
  const found = new Set(shards.filter((shard) => shard.count === count).map((shard) => shard.index));
  const missing = Array.from({ length: count }, (_, i) => i).filter((index) => !found.has(index));
  if (missing.length > 0 || shards.some((shard) => shard.count !== count))
    throw new ConfigError(`extract --merge: shards ${missing.join(', ') || '(of another count)'} of ${count} are missing or mixed in ${root}`);
  return Array.from({ length: count }, (_, index) => featureCachePath(root, key, { index, count }));
}
