import { ConfigError, HostTensor } from '@diffssl/core';
import { seededNoise, type NoiseSplit } from '@diffssl/unet';
import { drawSeed } from '../cache/key.js';
import type { FeatureCache } from '../cache/reader.js';
import { loadBatch, type BatchOptions } from '../data/batches.js';
import type { Dataset } from '../data/dataset.js';
import { noiseInput, X_START } from '../protocols/diffeed-model.js';
import type { ExampleSource } from '../training/classifier-graph.js';

/**
 * Cached features as training or test examples. With several noise draws,
 * training epoch e reads draw e mod draws; evaluation reads draw 0.
 *
 * @throws `ConfigError` when the cache lacks a feature the model reads, or holds another number of images than the labels
 * @public
 */
export function cacheSource(cache: FeatureCache, dataset: Pick<Dataset, 'length' | 'label'>, names: readonly string[]): ExampleSource {
  const missing = names.filter((name) => !cache.tensorNames.includes(name));
  if (missing.length > 0) throw new ConfigError(`feature cache ${cache.directory} lacks ${missing.join(', ')}; it holds ${cache.tensorNames.join(', ')}`);
  if (cache.imageCount !== dataset.length)
    throw new ConfigError(`feature cache ${cache.directory} holds ${cache.imageCount} images; the data has ${dataset.length}`);
  return {
    length: dataset.length,
    label: (index) => dataset.label(index),
    async read(indices, when) {
      const draw = when.training ? when.epoch % cache.draws : 0;
      return Object.fromEntries(await cache.readBatch(indices, draw, names));
    },
  };
}

/** Options of {@link imageNoiseSource}. @public */
export interface ImageNoiseSourceOptions {
  /** Which split the images are: each split draws its own noise stream. */
  split: NoiseSplit;
  /** The timesteps to noise each image at. */
  timesteps: readonly number[];
  /** Seed of the noise (draw 0; training epoch e uses `drawSeed(noiseSeed, e + 1)`). */
  noiseSeed: number;
  /** The run's seed (`--seed`): selects the random crops and flips of training reads, a fresh draw every epoch. */
  seed: number;
  /** How training reads prepare images (the random crop and flip). */
  train?: Omit<BatchOptions, 'channels' | 'epoch' | 'seed'>;
  /** How evaluation reads prepare images (the center crop). */
  test?: Omit<BatchOptions, 'channels' | 'epoch' | 'seed'>;
}

/**
 * Images with seeded noise, as DifFeed reads them: `x_start` and
 * `noise/t{T}` per timestep. Training draws fresh noise every epoch
 * (`drawSeed(noiseSeed, epoch + 1)`), as the reference's training loop does,
 * and fresh random crops and flips from `seed`; evaluation uses draw 0
 * (`noiseSeed`), the noise of the cached features of the other protocols.
 * Image i's noise is `seededNoise(seed of the draw, i, t, size, split)`: keyed
 * by its dataset index within its split's stream.
 *
 * @public
 */
export function imageNoiseSource(dataset: Dataset, options: ImageNoiseSourceOptions): ExampleSource {
  return {
    length: dataset.length,
    label: (index) => dataset.label(index),
    async read(indices, when) {
      const batch = await loadBatch(dataset, indices, {
        ...(when.training ? options.train : options.test),
        channels: 3,
        seed: options.seed,
        epoch: when.training ? when.epoch : 0,
      });
      const seed = when.training ? drawSeed(options.noiseSeed, when.epoch + 1) : options.noiseSeed;
      const shape = batch.images.shape;
      const size = shape[1]! * shape[2]! * shape[3]!;
      const feeds: Record<string, HostTensor> = { [X_START]: batch.images };
      for (const t of options.timesteps) {
        const noise = new Float32Array(indices.length * size);
        indices.forEach((index, row) => noise.set(seededNoise(seed, index, t, size, options.split), row * size));
        feeds[noiseInput(t)] = HostTensor.from('float32', shape, noise);
      }
      return feeds;
    },
  };
}
