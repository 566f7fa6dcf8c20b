import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BuildContext, compileModel, createRunner, Graph, HostTensor, adaptiveAvgPool2d } from '@diffssl/core';
import {
  adaptiveAvgPool64,
  EMBEDDED_DATA,
  EMBEDDED_MODEL,
  embeddedFlags,
  fixturePath,
  fromTensor64,
  linear64,
  randomTensor,
  relativeError,
  toTensor64,
} from '@diffssl/testing';
import { DifFormer } from '@diffssl/difformer';
import { AdmUNet, readTorchCheckpoint } from '@diffssl/unet';
import { describe, expect, it, onTestFinished } from 'vitest';
import { FASHION_MNIST_CLASSES } from '../data/idx.js';
import { openDataset } from '../data/open.js';
import { createProtocolModel } from '../heads/registry.js';
import { ensureFeatureCache } from '../pipeline/features.js';
import { cacheSource } from '../pipeline/sources.js';
import { loadUNet } from '../pipeline/unet-source.js';
import type { FeatureHeadClassifier } from './feature-head.js';

describe('FeatureHeadClassifier', () => {
  it('reads blocks larger than the pre-pool size as cached (pooled) features, and gives the logits the head gives the full maps', async () => {
    const unet = new AdmUNet(embeddedFlags() as never, await readTorchCheckpoint(fixturePath('adm-fm28.pt')));
    // Block 13 is 64 x 14 x 14; the cache holds it pooled to 7 x 7.
    const model = createProtocolModel(
      {
        protocol: 'difformer',
        blocks: [10, 13],
        timesteps: [50],
        prePoolSize: 7,
        fusionArc: 'Use_CLS_Token:True:16,Insert_CLS_Token,Attention:16:2:2:1,Extract_CLS_Token',
        numClasses: 10,
        seed: 1,
      },
      unet,
    ) as FeatureHeadClassifier;
    expect(model.features.get('t50/block13')).toEqual([64, 7, 7]);
    expect(model.head.stateDict().get('pre_layer.13.1.weight')!.shape).toEqual([64, 7, 7]);
    const full = { b10: randomTensor([3, 64, 7, 7], 1), b13: randomTensor([3, 64, 14, 14], 2) };
    // The pooled features, as the extractor writes them to the cache.
    const graph = new Graph();
    const pooled = adaptiveAvgPool2d(graph.input('x', 'float32', [3, 64, 14, 14]), 7);
    const runner = await createRunner(compileModel({ outputs: { pooled } }), { executionProviders: ['cpu'] });
    const { pooled: b13 } = await runner.run({ x: full.b13 });
    await runner.release();
    const logitsOf = async (features: Record<string, HostTensor>) => {
      const g = new Graph();
      const context = new BuildContext(g, model.modules());
      const inputs = new Map(Object.entries(features).map(([name, tensor]) => [name, g.input(name, 'float32', tensor.shape)]));
      const logits = model.forward(context, inputs);
      const r = await createRunner(compileModel({ outputs: { logits } }), { executionProviders: ['cpu'] });
      const out = (await r.run(features)).logits!;
      await r.release();
      return out;
    };
    const fromCache = await logitsOf({ 't50/block10': full.b10, 't50/block13': b13! });
    expect(fromCache.shape).toEqual([3, 10]);
    // A DifFormer sized from the full block metadata (as the reference's AttentionFusion) with the same weights
    // pools the 14 x 14 map to 7 x 7 itself: the same logits.
    const direct = DifFormer.fromUNet(unet, {
      firstPassBlocks: [10, 13],
      timesteps: [50],
      prePoolSize: 7,
      fusion: 'Use_CLS_Token:True:16,Insert_CLS_Token,Attention:16:2:2:1,Extract_CLS_Token',
      numClasses: 10,
    });
    direct.loadStateDict(model.head.stateDict());
    const g = new Graph();
    const context = new BuildContext(g, direct);
    const logits = direct.forward(
      context,
      new Map([
        ['t50/block10', g.input('a', 'float32', [3, 64, 7, 7])],
        ['t50/block13', g.input('b', 'float32', [3, 64, 14, 14])],
      ]),
    );
    const r = await createRunner(compileModel({ outputs: { logits } }), { executionProviders: ['cpu'] });
    const fromFull = (await r.run({ a: full.b10, b: full.b13 })).logits!;
    await r.release();
    expect(relativeError(fromCache, fromFull)).toBeLessThan(1e-5);
  });

  it('GD(L) through the protocol path: block 10 (7x7) cached pooled to 2x2 and read by the linear head gives float64 adaptive pooling 7 -> 2 (overlapping windows) and W x + b of the full maps', async () => {
    const root = mkdtempSync(join(tmpdir(), 'diffssl-gdl-'));
    onTestFinished(() => rmSync(root, { recursive: true, force: true }));
    const loaded = await loadUNet({ checkpoint: EMBEDDED_MODEL.checkpoint, config: EMBEDDED_MODEL.flagsFile });
    const model = createProtocolModel({ protocol: 'linear', blocks: [10], timesteps: [50], numClasses: 10, seed: 3 }, loaded.unet) as FeatureHeadClassifier;
    expect(model.prePoolSize).toBe(2);
    expect(loaded.unet.blocks[9]!.resolution).toBe(7);
    expect(model.features.get('t50/block10')).toEqual([64, 2, 2]);
    const dataset = await openDataset(EMBEDDED_DATA, { split: 'test', classes: FASHION_MNIST_CLASSES, limit: 6 });
    const indices = [0, 1, 2, 3, 4, 5];
    const features = async (pool: number) => {
      const { cache } = await ensureFeatureCache({
        unet: loaded,
        dataset,
        data: 'fm-test-6',
        blocks: model.blocks,
        timesteps: model.timesteps,
        pool,
        noiseSeed: 4,
        split: 'test',
        root,
        runner: { executionProviders: ['cpu'] },
      });
      try {
        return (await cacheSource(cache, dataset, ['t50/block10']).read(indices, { epoch: 0, training: false }))['t50/block10']!;
      } finally {
        await cache.close();
      }
    };
    // What the protocol caches and feeds the head, and (pool 7: no pooling) the full maps with the same noise.
    const [pooled, full] = [await features(model.prePoolSize), await features(7)];
    expect(pooled.shape).toEqual([6, 64, 2, 2]);
    expect(full.shape).toEqual([6, 64, 7, 7]);
    const byHandPooled = adaptiveAvgPool64(toTensor64(full), 2);
    expect(relativeError(pooled, fromTensor64(byHandPooled), 0)).toBeLessThanOrEqual(1e-5);
    // Not the same as non-overlapping 3x3 windows (a 7 -> 2 pooling that drops the middle row and column).
    const dropped = Array.from({ length: 6 * 64 * 4 }, (_, i) => {
      const [plane, cell] = [Math.floor(i / 4), i % 4];
      const [r0, c0] = [Math.floor(cell / 2) * 4, (cell % 2) * 4];
      let sum = 0;
      for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) sum += full.toArray()[plane * 49 + (r0 + r) * 7 + c0 + c]!;
      return sum / 9;
    });
    expect(relativeError(pooled, HostTensor.from('float64', [6, 64, 2, 2], dropped), 0)).toBeGreaterThan(1e-3);
    const graph = new Graph();
    const context = new BuildContext(graph, model.modules(), { mode: 'eval' });
    const logits = model.forward(context, new Map([['t50/block10', graph.input('t50/block10', 'float32', ['batch', 64, 2, 2])]]));
    const runner = await createRunner(compileModel({ outputs: { logits } }), { executionProviders: ['cpu'] });
    const fromProtocol = (await runner.run({ 't50/block10': pooled })).logits!;
    await runner.release();
    const weights = model.head.stateDict();
    const want = linear64({ shape: [6, 256], data: byHandPooled.data }, weights.get('fcs.0.weight')!.toArray(), weights.get('fcs.0.bias')!.toArray(), 10);
    expect(relativeError(fromProtocol, fromTensor64(want))).toBeLessThanOrEqual(1e-4);
  });
});
