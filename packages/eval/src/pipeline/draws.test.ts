/**
 * Noise draws: `--draws N` stores N draws of every training image's features and
 * none more of the test images'; training epoch e reads draw e mod N, evaluation
 * draw 0; DifFeed draws fresh noise every epoch, the same for an image whatever
 * its batch, and fixed noise for evaluation. Checked through the public
 * functions' behaviour, not through the seed arithmetic.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EMBEDDED_DATA, EMBEDDED_MODEL } from '@diffssl/testing';
import { describe, expect, it, onTestFinished } from 'vitest';
import { featureNames, openFeatureCache, writeFeatureCache } from '../cache/index.js';
import {
  SYNTHETIC_CLASSES,
  SYNTHETIC_IMAGES,
  SYNTHETIC_KEY,
  syntheticBatches,
  syntheticLabels,
  syntheticShape,
  syntheticValue,
} from '../cache/__fixtures__/synthetic-features.js';
import { FASHION_MNIST_CLASSES } from '../data/idx.js';
import { openDataset } from '../data/open.js';
import { noiseInput } from '../protocols/diffeed-model.js';
import { runProtocol } from './run.js';
import { cacheSource, imageNoiseSource } from './sources.js';

const cpu = { executionProviders: ['cpu'] as const };
const temporary = () => {
  const root = mkdtempSync(join(tmpdir(), 'diffssl-draws-'));
  onTestFinished(() => rmSync(root, { recursive: true, force: true }));
  return root;
};

describe('the epoch -> noise draw mapping of cached features', () => {
  it('training epoch e reads draw e mod draws for every image; evaluation reads draw 0 whatever the epoch', async () => {
    const key = { ...SYNTHETIC_KEY, draws: 3 };
    const names = featureNames(key);
    const cache = await writeFeatureCache({
      root: temporary(),
      key,
      imageCount: SYNTHETIC_IMAGES,
      labels: syntheticLabels(),
      classNames: SYNTHETIC_CLASSES,
      batches: syntheticBatches(names, 0, SYNTHETIC_IMAGES, 3, 5),
    });
    const labels = syntheticLabels();
    const source = cacheSource(cache, { length: SYNTHETIC_IMAGES, label: (i) => labels[i]! }, names);
    const indices = [36, 0, 17, 5];
    // The values the synthetic writer stored for (image, draw), computed here from its formula.
    const expected = (name: string, draw: number) =>
      indices.flatMap((image) => Array.from({ length: syntheticShape(name).reduce((a, b) => a * b, 1) }, (_, e) => syntheticValue(name, image, draw, e)));
    for (let epoch = 0; epoch < 8; epoch++) {
      const training = await source.read(indices, { epoch, training: true });
      for (const name of names) expect(Array.from(training[name]!.toArray()), `epoch ${epoch}, ${name}`).toEqual(expected(name, epoch % 3));
      const evaluation = await source.read(indices, { epoch, training: false });
      for (const name of names) expect(Array.from(evaluation[name]!.toArray()), `evaluation after epoch ${epoch}, ${name}`).toEqual(expected(name, 0));
    }
    // The draws differ, so a source that ignored the epoch would fail above.
    expect(expected(names[0]!, 1)).not.toEqual(expected(names[0]!, 0));
    await cache.close();
  });
});

describe('diffssl train --draws', () => {
  it('extracts --draws noise draws of every training image (each a different noise) and one of every test image; draw 0 does not depend on the number of draws', async () => {
    const root = temporary();
    const run = (draws: number, out: string) =>
      runProtocol({
        protocol: 'linear',
        blocks: [10],
        timesteps: [50],
        checkpoint: EMBEDDED_MODEL.checkpoint,
        config: EMBEDDED_MODEL.flagsFile,
        data: EMBEDDED_DATA,
        classNames: FASHION_MNIST_CLASSES,
        trainLimit: 8,
        testLimit: 4,
        epochs: 3,
        batchSize: 4,
        draws,
        seed: 2,
        out: join(root, out),
        cacheDirectory: join(root, 'features'),
        runner: cpu,
        progress: 'off',
      });
    const report = await run(3, 'three');
    expect(report.settings).toMatchObject({ draws: 3 });
    const entries = async () =>
      Promise.all(
        readdirSync(join(root, 'features'))
          .filter((name) => /^features-[0-9a-f]+$/.test(name))
          .map((name) => openFeatureCache(join(root, 'features', name))),
      );
    const opened = await entries();
    const summary = opened.map((cache) => `${cache.imageCount} images x ${cache.draws} draws`).sort();
    expect(summary).toEqual(['4 images x 1 draws', '8 images x 3 draws']);
    const train = opened.find((cache) => cache.imageCount === 8)!;
    const draws = await Promise.all([0, 1, 2].map((draw) => train.readBatch([0, 1, 2, 3, 4, 5, 6, 7], draw)));
    const values = draws.map((batch) => Array.from(batch.get('t50/block10')!.toArray()));
    // Every draw is its own noise: no two draws agree on any image.
    for (let a = 0; a < 3; a++) {
      for (let b = a + 1; b < 3; b++) {
        for (let image = 0; image < 8; image++)
          expect(values[a]!.slice(image * 256, (image + 1) * 256), `image ${image}, draws ${a} and ${b}`).not.toEqual(
            values[b]!.slice(image * 256, (image + 1) * 256),
          );
      }
    }
    await Promise.all(opened.map((cache) => cache.close()));
    // One draw: a new entry whose draw 0 is the 3-draw entry's draw 0.
    await run(1, 'one');
    const again = await entries();
    expect(again).toHaveLength(3);
    const single = again.find((cache) => cache.imageCount === 8 && cache.draws === 1)!;
    expect(Array.from((await single.readBatch([0, 1, 2, 3, 4, 5, 6, 7], 0)).get('t50/block10')!.toArray())).toEqual(values[0]);
    await Promise.all(again.map((cache) => cache.close()));
  });
});

describe('DifFeed noise (imageNoiseSource)', () => {
  it('is fresh every training epoch, the same for an image whatever its batch, fixed for evaluation, and standard normal', async () => {
    const dataset = await openDataset(EMBEDDED_DATA, { split: 'train', classes: FASHION_MNIST_CLASSES, limit: 6 });
    const source = imageNoiseSource(dataset, { timesteps: [50, 150], noiseSeed: 3, split: 'train', seed: 0 });
    const noise = async (indices: number[], epoch: number, training: boolean, t = 50) =>
      Array.from((await source.read(indices, { epoch, training }))[noiseInput(t)]!.toArray());
    const size = 3 * 28 * 28;
    const epochs = await Promise.all([0, 1, 2].map((epoch) => noise([0, 1, 2, 3, 4, 5], epoch, true)));
    for (let a = 0; a < 3; a++)
      for (let b = a + 1; b < 3; b++) expect(epochs[a]!.slice(0, size), `epochs ${a} and ${b}`).not.toEqual(epochs[b]!.slice(0, size));
    // Reproducible, and image 4's noise is the same alone or in a batch.
    expect(await noise([0, 1, 2, 3, 4, 5], 1, true)).toEqual(epochs[1]);
    expect(await noise([4], 1, true)).toEqual(epochs[1]!.slice(4 * size, 5 * size));
    // Images and timesteps get different noise.
    expect(epochs[0]!.slice(0, size)).not.toEqual(epochs[0]!.slice(size, 2 * size));
    expect(await noise([0], 0, true, 150)).not.toEqual(epochs[0]!.slice(0, size));
    // Evaluation noise does not depend on the epoch, and is none of the training epochs'.
    const evaluation = await noise([0, 1, 2, 3, 4, 5], 0, false);
    expect(await noise([0, 1, 2, 3, 4, 5], 5, false)).toEqual(evaluation);
    for (const trained of epochs) expect(trained.slice(0, size)).not.toEqual(evaluation.slice(0, size));
    // N(0, 1): mean and variance within 5 standard errors over 6 x 2352 values.
    const all = epochs.flat();
    const average = all.reduce((a, v) => a + v, 0) / all.length;
    const variance = all.reduce((a, v) => a + (v - average) ** 2, 0) / all.length;
    expect(Math.abs(average)).toBeLessThan(5 / Math.sqrt(all.length));
    expect(Math.abs(variance - 1)).toBeLessThan(5 * Math.sqrt(2 / all.length));
  });
});
