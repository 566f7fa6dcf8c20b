import { mkdirSync, mkdtempSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostTensor, RandomGenerator } from '@diffssl/core';
import { EMBEDDED_MODEL } from '@diffssl/testing';
import { createFeatureExtractor, featureKey, seededNoise } from '@diffssl/unet';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { drawSeed } from '../cache/key.js';
import { arrayDataset } from '../data/array-dataset.js';
import { loadBatch } from '../data/batches.js';
import { randomCrop } from '../data/transforms.js';
import { noiseInput, X_START } from '../protocols/diffeed-model.js';
import { extractFeatures } from './extract.js';
import { datasetIdentity, ensureFeatureCache, featureCacheKey } from './features.js';
import { imageNoiseSource } from './sources.js';
import { openSplits, splitIdentity } from './splits.js';
import { loadUNet, type LoadedUNet } from './unet-source.js';

const cpu = { executionProviders: ['cpu'] as const, intraOpThreads: 1 };
const SIZE = 3 * 28 * 28;

/** Four distinct 28x28 gray images (uint8), the same for both splits in these tests. */
function images(count = 4, side = 28): HostTensor<'uint8'> {
  return HostTensor.from(
    'uint8',
    [count, side, side],
    Array.from({ length: count * side * side }, (_, i) => (i * 37 + Math.floor(i / (side * side)) * 91) % 256),
  );
}

function temporaryDirectory(): string {
  const directory = mkdtempSync(join(tmpdir(), 'diffssl-splits-'));
  onTestFinished(() => rmSync(directory, { recursive: true, force: true }));
  return directory;
}

describe('noise of the training and test splits', () => {
  let unet: LoadedUNet;
  beforeAll(async () => {
    unet = await loadUNet({ checkpoint: EMBEDDED_MODEL.checkpoint, config: EMBEDDED_MODEL.flagsFile });
  });

  it("cached features: image i of the training split and image i of the test split get different noise, each the extractor's for its split", async () => {
    const root = temporaryDirectory();
    const dataset = arrayDataset({ images: images(), labels: [0, 1, 2, 3], classes: 10 });
    const common = { unet, dataset, data: 'sha256:same-images', blocks: [10], timesteps: [50], pool: 2, noiseSeed: 5, root, batchSize: 3, runner: cpu };
    const train = await ensureFeatureCache({ ...common, split: 'train' });
    const test = await ensureFeatureCache({ ...common, split: 'test' });
    onTestFinished(() => Promise.all([train.cache.close(), test.cache.close()]).then(() => undefined));
    // The split is part of the key: two entries, both extracted.
    expect([train.extracted, test.extracted]).toEqual([true, true]);
    expect(featureCacheKey({ ...common, split: 'train' }).noiseSplit).toBe('train');
    expect(train.cache.directory).not.toBe(test.cache.directory);
    const name = featureKey(50, 10);
    const fromTrain = (await train.cache.readBatch([0, 1, 2, 3], 0, [name])).get(name)!;
    const fromTest = (await test.cache.readBatch([0, 1, 2, 3], 0, [name])).get(name)!;
    // The same images through the extractor, in another batch size and order, with explicit ids and splits.
    const extractor = await createFeatureExtractor({ unet: unet.unet, blocks: [10], timesteps: [50], pool: 2, seed: 5, batchSize: 2, runner: cpu });
    onTestFinished(() => extractor.release());
    const reversed = HostTensor.from(
      'uint8',
      [4, 1, 28, 28],
      [3, 2, 1, 0].flatMap((i) =>
        images()
          .slice([i], [i + 1])
          .toArray(),
      ),
    );
    for (const [split, cached] of [
      ['train', fromTrain],
      ['test', fromTest],
    ] as const) {
      const direct = (await extractor.extract(reversed, { ids: [3, 2, 1, 0], split })).get(name)!;
      for (let i = 0; i < 4; i++) expect(cached.slice([i], [i + 1]).toArray(), `${split} image ${i}`).toEqual(direct.slice([3 - i], [4 - i]).toArray());
    }
    for (let i = 0; i < 4; i++) {
      const a = fromTrain.slice([i], [i + 1]).toArray();
      const b = fromTest.slice([i], [i + 1]).toArray();
      expect(Math.max(...a.map((v, k) => Math.abs(v - b[k]!))), `image ${i}`).toBeGreaterThan(1e-3);
    }
    // Asked again: read from the cache, not extracted.
    const again = await ensureFeatureCache({ ...common, split: 'test' });
    expect(again.extracted).toBe(false);
    await again.cache.close();
  });

  it('DifFeed sources: each split its own noise stream, repeatable in any batch, a fresh draw per training epoch', async () => {
    const dataset = arrayDataset({ images: images(), labels: [0, 1, 2, 3], classes: 10 });
    const common = { timesteps: [50, 150], noiseSeed: 9, seed: 0 };
    const train = imageNoiseSource(dataset, { ...common, split: 'train' });
    const test = imageNoiseSource(dataset, { ...common, split: 'test' });
    const evaluation = { epoch: 0, training: false };
    const trainRead = await train.read([0, 1, 2], evaluation);
    const testRead = await test.read([0, 1, 2], evaluation);
    for (const t of [50, 150]) {
      const trainNoise = trainRead[noiseInput(t)]!.toArray();
      const testNoise = testRead[noiseInput(t)]!.toArray();
      [0, 1, 2].forEach((index) => {
        expect(trainNoise.slice(index * SIZE, (index + 1) * SIZE)).toEqual([...seededNoise(9, index, t, SIZE, 'train')]);
        expect(testNoise.slice(index * SIZE, (index + 1) * SIZE)).toEqual([...seededNoise(9, index, t, SIZE, 'test')]);
      });
      expect(trainNoise.slice(0, 8)).not.toEqual(testNoise.slice(0, 8));
    }
    // Image 2 alone in another batch: the same noise.
    expect((await test.read([2], evaluation))[noiseInput(50)]!.toArray()).toEqual(testRead[noiseInput(50)]!.toArray().slice(2 * SIZE, 3 * SIZE));
    // Training epoch 3 draws drawSeed(9, 4) in the training split's stream.
    const epoch3 = (await train.read([1], { epoch: 3, training: true }))[noiseInput(50)]!.toArray();
    expect(epoch3).toEqual([...seededNoise(drawSeed(9, 4), 1, 50, SIZE, 'train')]);
  });
});

