/**
 * What the extractor feeds the U-Net, read back through a U-Net whose block is
 * its input x_t (see test/identity-unet.ts): the noise of each image (default
 * ids from the pixels, explicit ids), class labels, and the placement of
 * batches in the preallocated outputs of `extract`.
 */
import { ConfigError, HostTensor, ShapeError } from '@diffssl/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identityUNet } from '../test/identity-unet.js';
import { createFeatureExtractor, featureKey, noiseSchedule, pixelNoiseId, seededNoise, type FeatureExtractor } from './index.js';

const cpu = { executionProviders: ['cpu'] as const };
const PER_IMAGE = 3 * 4 * 4;
const T = 500;
const schedule = noiseSchedule('linear', 1000);

/** Distinct images: image k has pixels sin(k * 100 + i) * 0.9. */
function images(...indices: number[]): HostTensor<'float32'> {
  return HostTensor.from(
    'float32',
    [indices.length, 3, 4, 4],
    indices.flatMap((k) => Array.from({ length: PER_IMAGE }, (_, i) => Math.sin(k * 100 + i) * 0.9)),
  );
}

/** The noise the extractor used for image b: (x_t - sqrt(abar) x_start) / sqrt(1 - abar), in float64. */
function recoveredNoise(xt: HostTensor, xStart: HostTensor<'float32'>, b: number, t = T): number[] {
  const a = Math.sqrt(schedule.alphasCumprod[t]!);
  const c = Math.sqrt(1 - schedule.alphasCumprod[t]!);
  return Array.from({ length: PER_IMAGE }, (_, i) => ((xt.data[b * PER_IMAGE + i] as number) - a * xStart.data[b * PER_IMAGE + i]!) / c);
}

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tolerance: number) => Array.from(a).every((v, i) => Math.abs(v - b[i]!) <= tolerance);

