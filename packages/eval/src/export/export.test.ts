/**
 * The exported classifier (`runProtocol({ exportModel: true })` -> model.onnx +
 * model.json) against an independent in-memory route: features from
 * `@diffssl/unet`'s `createFeatureExtractor` (or, for DifFeed, the model's own
 * training graph fed explicit seeded noise) and the head rebuilt from the
 * run's `model.safetensors`, with the noise the sidecar prescribes.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BuildContext, compileModel, createRunner, Graph, HostTensor, readSafetensors } from '@diffssl/core';
import { EMBEDDED_DATA, EMBEDDED_MODEL, embeddedFlags, expectClose, relativeError } from '@diffssl/testing';
import { createFeatureExtractor, featureKey, pixelNoiseId, seededNoise } from '@diffssl/unet';
import { describe, expect, it, onTestFinished } from 'vitest';
import { FASHION_MNIST_CLASSES, readIdxDataset } from '../data/idx.js';
import { loadSavedModel } from '../pipeline/saved-model.js';
import { runProtocol, type RunOptions } from '../pipeline/run.js';
import { DifFeedModel, noiseInput, X_START } from '../protocols/diffeed-model.js';
import { FeatureHeadClassifier } from '../protocols/feature-head.js';
import { classifierFeeds, topClasses, type ExportedClassifierInfo } from './classifier-inputs.js';

const cpu = { executionProviders: ['cpu'] as const };
/** Not 0, so a route that ignored the seed (the extractor's default) would disagree. */
const SEED = 5;
const IMAGES = 5;
/** A small attention head, to keep the runs short (the export path is the same as the default's). */
const SMALL_ARC = 'Use_CLS_Token:True:16,Insert_CLS_Token,Attention:16:2:2:1,Extract_CLS_Token';

/** Test images 0..count-1 as float32 [count, 3, 28, 28] in [-1, 1], converted here (gray replicated), not by the pipeline. */
async function testImages(count: number): Promise<HostTensor<'float32'>> {
  const dataset = await readIdxDataset(EMBEDDED_DATA, { split: 'test', classes: FASHION_MNIST_CLASSES, limit: count });
  const out = new Float32Array(count * 3 * 784);
  for (let i = 0; i < count; i++) {
    const gray = (await dataset.get(i)).image.contiguous().data as Uint8Array;
    for (let c = 0; c < 3; c++) for (let p = 0; p < 784; p++) out[(i * 3 + c) * 784 + p] = gray[p]! / 127.5 - 1;
  }
  return HostTensor.from('float32', [count, 3, 28, 28], out);
}

/** The pixel-hash noise ids of each image, computed here from its float32 pixels. */
function pixelIds(images: HostTensor<'float32'>): number[] {
  const size = images.size / images.shape[0]!;
  return Array.from({ length: images.shape[0]! }, (_, i) => pixelNoiseId(images.data.slice(i * size, (i + 1) * size)));
}

function argmaxRows(logits: HostTensor): number[] {
  const [rows, k] = logits.shape as [number, number];
  const values = logits.toArray();
  return Array.from({ length: rows }, (_, r) => {
    const row = values.slice(r * k, (r + 1) * k);
    return row.indexOf(Math.max(...row));
  });
}

function softmaxRows(logits: HostTensor): HostTensor<'float64'> {
  const [rows, k] = logits.shape as [number, number];
  const values = logits.toArray();
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    const row = values.slice(r * k, (r + 1) * k);
    const top = Math.max(...row);
    const exps = row.map((v) => Math.exp(v - top));
    const total = exps.reduce((a, b) => a + b, 0);
    out.push(...exps.map((e) => e / total));
  }
  return HostTensor.from('float64', [rows, k], out);
}

/** Runs `model.forward` (eval mode, the loaded weights) on named inputs [B, ...]. */
async function headLogits(model: FeatureHeadClassifier | DifFeedModel, feeds: Record<string, HostTensor>): Promise<HostTensor> {
  const graph = new Graph();
  const context = new BuildContext(graph, model.modules(), { mode: 'eval' });
  const inputs = new Map([...model.inputs()].map(([name, input]) => [name, graph.input(name, input.dtype, ['batch', ...input.shape])]));
  expect(Object.keys(feeds).sort()).toEqual([...inputs.keys()].sort());
  const logits = model.forward(context, inputs);
  const runner = await createRunner(compileModel({ outputs: { logits } }), cpu);
  try {
    return (await runner.run(feeds)).logits!;
  } finally {
    await runner.release();
  }
}

/** The exported model.onnx in a fresh onnxruntime-node session, read from disk. */
async function exportedLogits(path: string, feeds: Record<string, HostTensor>): Promise<{ logits: HostTensor; probabilities: HostTensor }> {
  const runner = await createRunner(path, cpu);
  try {
    const result = await runner.run(feeds);
    return { logits: result.logits!, probabilities: result.probabilities! };
  } finally {
    await runner.release();
  }
}

type Case = Pick<RunOptions, 'protocol' | 'blocks' | 'timesteps' | 'fusionArc' | 'feedbackFrom'>;

const CASES: [string, Case][] = [
  ['linear (GD(L), block 10 at t=50, pooled to 2x2)', { protocol: 'linear', blocks: [10], timesteps: [50] }],
  ['attention (block 10 at t=50)', { protocol: 'attention', blocks: [10], timesteps: [50], fusionArc: SMALL_ARC }],
  // Block 13 is 14x14: pooled to 7x7 inside the exported graph and by the extractor.
  ['difformer (blocks 9 and 13 at t=50 and 150)', { protocol: 'difformer', blocks: [9, 13], timesteps: [50, 150], fusionArc: SMALL_ARC }],
  ['diffeed (feedback 11, 13 -> 9, 7; head on block 10 at t=50)', { protocol: 'diffeed', blocks: [10], timesteps: [50], fusionArc: SMALL_ARC, feedbackFrom: [11, 13] }],
];

