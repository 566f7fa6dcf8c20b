/**
 * DifFormer against the reference AttentionFusion (assets/fixtures/heads.safetensors, cases
 * `attention` and `difformer`): logits, loss, every gradient and every parameter after one SGD step;
 * then `norm_type batch` (eval mode, and train mode for one timestep) against a float64 forward written
 * out in `@diffssl/testing`, itself checked against the reference's logits.
 */
import { BuildContext, Graph, HostTensor } from '@diffssl/core';
import {
  difFormer64,
  expectMatchesReferenceStep,
  fromTensor64,
  loadTensorFixture,
  randomTensor,
  referenceStep,
  relativeError,
  runHeadStep,
  runOnnx,
  toTensor64,
  type TensorFixture,
} from '@diffssl/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { DifFormer, fusionKey } from './index.js';

let fixture: TensorFixture;
beforeAll(() => {
  fixture = loadTensorFixture('heads.safetensors');
});

interface FusionCase {
  fusion_arc: string;
  blocks: number[];
  t_list: number[];
  norm_type: 'layer' | 'batch';
  pre_pool_size: number;
  num_classes: number;
}

describe.each(['attention', 'difformer'])('DifFormer, reference case %s', (name) => {
  it('matches logits, loss, every gradient and every parameter update of one SGD step', async () => {
    const config = JSON.parse(fixture.metadata[name]!) as FusionCase;
    const inputs = fixture.group(`${name}/input/`);
    // Channels and sizes come from the input tensors, as a user's U-Net metadata would give them.
    const blocks = config.blocks.map((block) => {
      const tensor = inputs.get(fusionKey(config.t_list[0]!, block))!;
      return { block, channels: tensor.shape[1]!, resolution: tensor.shape[2]! };
    });
    const fusion = new DifFormer({
      blocks,
      firstPassBlocks: config.blocks,
      timesteps: config.t_list,
      fusion: config.fusion_arc,
      normType: config.norm_type,
      prePoolSize: config.pre_pool_size,
      numClasses: config.num_classes,
    });
    fusion.loadStateDict(fixture.group(`${name}/param/`));
    const result = await runHeadStep(
      fusion,
      (context, graph) => {
        const features = new Map([...inputs].map(([key, tensor]) => [key, graph.input(key, 'float32', ['batch', ...tensor.shape.slice(1)])]));
        return { logits: fusion.forward(context, features), feeds: Object.fromEntries(inputs) };
      },
      fixture.tensor('labels'),
      Number(fixture.metadata[`${name}/lr`]),
    );
    expectMatchesReferenceStep(result, referenceStep(fixture, name), name);
  });
});

