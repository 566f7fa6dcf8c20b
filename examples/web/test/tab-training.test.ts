import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { FormatError, HostTensor, writeSafetensors } from '@diffssl/core';
import { FASHION_MNIST_CLASSES, readIdxDataset } from '@diffssl/eval';
import { createFeatureExtractor, featureKey, loadCheckpoint, pixelNoiseId, type AdmUNet, type GuidedDiffusionFlags } from '@diffssl/unet';
import { relativeError } from '@diffssl/testing';
import { describe, expect, it } from 'vitest';
import {
  extractTabFeatures,
  readTabData,
  TAB_BLOCK,
  TAB_HEAD_KINDS,
  TAB_TIMESTEP,
  TAB_TRAINING,
  tabTrainingSettingsText,
  trainTabHead,
  unetFromBytes,
} from '../src/tab-training.js';

const assets = fileURLToPath(new URL('../../../assets/', import.meta.url));
const cpu = { executionProviders: ['cpu'] as const, intraOpThreads: 1 };

let unetPromise: Promise<AdmUNet> | undefined;
/** The embedded U-Net, built as the page builds it (safetensors bytes and flags), once per file. */
function embeddedUNet(): Promise<AdmUNet> {
  unetPromise ??= (async () => {
    const flags = JSON.parse(await readFile(`${assets}models/adm-fm28/flags.json`, 'utf8')) as GuidedDiffusionFlags;
    return unetFromBytes(writeSafetensors(await loadCheckpoint(`${assets}models/adm-fm28/adm-fm28.pt`)), flags);
  })();
  return unetPromise;
}

/** The first `count` images of a split as uint8 [N, 1, 28, 28] with their labels. */
async function images(split: 'train' | 'test', start: number, count: number): Promise<{ pixels: Uint8Array; labels: number[] }> {
  const dataset = await readIdxDataset(`${assets}data/fashion-mnist-10k`, { split, classes: FASHION_MNIST_CLASSES });
  const pixels = new Uint8Array(count * 784);
  const labels: number[] = [];
  for (let i = 0; i < count; i++) {
    const example = await dataset.get(start + i);
    pixels.set(example.image.contiguous().data as Uint8Array, i * 784);
    labels.push(example.label);
  }
  return { pixels, labels };
}

/** PyTorch's adaptive average pooling of a 7x7 map to 2x2 (bins [0,4) and [3,7)), flattened channel-major, then W x + b. */
function linearHeadLogits(feature: Float32Array, channels: number, weight: number[], bias: number[]): number[] {
  const bins = [
    [0, 4],
    [3, 7],
  ] as const;
  const pooled: number[] = [];
  for (let c = 0; c < channels; c++) {
    for (const [y0, y1] of bins) {
      for (const [x0, x1] of bins) {
        let sum = 0;
        for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) sum += feature[c * 49 + y * 7 + x]!;
        pooled.push(sum / ((y1 - y0) * (x1 - x0)));
      }
    }
  }
  return bias.map((b, k) => b + pooled.reduce((acc, v, i) => acc + v * weight[k * pooled.length + i]!, 0));
}

describe('the tab data file', () => {
  it('reads images as [N, 1, H, W] with labels and the train/test split, and refuses other files', () => {
    const bytes = writeSafetensors(
      {
        images: HostTensor.from(
          'uint8',
          [3, 2, 2],
          Array.from({ length: 12 }, (_, i) => i),
        ),
        labels: HostTensor.from('uint8', [3], [4, 5, 6]),
      },
      { train: '2', test: '1' },
    );
    const data = readTabData(bytes);
    expect(data.images.shape).toEqual([3, 1, 2, 2]);
    expect(data.images.toArray()).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(data.labels).toEqual([4, 5, 6]);
    expect([data.trainCount, data.testCount]).toEqual([2, 1]);
    expect(() => readTabData(writeSafetensors({ images: HostTensor.zeros('uint8', [3, 2, 2]) }, { train: '2', test: '1' }))).toThrow(FormatError);
    expect(() =>
      readTabData(writeSafetensors({ images: HostTensor.zeros('uint8', [3, 2, 2]), labels: HostTensor.zeros('uint8', [3]) }, { train: '2', test: '2' })),
    ).toThrow(/train \+ test = N/);
  });
});

