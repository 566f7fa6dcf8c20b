// Deterministic synthetic features for the cache tests (and the shard worker
// they start as separate processes). Not part of the package.
import { HostTensor } from '@diffssl/core';
import type { FeatureCacheKey } from '../key.js';
import type { CacheFeatureBatch } from '../writer.js';

export const SYNTHETIC_IMAGES = 37;
export const SYNTHETIC_CLASSES = ['ankle boot', 'bag', 'coat'];
export const SYNTHETIC_KEY: FeatureCacheKey = {
  checkpoint: 'sha256:0000000000000000000000000000000000000000000000000000000000000001',
  config: { image_size: 28, num_channels: 32 },
  blocks: [5, 2],
  timesteps: [50, 10],
  noiseSeed: 7,
  noiseSplit: 'train',
  draws: 2,
  data: 'sha256:synthetic-37',
};
/** Per-image shape of each tensor: block 2 is [3, 4, 4], block 5 is [2, 2, 2]. */
export function syntheticShape(name: string): number[] {
  return name.endsWith('block02') ? [3, 4, 4] : [2, 2, 2];
}

export function syntheticLabels(): number[] {
  return Array.from({ length: SYNTHETIC_IMAGES }, (_, i) => (i * 5) % SYNTHETIC_CLASSES.length);
}

/** The value of element `element` of tensor `name` for an image and draw (exact in float32). */
export function syntheticValue(name: string, image: number, draw: number, element: number): number {
  const salt = name.length * 31 + name.charCodeAt(name.length - 1) * 7 + Number(name.slice(1, name.indexOf('/')));
  return (((image * 131 + draw * 977 + element * 7 + salt * 1009) % 8191) - 4095) / 64;
}

/** Batches for the images [start, end), in a scrambled order, draws interleaved. */
export function syntheticBatches(names: readonly string[], start: number, end: number, draws: number, batchSize: number): CacheFeatureBatch[] {
  const ids = Array.from({ length: end - start }, (_, i) => start + i);
  // Deterministic scramble: stride through the ids by a step coprime to most lengths.
  const order = ids.map((_, i) => ids[(i * 7 + 3) % ids.length]!);
  const unique = [...new Set(order)].length === ids.length ? order : ids;
  const batches: CacheFeatureBatch[] = [];
  for (let offset = 0; offset < unique.length; offset += batchSize) {
    for (let draw = draws - 1; draw >= 0; draw--) {
      const imageIds = unique.slice(offset, offset + batchSize);
      const features = new Map<string, HostTensor>();
      for (const name of names) {
        const shape = syntheticShape(name);
        const elements = shape.reduce((a, b) => a * b, 1);
        const data = new Float32Array(imageIds.length * elements);
        imageIds.forEach((image, row) => {
          for (let e = 0; e < elements; e++) data[row * elements + e] = syntheticValue(name, image, draw, e);
        });
        features.set(name, HostTensor.from('float32', [imageIds.length, ...shape], data));
      }
      batches.push({ draw, imageIds, features });
    }
  }
  return batches;
}
