/**
 * The exported classifier (`runProtocol({ exportModel: true })` -> model.onnx +
 * model.json) against an independent in-memory route: features from
 * `@diffssl/unet`'s `createFeatureExtractor` and the head rebuilt from the
 * run's `model.safetensors` (for DifFeed: q_sample, both U-Net passes run
 * separately, and the feedback networks and the head in float64 written out),
 * with the noise the sidecar prescribes.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BuildContext, compileModel, createRunner, Graph, HostTensor, readSafetensors } from '@diffssl/core';
import {
  batchNorm64,
  conv1x1_64,
  difFormer64,
  EMBEDDED_DATA,
  EMBEDDED_MODEL,
  embeddedFlags,
  expectClose,
  fromTensor64,
  relativeError,
  relu64,
  runOnnx,
  toTensor64,
} from '@diffssl/testing';
import { createFeatureExtractor, featureKey, pixelNoiseId, seededNoise } from '@diffssl/unet';
import { describe, expect, it, onTestFinished } from 'vitest';
import { FASHION_MNIST_CLASSES, readIdxDataset } from '../data/idx.js';
import { loadSavedModel } from '../pipeline/saved-model.js';
import { runProtocol, type RunOptions } from '../pipeline/run.js';
import { fusionKey } from '@diffssl/difformer';
import { DifFeedModel } from '../protocols/diffeed-model.js';
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

/**
 * DifFeed's logits composed here from separate parts, not from its own graph: x_t = q_sample written
 * out (guided-diffusion's linear betas in float64) with the noise the sidecar prescribes; the frozen
 * U-Net alone for the first pass; each feedback network (1x1 conv, BatchNorm with its running
 * statistics, ReLU) in float64 from the saved weights; the U-Net again with those outputs added after
 * their target blocks; AttentionFusion in float64 on the second pass's block.
 */