describe("the tab's own training settings", () => {
  it("are stated on the page as its own, against the protocols' settings", () => {
    expect(TAB_TRAINING).toEqual({ batchSize: 32, momentum: 0.9, keepsPartialBatch: true, stepLR: false });
    const text = tabTrainingSettingsText();
    expect(text).toMatch(
      /^This tab's own training settings: SGD with momentum 0\.9, batches of 32 with the last partial batch kept, and a constant learning rate \(no StepLR\)\./,
    );
    expect(text).toContain('momentum 0, the last partial batch dropped, the learning rate x0.1 every 7 epochs');
  });

  it('are what trainTabHead does: the last partial batch is kept', async () => {
    // 7 training examples in batches of 4: 2 steps per epoch (4 + 3), none dropped.
    // Features shaped as block 10's (64 x 7 x 7); their values do not matter here.
    const features = HostTensor.from(
      'float32',
      [9, 64, 7, 7],
      Array.from({ length: 9 * 64 * 49 }, (_, i) => Math.sin(i)),
    );
    const labels = [0, 1, 2, 3, 4, 5, 6, 7, 8];
    const result = await trainTabHead(features, labels, 7, {
      head: 'linear',
      unet: await embeddedUNet(),
      epochs: 3,
      batchSize: 4,
      learningRate: 0.05,
      momentum: TAB_TRAINING.momentum,
      seed: 0,
      runner: cpu,
    });
    expect(result.steps).toBe(6);
    expect(result.heldOut).toBe(2);
  });
});

