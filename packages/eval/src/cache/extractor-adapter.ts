import { ConfigError, type HostTensor } from '@diffssl/core';
import { drawSeed } from './key.js';
import type { CacheFeatureBatch } from './writer.js';

/** What `FeatureExtractor.stream` of `@diffssl/unet` yields per batch. @public */
export interface ExtractorFeatureBatch {
  /** Data-set indices of the images (they also seed the noise). */
  imageIds: readonly number[];
  /** float32 [n, C, h, w] per `t{T}/block{NN}`. */
  features: ReadonlyMap<string, HostTensor>;
}

/**
 * Adapts feature streams to the cache writer's batches: runs one stream per
 * noise draw, in draw order, each with that draw's seed ({@link drawSeed}),
 * and tags its batches with the draw. The image ids must be data-set indices
 * (for a shard, its slice of them), so that noise and rows do not depend on
 * batching or sharding.
 *
 * @param settings - the key's `draws` and `noiseSeed`
 * @param streamForDraw - opens the stream of one draw, given its seed
 * @returns batches for {@link writeFeatureCache}
 * @throws {@link @diffssl/core!ConfigError} for a draw count below 1
 * @example
 * ```ts
 * const batches = featureBatchesForDraws(key, async function* (draw, seed) {
 *   const extractor = await createFeatureExtractor({ checkpoint, config, blocks, timesteps, seed });
 *   try { yield* extractor.stream(images, { ids }); } finally { await extractor.release(); }
 * });
 * await writeFeatureCache({ root, key, imageCount, batches });
 * ```
 * @public
 */
export async function* featureBatchesForDraws(
  settings: { draws: number; noiseSeed: number },
  streamForDraw: (draw: number, seed: number) => AsyncIterable<ExtractorFeatureBatch> | Iterable<ExtractorFeatureBatch>,
): AsyncGenerator<CacheFeatureBatch> {
  if (!Number.isSafeInteger(settings.draws) || settings.draws < 1)
    throw new ConfigError(`featureBatchesForDraws: draws must be a positive integer; found ${settings.draws}`);
  for (let draw = 0; draw < settings.draws; draw++) {
    for await (const batch of streamForDraw(draw, drawSeed(settings.noiseSeed, draw))) {
      yield { draw, imageIds: batch.imageIds, features: batch.features };
    }
  }
}