describe('DifFeed augmentation', () => {
  it("draws its random crops and flips from the run's seed: two seeds give other crops, the same seed the same", async () => {
    const big = images(6, 40);
    const dataset = arrayDataset({ images: big, labels: [0, 1, 2, 3, 4, 5], classes: 10 });
    const transform = { kind: 'random-crop', size: 28 } as const;
    const source = (seed: number) =>
      imageNoiseSource(dataset, {
        split: 'train',
        timesteps: [50],
        noiseSeed: 0,
        seed,
        train: { transform },
        test: { transform: { kind: 'center-crop', size: 28 } },
      });
    const indices = [0, 1, 2, 3, 4, 5];
    const read = async (seed: number, epoch: number) => (await source(seed).read(indices, { epoch, training: true }))[X_START]!.toArray();
    const seed1 = await read(1, 0);
    expect(await read(1, 0)).toEqual(seed1);
    expect(await read(2, 0)).not.toEqual(seed1);
    expect(await read(1, 1)).not.toEqual(seed1);
    // Independently: image i of epoch e is core's RandomGenerator(seed, 'AUGM', e, i) crop of the 40x40 image.
    for (const seed of [1, 2]) {
      const x = await read(seed, 0);
      for (const index of indices) {
        const crop = randomCrop(
          big.slice([index], [index + 1]).reshape([1, 40, 40]) as HostTensor<'uint8'>,
          28,
          new RandomGenerator(seed, 0x4155_474d, 0, index),
        ).image;
        const expected = (
          await loadBatch(arrayDataset({ images: crop.reshape([1, 28, 28]) as HostTensor<'uint8'>, labels: [0], classes: 10 }), [0])
        ).images.toArray();
        expect(x.slice(index * SIZE, (index + 1) * SIZE), `seed ${seed} image ${index}`).toEqual(expected);
      }
    }
    // Evaluation reads take the center crop whatever the seed: the test split draws nothing but its noise.
    const evaluation = async (seed: number) => (await source(seed).read(indices, { epoch: 0, training: false }))[X_START]!.toArray();
    expect(await evaluation(2)).toEqual(await evaluation(1));
  });
});