describe('training a head on U-Net features (as in the tab, here on onnxruntime-node)', () => {
  it('extracts block 10 at t=50, the loss falls, and the held-out predictions are those of the trained weights', async () => {
    const flags = JSON.parse(await readFile(`${assets}models/adm-fm28/flags.json`, 'utf8')) as GuidedDiffusionFlags;
    // The page's path: weights as safetensors bytes -> AdmUNet.
    const unet = await embeddedUNet();
    const train = await images('train', 0, 192);
    const test = await images('test', 0, 96);
    const all = HostTensor.from('uint8', [288, 1, 28, 28], new Uint8Array([...train.pixels, ...test.pixels]));
    const labels = [...train.labels, ...test.labels];
    let reported = 0;
    const { features } = await extractTabFeatures(unet, all, {
      trainCount: 192,
      runner: cpu,
      onProgress: (done) => {
        reported = done;
      },
    });
    expect(features.shape).toEqual([288, 64, 7, 7]);
    expect(reported).toBe(288);
    // The same images through @diffssl/unet's Node extractor, from the checkpoint file: block 10 at t=50, seed 0,
    // float32 pixels scaled here as guided-diffusion does (x / 127.5 - 1, step by step in float32) and replicated, and each image's noise keyed by its pixel hash (the tab's rule)
    // in its split's stream: the 192 training images the training split's, the 96 held out the test split's.
    expect([TAB_BLOCK, TAB_TIMESTEP]).toEqual([10, 50]);
    const rgb = new Float32Array(288 * 3 * 784);
    for (let i = 0; i < 288; i++)
      for (let c = 0; c < 3; c++) for (let p = 0; p < 784; p++) rgb[(i * 3 + c) * 784 + p] = Math.fround(Math.fround(all.data[i * 784 + p]! / 127.5) - 1);
    const ids = Array.from({ length: 288 }, (_, i) => pixelNoiseId(rgb.slice(i * 3 * 784, (i + 1) * 3 * 784)));
    const reference = await createFeatureExtractor({
      checkpoint: `${assets}models/adm-fm28/adm-fm28.pt`,
      config: flags,
      blocks: [10],
      timesteps: [50],
      seed: 0,
      batchSize: 48,
      runner: cpu,
    });
    const rgbImages = HostTensor.from('float32', [288, 3, 28, 28], rgb);
    const wantTrain = (await reference.extract(rgbImages.slice([0], [192]), { ids: ids.slice(0, 192), split: 'train' })).get(featureKey(50, 10))!;
    const wantTest = (await reference.extract(rgbImages.slice([192], [288]), { ids: ids.slice(192), split: 'test' })).get(featureKey(50, 10))!;
    const want = HostTensor.from('float32', [288, 64, 7, 7], new Float32Array([...wantTrain.data, ...wantTest.data]));
    await reference.release();
    expect(relativeError(features, want)).toBeLessThanOrEqual(1e-5);

    const result = await trainTabHead(features, labels, 192, {
      head: 'linear',
      unet,
      epochs: 6,
      batchSize: 32,
      learningRate: 0.05,
      momentum: 0.9,
      seed: 0,
      runner: cpu,
    });
    expect(result.steps).toBe(36);
    expect(result.losses).toHaveLength(36);
    expect(result.epochLosses.at(-1)!).toBeLessThan(0.7 * result.epochLosses[0]!);
    // The first epoch starts near ln(10) = 2.30 (a fresh head on 10 classes).
    expect(result.losses[0]!).toBeGreaterThan(1.5);
    expect(result.losses[0]!).toBeLessThan(3.5);

    // Held-out predictions recomputed from the trained weights with an independent formula.
    const weight = result.weights.get('fcs.0.weight')!.toArray();
    const bias = result.weights.get('fcs.0.bias')!.toArray();
    const size = 64 * 49;
    const expected = test.labels.map((_, i) => {
      const logits = linearHeadLogits(features.data.subarray((192 + i) * size, (193 + i) * size), 64, weight, bias);
      return logits.indexOf(Math.max(...logits));
    });
    expect(result.predictions).toEqual(expected);
    const correct = expected.filter((p, i) => p === test.labels[i]).length;
    expect(result.correct).toBe(correct);
    expect(result.accuracy).toBeCloseTo(correct / 96, 12);
    // Far above chance (10%) on Fashion-MNIST with 192 training images.
    expect(result.accuracy).toBeGreaterThan(0.4);
  });

  it('trains the attention head too', async () => {
    const features = HostTensor.from(
      'float32',
      [40, 64, 7, 7],
      Float32Array.from({ length: 40 * 64 * 49 }, (_, i) => Math.sin(i * 0.37) + (Math.floor(i / (64 * 49)) % 2)),
    );
    const labels = Array.from({ length: 40 }, (_, i) => i % 2);
    const result = await trainTabHead(features, labels, 32, {
      head: 'attention',
      unet: await embeddedUNet(),
      epochs: 8,
      batchSize: 8,
      learningRate: 0.05,
      momentum: 0.9,
      seed: 1,
      runner: cpu,
    });
    expect(result.steps).toBe(32);
    // Two classes that differ by a constant offset of every value: learnable, so the loss falls.
    expect(result.epochLosses.at(-1)!).toBeLessThan(result.epochLosses[0]!);
    // The registry's attention protocol: a DifFormer on block 10 (pre-layer, then the attention stack).
    expect([...result.weights.keys()]).toContain('pre_layer.10.2.weight');
    expect([...result.weights.keys()].some((name) => /^intra_inter_block_attention\..*attn\.qkv\.weight$/.test(name))).toBe(true);
  });

  it('offers the registry kinds that read one block of frozen features, and refuses others', async () => {
    expect(TAB_HEAD_KINDS).toEqual(['linear', 'attention']);
    const features = HostTensor.zeros('float32', [9, 64, 7, 7]);
    const labels = [0, 1, 2, 3, 4, 5, 6, 7, 8];
    const options = { unet: await embeddedUNet(), epochs: 1, batchSize: 4, learningRate: 0.05, momentum: 0.9, seed: 0, runner: cpu };
    await expect(trainTabHead(features, labels, 7, { ...options, head: 'difformer' })).rejects.toThrow(
      "tab: expected a head of linear, attention; found 'difformer'",
    );
    await expect(trainTabHead(HostTensor.zeros('float32', [9, 32, 14, 14]), labels, 7, { ...options, head: 'linear' })).rejects.toThrow(
      'tab: expected features of block 10, [N, 64, 7, 7]; found [9, 32, 14, 14]',
    );
  });
});