describe('DifFormer construction', () => {
  const fusionArc = 'Use_CLS_Token:True:16,Insert_CLS_Token,Attention:16:2:2:1,Extract_CLS_Token';
  const blocks = [
    { block: 5, channels: 8, resolution: 14 },
    { block: 9, channels: 12, resolution: 4 },
  ];

  it('sizes every pre-layer from the block metadata and names them by block', () => {
    const fusion = new DifFormer({
      blocks,
      firstPassBlocks: [9, 5],
      secondPassBlocks: [5],
      timesteps: [10, 20, 30],
      fusion: fusionArc,
      prePoolSize: 7,
      numClasses: 4,
      normType: 'batch',
    });
    const shapes = Object.fromEntries([...fusion.stateDict()].map(([n, t]) => [n, t.shape.join('x')]));
    expect(shapes['pre_layer.5.1.running_var']).toBe('8');
    expect(shapes['pre_layer.5.2.weight']).toBe('16x8x1x1');
    expect(shapes['pre_layer.9.2.weight']).toBe('16x12x1x1');
    expect(shapes['head.weight']).toBe('4x48');
    expect(fusion.featureKeys().slice(0, 3)).toEqual(['t10/block09', 't10/block05', 't10/second/block05']);
    const layerNorm = new DifFormer({ blocks, firstPassBlocks: [5, 9], timesteps: [10], fusion: fusionArc, prePoolSize: 7, numClasses: 4 });
    // min(14, 7) = 7 for block 5; min(4, 7) = 4 for block 9.
    expect(layerNorm.stateDict().get('pre_layer.5.1.weight')!.shape).toEqual([8, 7, 7]);
    expect(layerNorm.stateDict().get('pre_layer.9.1.weight')!.shape).toEqual([12, 4, 4]);
  });

  it('refuses missing metadata, missing features and features that do not fit', () => {
    expect(() => new DifFormer({ blocks, firstPassBlocks: [6], timesteps: [10], fusion: fusionArc, prePoolSize: 7, numClasses: 4 })).toThrow(
      /no metadata for block 6; blocks given: 5, 9/,
    );
    expect(() => new DifFormer({ blocks, firstPassBlocks: [5], timesteps: [], fusion: fusionArc, prePoolSize: 7, numClasses: 4 })).toThrow(
      /at least one timestep/,
    );
    expect(() => new DifFormer({ blocks, firstPassBlocks: [5], timesteps: [10], fusion: 'Reshape,FullyPool', prePoolSize: 7, numClasses: 4 })).toThrow(
      /CLS token or an Attention layer/,
    );
    const fusion = new DifFormer({ blocks, firstPassBlocks: [5, 9], timesteps: [10], fusion: fusionArc, prePoolSize: 7, numClasses: 4 });
    const graph = new Graph();
    const context = new BuildContext(graph, fusion);
    const x5 = graph.input('a', 'float32', ['batch', 8, 14, 14]);
    expect(() => fusion.forward(context, new Map([[fusionKey(10, 5), x5]]))).toThrow(/missing feature 't10\/block09'/);
    const wrong = graph.input('b', 'float32', ['batch', 8, 7, 7]);
    expect(() =>
      fusion.forward(
        context,
        new Map([
          [fusionKey(10, 5), wrong],
          [fusionKey(10, 9), x5],
        ]),
      ),
    ).toThrow(/'t10\/block05' must be \[batch, 8, 14, 14\]/);
  });

  it('reads dims and sizes from any U-Net metadata source', () => {
    const unet = { block: (n: number) => ({ channels: n * 4, resolution: 28 / (n > 4 ? 2 : 1), number: n }) };
    const fusion = DifFormer.fromUNet(unet, { firstPassBlocks: [3, 8], timesteps: [50], fusion: fusionArc, prePoolSize: 7, numClasses: 10 });
    expect(fusion.stateDict().get('pre_layer.8.2.weight')!.shape).toEqual([16, 32, 1, 1]);
    expect(fusion.stateDict().get('pre_layer.3.1.weight')!.shape).toEqual([12, 7, 7]);
  });
});