describe('exportClassifier', () => {
  it.each(CASES)('the exported %s gives the logits of the extractor and the saved head, with the noise of its sidecar', async (_, settings) => {
    const root = mkdtempSync(join(tmpdir(), 'diffssl-export-'));
    onTestFinished(() => rmSync(root, { recursive: true, force: true }));
    const out = join(root, 'run');
    await runProtocol({
      ...settings,
      checkpoint: EMBEDDED_MODEL.checkpoint,
      config: EMBEDDED_MODEL.flagsFile,
      data: EMBEDDED_DATA,
      classNames: FASHION_MNIST_CLASSES,
      trainLimit: 8,
      testLimit: 4,
      epochs: 1,
      batchSize: 4,
      // A large rate, so one epoch moves the head well away from its initialization.
      learningRate: 0.1,
      seed: SEED,
      out,
      cacheDirectory: join(root, 'features'),
      exportModel: true,
      runner: cpu,
      progress: 'off',
    });
    const info = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8')) as ExportedClassifierInfo;
    expect(info).toMatchObject({ format: 'diffssl-classifier', protocol: settings.protocol, classNames: [...FASHION_MNIST_CLASSES], imageSize: 28, channels: 3, timesteps: settings.timesteps, noiseSeed: SEED, inputs: ['images', 'noise', 'timesteps'] });

    const images = await testImages(IMAGES);
    const ids = pixelIds(images);
    const feeds = classifierFeeds(info, images);
    const exported = await exportedLogits(join(out, 'model.onnx'), feeds);
    expect(exported.logits.shape).toEqual([IMAGES, 10]);

    // The in-memory route: the model rebuilt from model.safetensors, fed by @diffssl/unet with the same seed and pixel-hash ids.
    const { model, settings: saved } = await loadSavedModel(out);
    expect(saved.noiseSeed).toBe(SEED);
    let want: HostTensor;
    if (model instanceof FeatureHeadClassifier) {
      const extractor = await createFeatureExtractor({ checkpoint: EMBEDDED_MODEL.checkpoint, config: embeddedFlags() as never, blocks: model.blocks, timesteps: model.timesteps, pool: model.prePoolSize, seed: saved.noiseSeed, runner: cpu });
      const features = await extractor.extract(images, { ids });
      await extractor.release();
      want = await headLogits(model, Object.fromEntries(features));
      if (settings.protocol === 'linear') {
        // The head once more, by hand from the saved weights: W x + b on the [64, 2, 2] features flattened channel-major.
        const weights = readSafetensors(readFileSync(join(out, 'model.safetensors'))).tensors;
        const weight = weights.get('fcs.0.weight')!;
        const bias = weights.get('fcs.0.bias')!.toArray();
        const feature = features.get(featureKey(50, 10))!;
        expect(feature.shape).toEqual([IMAGES, 64, 2, 2]);
        expect(weight.shape).toEqual([10, 256]);
        const w = weight.toArray();
        const byHand = Array.from({ length: IMAGES }, (_, i) => {
          const x = feature.data.subarray(i * 256, (i + 1) * 256);
          return bias.map((b, k) => x.reduce((sum, v, j) => sum + v * w[k * 256 + j]!, b));
        });
        expectClose(exported.logits, HostTensor.from('float64', [IMAGES, 10], byHand.flat()), 1e-4, 'exported vs by hand');
        // The comparison sees the noise: the extractor's default seed (0) gives other logits.
        const other = await createFeatureExtractor({ checkpoint: EMBEDDED_MODEL.checkpoint, config: embeddedFlags() as never, blocks: model.blocks, timesteps: model.timesteps, pool: model.prePoolSize, runner: cpu });
        const otherFeatures = await other.extract(images, { ids });
        await other.release();
        expect(relativeError(exported.logits, await headLogits(model, Object.fromEntries(otherFeatures)))).toBeGreaterThan(1e-3);
      }
    } else {
      expect(model).toBeInstanceOf(DifFeedModel);
      // DifFeed's two passes cannot come from the extractor: its own (training) graph, fed x_start and the noise drawn here.
      const size = 3 * 28 * 28;
      const difFeedFeeds: Record<string, HostTensor> = { [X_START]: images };
      for (const t of model.timesteps) {
        difFeedFeeds[noiseInput(t)] = HostTensor.from('float32', images.shape, ids.flatMap((id) => [...seededNoise(saved.noiseSeed, id, t, size, 'test')]));
      }
      want = await headLogits(model as DifFeedModel, difFeedFeeds);
    }
    expect(want.shape).toEqual([IMAGES, 10]);
    expectClose(exported.logits, want, 1e-4, `${settings.protocol}: exported vs in-memory logits`);
    expectClose(exported.probabilities, softmaxRows(want), 1e-5, `${settings.protocol}: exported probabilities vs softmax of the in-memory logits`);
    // The logits are not degenerate (a constant head would pass any comparison of predictions).
    expect(new Set(want.toArray().map((v) => v.toFixed(3))).size).toBeGreaterThan(IMAGES);
    const predicted = argmaxRows(want);
    expect(argmaxRows(exported.logits)).toEqual(predicted);
    expect(argmaxRows(exported.probabilities)).toEqual(predicted);
    expect(predicted.map((_, row) => topClasses(exported.logits, row, info.classNames, 1)[0]!.index)).toEqual(predicted);
  });
});