describe('noise ids', () => {
  let extractor: FeatureExtractor;
  beforeAll(async () => {
    extractor = await createFeatureExtractor({ unet: identityUNet(), blocks: [1], timesteps: [T], batchSize: 2, seed: 3, runner: cpu });
  });
  afterAll(() => extractor?.release());

  it('gives the first images of two calls without ids different noise (ids no longer restart at 0 per call)', async () => {
    const first = images(1);
    const second = images(2);
    const a = recoveredNoise((await extractor.extract(first)).get(featureKey(T, 1))!, first, 0);
    const b = recoveredNoise((await extractor.extract(second)).get(featureKey(T, 1))!, second, 0);
    expect(close(a, b, 0.1)).toBe(false);
    // Both are the seed's standard normal noise, keyed by a hash of the pixels.
    expect(close(a, seededNoise(3, pixelNoiseId(first.data), T, PER_IMAGE), 1e-4)).toBe(true);
    expect(close(b, seededNoise(3, pixelNoiseId(second.data), T, PER_IMAGE), 1e-4)).toBe(true);
    expect(pixelNoiseId(first.data)).not.toBe(pixelNoiseId(second.data));
  });

  it('gives an image the same features whatever its call, batch or position, without ids', async () => {
    const together = images(1, 2, 3, 4, 5);
    const shuffled = images(4, 9, 2);
    const a = (await extractor.extract(together)).get(featureKey(T, 1))!;
    const b = (await extractor.extract(shuffled)).get(featureKey(T, 1))!;
    expect(b.slice([2], [3]).toArray()).toEqual(a.slice([1], [2]).toArray()); // image 2: position 1 of batch 0 vs position 0 of batch 1
    expect(b.slice([0], [1]).toArray()).toEqual(a.slice([3], [4]).toArray()); // image 4: batch 1 vs batch 0
    const alone = (await extractor.extract(images(2))).get(featureKey(T, 1))!;
    expect(alone.toArray()).toEqual(a.slice([1], [2]).toArray());
  });

  it('keys the noise by explicit ids as before: seededNoise(seed, id, t)', async () => {
    const x = images(1, 2, 3);
    const xt = (await extractor.extract(x, { ids: [0, 1, 41] })).get(featureKey(T, 1))!;
    [0, 1, 41].forEach((id, b) => expect(close(recoveredNoise(xt, x, b), seededNoise(3, id, T, PER_IMAGE), 1e-4), `id ${id}`).toBe(true));
    // The same image with the same id in another call and position: the same x_t.
    const again = (await extractor.extract(images(3), { ids: [41] })).get(featureKey(T, 1))!;
    expect(again.toArray()).toEqual(xt.slice([2], [3]).toArray());
  });

  it('draws the noise of the named split: training image i and test image i get different noise, each the same in any batch', async () => {
    const x = images(1, 2, 3);
    const ids = [0, 1, 41];
    const train = (await extractor.extract(x, { ids, split: 'train' })).get(featureKey(T, 1))!;
    const test = (await extractor.extract(x, { ids, split: 'test' })).get(featureKey(T, 1))!;
    ids.forEach((id, b) => {
      expect(close(recoveredNoise(train, x, b), seededNoise(3, id, T, PER_IMAGE, 'train'), 1e-4), `train id ${id}`).toBe(true);
      expect(close(recoveredNoise(test, x, b), seededNoise(3, id, T, PER_IMAGE, 'test'), 1e-4), `test id ${id}`).toBe(true);
      expect(close(recoveredNoise(train, x, b), recoveredNoise(test, x, b), 0.1), `id ${id}`).toBe(false);
    });
    // No split named: the test split's noise.
    expect((await extractor.extract(x, { ids })).get(featureKey(T, 1))!.toArray()).toEqual(test.toArray());
    // Image 41 of the training split alone in another call: the same x_t as in position 2 of the batches above.
    expect((await extractor.extract(images(3), { ids: [41], split: 'train' })).get(featureKey(T, 1))!.toArray()).toEqual(train.slice([2], [3]).toArray());
    await expect(extractor.extract(x, { ids, split: 'validation' as never })).rejects.toThrow(/split must be 'train' or 'test'/);
  });

  it('takes ids the same way in stream and extract, and reports the ids it used', async () => {
    const x = images(1, 2, 3);
    const streamed: number[][] = [];
    const parts: number[] = [];
    for await (const batch of extractor.stream(x, { ids: [5, 6, 7] })) {
      streamed.push(batch.imageIds);
      parts.push(...batch.features.get(featureKey(T, 1))!.toArray());
    }
    expect(streamed).toEqual([[5, 6], [7]]);
    expect(parts).toEqual((await extractor.extract(x, { ids: [5, 6, 7] })).get(featureKey(T, 1))!.toArray());
    const hashed: number[] = [];
    for await (const batch of extractor.stream(x)) hashed.push(...batch.imageIds);
    expect(hashed).toEqual([1, 2, 3].map((k) => pixelNoiseId(images(k).data)));
    await expect(extractor.extract(x, { ids: [1, 2] })).rejects.toThrow(ShapeError);
    await expect(extractor.extract(x, { ids: [1, 2, -1] })).rejects.toThrow(/ids must be integers in \[0, 2\^32\)/);
    await expect(extractor.extract(x, [1, 2, 3] as never)).rejects.toThrow(/pass ids as \{ ids/);
  });

  it('writes every batch of every timestep in place in the outputs of extract', async () => {
    const two = await createFeatureExtractor({ unet: identityUNet(), blocks: [1], timesteps: [0, T], batchSize: 2, runner: cpu });
    const x = images(1, 2, 3, 4, 5);
    const ids = [10, 11, 12, 13, 14];
    const features = await two.extract(x, { ids });
    await two.release();
    for (const t of [0, T]) {
      const tensor = features.get(featureKey(t, 1))!;
      expect(tensor.shape).toEqual([5, 3, 4, 4]);
      ids.forEach((id, b) =>
        expect(close(recoveredNoise(tensor, x, b, t), seededNoise(0, id, t, PER_IMAGE), t === 0 ? 2e-2 : 1e-4), `t=${t} image ${b}`).toBe(true),
      );
    }
  });
});

describe('class labels in the extractor', () => {
  const conditional = identityUNet({ numClasses: 10 });

  it('feeds one fixed classLabel to every image, or per-image labels (which take precedence), through every batch and timestep', async () => {
    const extractor = await createFeatureExtractor({ unet: conditional, blocks: [1], timesteps: [0, T], batchSize: 2, classLabel: 7, runner: cpu });
    const x = images(1, 2, 3);
    const ids = [0, 1, 2];
    const plain = await createFeatureExtractor({ unet: identityUNet(), blocks: [1], timesteps: [0, T], batchSize: 2, runner: cpu });
    const withoutLabels = await plain.extract(x, { ids });
    await plain.release();
    const label = (features: Map<string, HostTensor>, t: number, b: number) =>
      features
        .get(featureKey(t, 1))!
        .slice([b], [b + 1])
        .toArray()
        .map((v, i) => v - withoutLabels.get(featureKey(t, 1))!.data[b * PER_IMAGE + i]!);
    const fixed = await extractor.extract(x, { ids });
    const perImage = await extractor.extract(x, { ids, labels: [3, 0, 9] });
    for (const t of [0, T]) {
      for (let b = 0; b < 3; b++) {
        expect(
          label(fixed, t, b).every((v) => Math.abs(v - 7) < 1e-5),
          `fixed t=${t} image ${b}`,
        ).toBe(true);
        expect(
          label(perImage, t, b).every((v) => Math.abs(v - [3, 0, 9][b]!) < 1e-5),
          `per image t=${t} image ${b}`,
        ).toBe(true);
      }
    }
    await expect(extractor.extract(x, { labels: [1, 2] })).rejects.toThrow(ShapeError);
    await expect(extractor.extract(x, { labels: [1, 2, 10] })).rejects.toThrow(/labels must be integers in 0\.\.9; found 10/);
    await extractor.release();
  });

  it('names the option when a class-conditional model gets no labels, or an unconditional one gets them', async () => {
    const extractor = await createFeatureExtractor({ unet: conditional, blocks: [1], timesteps: [T], runner: cpu });
    expect(extractor.numClasses).toBe(10);
    const error = await extractor.extract(images(1)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/class-conditional \(10 classes\); pass labels .* or classLabel/);
    await extractor.release();
    await expect(createFeatureExtractor({ unet: conditional, blocks: [1], timesteps: [T], classLabel: 10, runner: cpu })).rejects.toThrow(
      /classLabel must be an integer in 0\.\.9; found 10/,
    );
    await expect(createFeatureExtractor({ unet: identityUNet(), blocks: [1], timesteps: [T], classLabel: 1, runner: cpu })).rejects.toThrow(
      /classLabel is set, but this U-Net is unconditional/,
    );
    const unconditional = await createFeatureExtractor({ unet: identityUNet(), blocks: [1], timesteps: [T], runner: cpu });
    await expect(unconditional.extract(images(1), { labels: [1] })).rejects.toThrow(/labels were given, but this U-Net is unconditional/);
    await unconditional.release();
  });
});
