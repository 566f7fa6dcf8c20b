/**
 * DifFormer with `norm_type batch` over several timesteps, against PyTorch's
 * semantics written out in float64 (@diffssl/testing's float64-reference):
 * the reference's AttentionFusion applies each block's pre-layer once per
 * timestep, in t_list order, so in training mode each application normalizes
 * with its own batch statistics and updates the running statistics once,
 * chained, and num_batches_tracked advances by the number of timesteps.
 */
import { BuildContext, compileModuleTrainStep, crossEntropy, Graph, HostTensor, sgd } from '@diffssl/core';
import { adaptiveAvgPool64, batchNorm64, conv1x1_64, randomTensor, relativeError, runOnnx, toTensor64 } from '@diffssl/testing';
import { describe, expect, it } from 'vitest';
import { DifFormer, fusionKey } from './index.js';

// Uneven channel counts, and sizes (7 and 5) that a pool size of 3 does not divide.
const BLOCKS = [
  { block: 3, channels: 5, resolution: 7 },
  { block: 6, channels: 12, resolution: 5 },
];
const TIMESTEPS = [10, 50, 150];
const PRE_POOL = 3;
const BATCH = 6;
const FUSION_ARC = 'Use_CLS_Token:True:8,Insert_CLS_Token,Attention:8:2:2:1,Extract_CLS_Token';

function makeFusion(): DifFormer {
  const fusion = new DifFormer({
    blocks: BLOCKS,
    firstPassBlocks: BLOCKS.map((b) => b.block),
    timesteps: TIMESTEPS,
    fusion: FUSION_ARC,
    normType: 'batch',
    prePoolSize: PRE_POOL,
    numClasses: 4,
    seed: 3,
  });
  // Start from non-default BatchNorm weights and running statistics, so that neither a skipped nor a repeated update goes unnoticed.
  const state = fusion.stateDict();
  BLOCKS.forEach(({ block, channels }, i) => {
    state.set(`pre_layer.${block}.1.weight`, randomTensor([channels], 10 + i, 0.5, 1.5));
    state.set(`pre_layer.${block}.1.bias`, randomTensor([channels], 20 + i, -0.5, 0.5));
    state.set(`pre_layer.${block}.1.running_mean`, randomTensor([channels], 30 + i, -0.2, 0.2));
    state.set(`pre_layer.${block}.1.running_var`, randomTensor([channels], 40 + i, 0.5, 2));
  });
  fusion.loadStateDict(state);
  return fusion;
}

/** Each timestep's features differ in scale and offset, so each application's batch statistics differ. */
function makeFeatures(): Map<string, HostTensor<'float32'>> {
  const features = new Map<string, HostTensor<'float32'>>();
  TIMESTEPS.forEach((t, ti) => {
    BLOCKS.forEach(({ block, channels, resolution }, bi) => {
      const base = randomTensor([BATCH, channels, resolution, resolution], 100 * ti + bi, -1 - ti, 1 + 2 * ti);
      features.set(
        fusionKey(t, block),
        HostTensor.from(
          'float32',
          base.shape,
          base.toArray().map((v) => v + 0.3 * ti),
        ),
      );
    });
  });
  return features;
}

/** One BatchNorm's state as the reference keeps it: weights, running statistics, and how many times it was applied in training. */
interface BatchNormState {
  weight: number[];
  bias: number[];
  runningMean: number[];
  runningVar: number[];
  applications: number;
}

function batchNormState(fusion: DifFormer, block: number): BatchNormState {
  const state = fusion.stateDict();
  const read = (name: string) => state.get(`pre_layer.${block}.1.${name}`)!.toArray();
  return { weight: read('weight'), bias: read('bias'), runningMean: read('running_mean'), runningVar: read('running_var'), applications: 0 };
}

/**
 * The pre-layer of `block` in float64 (pool, BatchNorm in training, 1x1 conv), as tokens [B, s*s, dim]. Like PyTorch's
 * in-place buffers, the application starts from `state`'s running statistics and leaves its own there.
 */
function referenceTokens(fusion: DifFormer, block: number, x: HostTensor, state: BatchNormState): Float64Array {
  const { output, runningMean, runningVar } = batchNorm64(adaptiveAvgPool64(toTensor64(x), PRE_POOL), state, 'train');
  Object.assign(state, { runningMean, runningVar, applications: state.applications + 1 });
  const weights = fusion.stateDict();
  const bias = weights.get(`pre_layer.${block}.2.bias`)!.toArray();
  const conv = conv1x1_64(output, weights.get(`pre_layer.${block}.2.weight`)!.toArray(), bias, bias.length);
  // [B, dim, s, s] -> [B, s*s, dim].
  const [n, dim, s] = conv.shape as [number, number, number];
  const tokens = new Float64Array(conv.data.length);
  for (let b = 0; b < n; b++)
    for (let p = 0; p < s * s; p++) for (let d = 0; d < dim; d++) tokens[(b * s * s + p) * dim + d] = conv.data[(b * dim + d) * s * s + p]!;
  return tokens;
}