async function difFeedByParts(
  model: DifFeedModel,
  images: HostTensor<'float32'>,
  ids: number[],
  noiseSeed: number,
  saved: ReadonlyMap<string, HostTensor>,
): Promise<HostTensor> {
  const { unet } = model;
  expect(model.timesteps).toHaveLength(1);
  const t = model.timesteps[0]!;
  expect(unet.info.noiseSchedule).toBe('linear');
  const steps = unet.info.diffusionSteps;
  let alphaBar = 1;
  for (let s = 0; s <= t; s++) alphaBar *= 1 - ((1e-4 * 1000) / steps + (s * ((0.02 - 1e-4) * 1000)) / steps / (steps - 1));
  const size = images.size / IMAGES;
  const xt = new Float32Array(images.size);
  ids.forEach((id, row) => {
    const noise = seededNoise(noiseSeed, id, t, size, 'test');
    for (let i = 0; i < size; i++) xt[row * size + i] = Math.sqrt(alphaBar) * images.data[row * size + i]! + Math.sqrt(1 - alphaBar) * noise[i]!;
  });
  const timesteps = HostTensor.from(
    'int64',
    [IMAGES],
    ids.map(() => BigInt(t)),
  );
  const difFeed = model.classifier.difFeed;
  const first = new Graph();
  const firstBlocks = unet.build(first, {
    x: first.input('x', 'float32', images.shape),
    timesteps: first.input('t', 'int64', [IMAGES]),
    taps: difFeed.sources,
  }).blocks;
  const firstPass = await runOnnx(Object.fromEntries([...firstBlocks].map(([block, tensor]) => [`block${block}`, tensor])), {
    x: HostTensor.from('float32', images.shape, xt),
    t: timesteps,
  });
  const feedback = new Map<number, HostTensor>();
  difFeed.sources.forEach((source, i) => {
    const w = (name: string) => saved.get(`feedback_layers.${i}.${name}`)!.toArray();
    const conv = conv1x1_64(toTensor64(firstPass[`block${source}`]!), w('0.weight'), undefined, saved.get(`feedback_layers.${i}.1.weight`)!.shape[0]!);
    const normed = batchNorm64(conv, { weight: w('1.weight'), bias: w('1.bias'), runningMean: w('1.running_mean'), runningVar: w('1.running_var') }, 'eval');
    feedback.set(difFeed.targets.get(source)!, fromTensor64(relu64(normed.output)).cast('float32'));
  });
  // The statistics moved in training, so the eval-mode normalization is not the identity.
  expect(
    saved
      .get('feedback_layers.0.1.running_var')!
      .toArray()
      .some((v) => Math.abs(v - 1) > 1e-3),
  ).toBe(true);
  const second = new Graph();
  const inputs = new Map([...feedback].map(([target, tensor]) => [target, second.input(`feedback${target}`, 'float32', tensor.shape)]));
  const [block] = model.classifier.head.reads.secondPassBlocks;
  const secondBlocks = unet.build(second, {
    x: second.input('x', 'float32', images.shape),
    timesteps: second.input('t', 'int64', [IMAGES]),
    taps: [block!],
    feedback: inputs,
  }).blocks;
  const secondPass = await runOnnx(
    { block: secondBlocks.get(block!)! },
    {
      x: HostTensor.from('float32', images.shape, xt),
      t: timesteps,
      ...Object.fromEntries([...feedback].map(([target, tensor]) => [`feedback${target}`, tensor])),
    },
  );
  const key = fusionKey(t, block!, 'second');
  const head = (features: HostTensor) =>
    fromTensor64(
      difFormer64(new Map([[key, toTensor64(features)]]), saved, {
        timesteps: [t],
        keys: () => [key],
        blockOf: () => block!,
        prePoolSize: 7,
        normType: 'layer',
        heads: 2,
      }).logits,
    );
  const logits = head(secondPass.block!);
  // The feedback shows in the logits: the head on the plain pass's block gives others.
  const plain = new Graph();
  const plainBlock = unet
    .build(plain, { x: plain.input('x', 'float32', images.shape), timesteps: plain.input('t', 'int64', [IMAGES]), taps: [block!] })
    .blocks.get(block!)!;
  const { block: withoutFeedback } = await runOnnx({ block: plainBlock }, { x: HostTensor.from('float32', images.shape, xt), t: timesteps });
  expect(relativeError(logits, head(withoutFeedback!))).toBeGreaterThan(1e-3);
  return logits;
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
  [
    'diffeed (feedback 11, 13 -> 9, 7; head on block 10 at t=50)',
    { protocol: 'diffeed', blocks: [10], timesteps: [50], fusionArc: SMALL_ARC, feedbackFrom: [11, 13] },
  ],
];

describe('exportClassifier', () => {
  it.each(CASES)(
    'the exported %s gives the logits of an independent route from the U-Net and the saved weights, with the noise of its sidecar',
    async (_, settings) => {
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
      expect(info).toMatchObject({
        format: 'diffssl-classifier',
        protocol: settings.protocol,
        classNames: [...FASHION_MNIST_CLASSES],
        imageSize: 28,
        channels: 3,
        timesteps: settings.timesteps,
        noiseSeed: SEED,
        inputs: ['images', 'noise', 'timesteps'],
      });

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
        const extractor = await createFeatureExtractor({
          checkpoint: EMBEDDED_MODEL.checkpoint,
          config: embeddedFlags() as never,
          blocks: model.blocks,
          timesteps: model.timesteps,
          pool: model.prePoolSize,
          seed: saved.noiseSeed,
          runner: cpu,
        });
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
          const other = await createFeatureExtractor({
            checkpoint: EMBEDDED_MODEL.checkpoint,
            config: embeddedFlags() as never,
            blocks: model.blocks,
            timesteps: model.timesteps,
            pool: model.prePoolSize,
            runner: cpu,
          });
          const otherFeatures = await other.extract(images, { ids });
          await other.release();
          expect(relativeError(exported.logits, await headLogits(model, Object.fromEntries(otherFeatures)))).toBeGreaterThan(1e-3);
        }
      } else {
        expect(model).toBeInstanceOf(DifFeedModel);
        want = await difFeedByParts(model as DifFeedModel, images, ids, saved.noiseSeed, readSafetensors(readFileSync(join(out, 'model.safetensors'))).tensors);
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
    },
  );
});
