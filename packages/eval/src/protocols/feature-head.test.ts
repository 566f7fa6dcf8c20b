import { BuildContext, compileModel, createRunner, Graph, HostTensor, adaptiveAvgPool2d } from '@diffssl/core';
import { embeddedFlags, fixturePath, randomTensor, relativeError } from '@diffssl/testing';
import { DifFormer } from '@diffssl/difformer';
import { AdmUNet, readTorchCheckpoint } from '@diffssl/unet';
import { describe, expect, it } from 'vitest';
import { createProtocolModel } from '../heads/registry.js';
import type { FeatureHeadClassifier } from './feature-head.js';

describe('FeatureHeadClassifier', () => {
  it('reads blocks larger than the pre-pool size as cached (pooled) features, and gives the logits the head gives the full maps', async () => {
    const unet = new AdmUNet(embeddedFlags() as never, await readTorchCheckpoint(fixturePath('adm-fm28.pt')));
    // Block 13 is 64 x 14 x 14; the cache holds it pooled to 7 x 7.
    const model = createProtocolModel({ protocol: 'difformer', blocks: [10, 13], timesteps: [50], prePoolSize: 7, fusionArc: 'Use_CLS_Token:True:16,Insert_CLS_Token,Attention:16:2:2:1,Extract_CLS_Token', numClasses: 10, seed: 1 }, unet) as FeatureHeadClassifier;
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
    const direct = DifFormer.fromUNet(unet, { firstPassBlocks: [10, 13], timesteps: [50], prePoolSize: 7, fusion: 'Use_CLS_Token:True:16,Insert_CLS_Token,Attention:16:2:2:1,Extract_CLS_Token', numClasses: 10 });
    direct.loadStateDict(model.head.stateDict());
    const g = new Graph();
    const context = new BuildContext(g, direct);
    const logits = direct.forward(context, new Map([['t50/block10', g.input('a', 'float32', [3, 64, 7, 7])], ['t50/block13', g.input('b', 'float32', [3, 64, 14, 14])]]));
    const r = await createRunner(compileModel({ outputs: { logits } }), { executionProviders: ['cpu'] });
    const fromFull = (await r.run({ a: full.b10, b: full.b13 })).logits!;
    await r.release();
    expect(relativeError(fromCache, fromFull)).toBeLessThan(1e-5);
  });
});