describe('DifFormer with BatchNorm over several timesteps (training mode)', () => {
  it('normalizes each timestep with its own batch statistics and chains the running-statistic updates in t_list order', async () => {
    const fusion = makeFusion();
    const features = makeFeatures();
    const graph = new Graph();
    const context = new BuildContext(graph, fusion, { mode: 'train' });
    const outputs: Record<string, ReturnType<typeof graph.input>> = {};
    const feeds: Record<string, HostTensor> = {};
    // The order of DifFormer.forward: timesteps outside, blocks inside.
    for (const t of TIMESTEPS) {
      for (const { block } of BLOCKS) {
        const key = fusionKey(t, block);
        const input = graph.input(key, 'float32', ['batch', ...features.get(key)!.shape.slice(1)]);
        feeds[key] = features.get(key)!;
        outputs[`tokens/${key}`] = fusion.preLayers.get(String(block)).forward(context, input);
      }
    }
    for (const [weight, update] of context.bufferUpdates()) outputs[`buffer/${weight.name}`] = update;
    const result = await runOnnx(outputs, feeds);
    for (const { block } of BLOCKS) {
      const state = batchNormState(fusion, block);
      const initial = batchNormState(fusion, block);
      for (const t of TIMESTEPS) {
        const key = fusionKey(t, block);
        const expected = referenceTokens(fusion, block, features.get(key)!, state);
        const actual = result[`tokens/${key}`]!;
        expect(relativeError(actual, HostTensor.from('float64', actual.shape, expected)), `tokens ${key}`).toBeLessThan(1e-5);
      }
      const mean = result[`buffer/pre_layer.${block}.1.running_mean`]!;
      const variance = result[`buffer/pre_layer.${block}.1.running_var`]!;
      expect(relativeError(mean, HostTensor.from('float64', mean.shape, state.runningMean), 0), `running_mean of block ${block}`).toBeLessThan(1e-5);
      expect(relativeError(variance, HostTensor.from('float64', variance.shape, state.runningVar), 0), `running_var of block ${block}`).toBeLessThan(1e-5);
      // A control: one update from the initial statistics (the last timestep's alone) lands far from three chained ones.
      const lastOnly = adaptiveAvgPool64(toTensor64(features.get(fusionKey(TIMESTEPS.at(-1)!, block))!), PRE_POOL);
      const single = batchNorm64(lastOnly, initial, 'train');
      expect(relativeError(mean, HostTensor.from('float64', mean.shape, single.runningMean), 0)).toBeGreaterThan(1e-2);
    }
  });

  it('advances running statistics and num_batches_tracked once per timestep through a compiled train step', async () => {
    const fusion = makeFusion();
    const features = makeFeatures();
    const expected = new Map(BLOCKS.map(({ block }) => [block, batchNormState(fusion, block)]));
    for (const t of TIMESTEPS) {
      for (const { block } of BLOCKS) referenceTokens(fusion, block, features.get(fusionKey(t, block))!, expected.get(block)!);
    }
    const graph = new Graph();
    const context = new BuildContext(graph, fusion, { mode: 'train' });
    const inputs = new Map([...features].map(([key, tensor]) => [key, graph.input(key, 'float32', ['batch', ...tensor.shape.slice(1)])]));
    const logits = fusion.forward(context, inputs);
    const step = await compileModuleTrainStep({
      context,
      loss: crossEntropy(logits, graph.input('labels', 'int64', ['batch'])),
      optimizer: sgd(),
      runner: { executionProviders: ['cpu'] },
    });
    const labels = HostTensor.from('int64', [BATCH], [0n, 1n, 2n, 3n, 0n, 1n]);
    await step.run({ ...Object.fromEntries(features), labels }, { learningRate: 0.05 });
    step.syncModules();
    await step.release();
    const state = fusion.stateDict();
    for (const { block } of BLOCKS) {
      const reference = expected.get(block)!;
      expect(Number(state.get(`pre_layer.${block}.1.num_batches_tracked`)!.get())).toBe(TIMESTEPS.length);
      expect(reference.applications).toBe(TIMESTEPS.length);
      const mean = state.get(`pre_layer.${block}.1.running_mean`)!;
      const variance = state.get(`pre_layer.${block}.1.running_var`)!;
      expect(relativeError(mean, HostTensor.from('float64', mean.shape, reference.runningMean), 0)).toBeLessThan(1e-5);
      expect(relativeError(variance, HostTensor.from('float64', variance.shape, reference.runningVar), 0)).toBeLessThan(1e-5);
    }
  });
});