describe('the identity of an image folder', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'diffssl-identity-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  async function png(value: number): Promise<Buffer> {
    return sharp(Buffer.alloc(28 * 28, value), { raw: { width: 28, height: 28, channels: 1 } })
      .png()
      .toBuffer();
  }

  async function folder(): Promise<string> {
    const data = mkdtempSync(join(root, 'data-'));
    for (const [path, value] of [
      ['train/a/1.png', 10],
      ['train/b/2.png', 20],
      ['val/a/3.png', 30],
      ['val/b/sub/4.png', 40],
    ] as const) {
      mkdirSync(join(data, path, '..'), { recursive: true });
      writeFileSync(join(data, path), await png(value));
    }
    return data;
  }

  async function identity(data: string): Promise<string> {
    const { test } = await openSplits({ data });
    return splitIdentity(test, { data }, 'test');
  }

  it('changes when a validation image is edited (same size), renamed, added or removed, at any depth', async () => {
    const data = await folder();
    const before = await identity(data);
    expect(await identity(data)).toBe(before);
    // Edited: other bytes of the same length, written a second later.
    const edited = join(data, 'val/b/sub/4.png');
    const replacement = await png(41);
    const original = await png(40);
    expect(replacement.length).toBe(original.length);
    writeFileSync(edited, replacement);
    const later = new Date(Date.now() + 1000);
    utimesSync(edited, later, later);
    const afterEdit = await identity(data);
    expect(afterEdit).not.toBe(before);
    // Renamed (same bytes, same time).
    renameSync(join(data, 'val/a/3.png'), join(data, 'val/a/3b.png'));
    const afterRename = await identity(data);
    expect(new Set([before, afterEdit, afterRename]).size).toBe(3);
    // Added, then removed again.
    writeFileSync(join(data, 'val/a/5.png'), await png(50));
    const afterAdd = await identity(data);
    rmSync(join(data, 'val/a/5.png'));
    const afterRemove = await identity(data);
    expect(new Set([before, afterEdit, afterRename, afterAdd]).size).toBe(4);
    expect(afterRemove).toBe(afterRename);
    // A file that is not an image (read by nobody) counts too, below the top level.
    writeFileSync(join(data, 'val/b/sub/notes.txt'), 'x');
    expect(await identity(data)).not.toBe(afterRemove);
  });

  it('covers every file: datasetIdentity of the training split sees an edit in a nested class folder', async () => {
    const data = await folder();
    const { train } = await openSplits({ data });
    const before = await datasetIdentity(train, data, { split: 'train' });
    const file = join(data, 'train/b/2.png');
    writeFileSync(file, await png(21));
    const later = new Date(Date.now() + 2000);
    utimesSync(file, later, later);
    expect(await datasetIdentity(train, data, { split: 'train' })).not.toBe(before);
  });

  it('diffssl extract: extracting again after editing one validation image extracts anew, into another entry', async () => {
    const data = await folder();
    const cacheDirectory = temporaryDirectory();
    const lines: string[] = [];
    const options = {
      data,
      checkpoint: EMBEDDED_MODEL.checkpoint,
      config: EMBEDDED_MODEL.flagsFile,
      blocks: [10],
      timesteps: [50],
      pool: 2,
      split: 'test' as const,
      cacheDirectory,
      runner: cpu,
      progress: 'off' as const,
      log: (line: string) => lines.push(line),
    };
    const first = await extractFeatures(options);
    expect(await extractFeatures(options)).toEqual(first);
    // The cache lines only (the U-Net's setup steps are logged too when it is built).
    const cacheLines = () => lines.filter((line) => line.startsWith('extract ('));
    expect(cacheLines().map((line) => line.split(' ')[2])).toEqual(['wrote', 'found']);
    const edited = join(data, 'val/a/3.png');
    writeFileSync(edited, await png(31));
    const later = new Date(Date.now() + 3000);
    utimesSync(edited, later, later);
    const second = await extractFeatures(options);
    expect(cacheLines().at(-1)!.split(' ')[2]).toBe('wrote');
    expect(second.test).not.toBe(first.test);
  });
});