describe('DifFormer numerics against a float64 forward written out (plain loops)', () => {
  const timesteps = [50, 150];
  const blocks = [10, 12, 14];
  const heads = 4;
  const keys = (t: number) => blocks.map((block) => fusionKey(t, block));
  const blockOf = (key: string) => Number(/block(\d+)$/.exec(key)![1]);

  function batchNormFusion(tList: number[]) {
    const config = JSON.parse(fixture.metadata.difformer!) as FusionCase;
    const inputs = fixture.group('difformer/input/');
    const info = blocks.map((block) => ({
      block,
      channels: inputs.get(fusionKey(50, block))!.shape[1]!,
      resolution: inputs.get(fusionKey(50, block))!.shape[2]!,
    }));
    const fusion = new DifFormer({
      blocks: info,
      firstPassBlocks: blocks,
      timesteps: tList,
      fusion: config.fusion_arc,
      normType: 'batch',
      prePoolSize: config.pre_pool_size,
      numClasses: config.num_classes,
    });
    // The fixture's conv, attention and classifier weights; BatchNorm's affine weights and running statistics drawn here, away from 1 and 0.
    const weights = new Map([...fixture.group('difformer/param/')].filter(([name]) => !/^pre_layer\.\d+\.1\./.test(name)));
    if (tList.length === 1) {
      const head = weights.get('head.weight')!;
      const width = head.shape[1]! / 2;
      weights.set(
        'head.weight',
        HostTensor.from(
          'float32',
          [head.shape[0]!, width],
          Array.from({ length: head.shape[0]! * width }, (_, i) => head.toArray()[Math.floor(i / width) * 2 * width + (i % width)]!),
        ),
      );
    }
    blocks.forEach((block, i) => {
      const channels = info[i]!.channels;
      weights.set(`pre_layer.${block}.1.weight`, randomTensor([channels], 10 + i, 0.5, 1.5));
      weights.set(`pre_layer.${block}.1.bias`, randomTensor([channels], 20 + i, -0.5, 0.5));
      weights.set(`pre_layer.${block}.1.running_mean`, randomTensor([channels], 30 + i, -0.3, 0.3));
      weights.set(`pre_layer.${block}.1.running_var`, randomTensor([channels], 40 + i, 0.2, 3));
      weights.set(`pre_layer.${block}.1.num_batches_tracked`, fusion.stateDict().get(`pre_layer.${block}.1.num_batches_tracked`)!);
    });
    fusion.loadStateDict(weights);
    const features = new Map([...inputs].filter(([key]) => tList.some((t) => key.startsWith(`t${t}/`))));
    return { fusion, weights, features };
  }

  it('the float64 forward reproduces the reference logits of the attention and difformer cases (so it can judge the others)', () => {
    for (const name of ['attention', 'difformer']) {
      const config = JSON.parse(fixture.metadata[name]!) as FusionCase;
      const features = new Map([...fixture.group(`${name}/input/`)].map(([key, tensor]) => [key, toTensor64(tensor)]));
      const { logits } = difFormer64(features, fixture.group(`${name}/param/`), {
        timesteps: config.t_list,
        keys: (t) => config.blocks.map((b) => fusionKey(t, b)),
        blockOf,
        prePoolSize: config.pre_pool_size,
        normType: 'layer',
        heads,
      });
      expect(relativeError(fromTensor64(logits), fixture.tensor(`${name}/logits`)), name).toBeLessThanOrEqual(1e-4);
    }
  });

  it('with norm_type batch in eval mode (running statistics), gives the float64 logits over 3 blocks x 2 timesteps', async () => {
    const { fusion, weights, features } = batchNormFusion(timesteps);
    const graph = new Graph();
    const context = new BuildContext(graph, fusion, { mode: 'eval' });
    const inputs = new Map([...features].map(([key, tensor]) => [key, graph.input(key, 'float32', ['batch', ...tensor.shape.slice(1)])]));
    const { logits } = await runOnnx({ logits: fusion.forward(context, inputs) }, Object.fromEntries(features));
    const want = difFormer64(new Map([...features].map(([key, tensor]) => [key, toTensor64(tensor)])), weights, {
      timesteps,
      keys,
      blockOf,
      prePoolSize: 7,
      normType: 'batch',
      batchMode: 'eval',
      heads,
    });
    expect(relativeError(logits!, fromTensor64(want.logits))).toBeLessThanOrEqual(1e-4);
    // The running statistics matter: with LayerNorm's statistics (or none) the logits differ.
    const batchStatistics = difFormer64(new Map([...features].map(([key, tensor]) => [key, toTensor64(tensor)])), weights, {
      timesteps,
      keys,
      blockOf,
      prePoolSize: 7,
      normType: 'batch',
      batchMode: 'train',
      heads,
    });
    expect(relativeError(logits!, fromTensor64(batchStatistics.logits))).toBeGreaterThan(1e-2);
  });

  it('with norm_type batch in train mode (one timestep), normalizes with batch statistics and moves the running statistics as PyTorch', async () => {
    const { fusion, weights, features } = batchNormFusion([150]);
    const result = await runHeadStep(
      fusion,
      (context, graph) => {
        const inputs = new Map([...features].map(([key, tensor]) => [key, graph.input(key, 'float32', ['batch', ...tensor.shape.slice(1)])]));
        return { logits: fusion.forward(context, inputs), feeds: Object.fromEntries(features) };
      },
      fixture.tensor('labels'),
      0.01,
    );
    const want = difFormer64(new Map([...features].map(([key, tensor]) => [key, toTensor64(tensor)])), weights, {
      timesteps: [150],
      keys,
      blockOf,
      prePoolSize: 7,
      normType: 'batch',
      batchMode: 'train',
      heads,
    });
    expect(relativeError(result.logits, fromTensor64(want.logits))).toBeLessThanOrEqual(1e-4);
    for (const block of blocks) {
      for (const buffer of ['running_mean', 'running_var']) {
        const name = `pre_layer.${block}.1.${buffer}`;
        const expected = HostTensor.from('float64', [want.buffers.get(name)!.length], want.buffers.get(name)!);
        expect(relativeError(result.buffers.get(name)!, expected), name).toBeLessThanOrEqual(1e-5);
        // It moved: a step that left the statistics alone would fail.
        expect(relativeError(weights.get(name)!, expected), name).toBeGreaterThan(1e-3);
      }
    }
  });
});
