/**
 * UNetWeights and the trainable build: the weights as float32 module
 * parameters under their state-dict names, the same features as the frozen
 * build, and the refusals (float16 compute, dropout in training).
 */
import { BuildContext, ConfigError, Graph, HostTensor } from '@diffssl/core';
import { embeddedFlags, fixturePath, randomTensor, relativeError, runOnnx } from '@diffssl/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdmUNet, loadCheckpoint, type GuidedDiffusionFlags } from './index.js';

let weights: Map<string, HostTensor>;
let flags: GuidedDiffusionFlags;
beforeAll(async () => {
  weights = await loadCheckpoint(fixturePath('adm-fm28.pt'));
  flags = embeddedFlags() as unknown as GuidedDiffusionFlags;
});

describe('UNetWeights', () => {
  it('holds every checkpoint tensor as a trainable float32 parameter under its state-dict name, in checkpoint order', () => {
    const halves = new Map([...weights].map(([name, tensor]) => [name, tensor.cast('float16')]));
    const module = new AdmUNet(flags, halves).trainableWeights();
    expect([...module.stateDict().keys()]).toEqual([...weights.keys()]);
    for (const [name, tensor] of module.stateDict()) {
      expect(tensor.dtype, name).toBe('float32');
      expect(tensor.toArray(), name).toEqual(halves.get(name)!.cast('float32').toArray());
    }
    expect(module.namedParameters().every(([, tensor]) => tensor.trainable)).toBe(true);
    expect(() => module.tensor('nope.weight')).toThrow(/no weight 'nope.weight'/);
  });

  it('builds the same features through a context as from the checkpoint', async () => {
    const unet = new AdmUNet(flags, weights);
    const x = randomTensor([2, 3, 28, 28], 5);
    const t = HostTensor.from('int64', [2], [50n, 300n]);
    const frozen = new Graph();
    const frozenBlocks = unet.build(frozen, {
      x: frozen.input('x', 'float32', [2, 3, 28, 28]),
      timesteps: frozen.input('t', 'int64', [2]),
      taps: [6, 12],
    }).blocks;
    const graph = new Graph();
    const trainable = unet.trainableWeights();
    const context = new BuildContext(graph, trainable, { mode: 'train' });
    const blocks = unet.build(graph, {
      x: graph.input('x', 'float32', [2, 3, 28, 28]),
      timesteps: graph.input('t', 'int64', [2]),
      taps: [6, 12],
      trainable: { context, weights: trainable },
    }).blocks;
    const [a, b] = await Promise.all([
      runOnnx({ b6: frozenBlocks.get(6)!, b12: frozenBlocks.get(12)! }, { x, t }),
      runOnnx({ b6: blocks.get(6)!, b12: blocks.get(12)! }, { x, t }),
    ]);
    expect(relativeError(b.b6!, a.b6!)).toBeLessThan(1e-6);
    expect(relativeError(b.b12!, a.b12!)).toBeLessThan(1e-6);
    // Only the weights on the path to block 12 are used: none of blocks 13 and later (output_blocks.2-8), none of out.*.
    const used = context.trainableWeights().map(({ weight }) => weight.name!);
    expect(used.some((name) => name.startsWith('output_blocks.1.'))).toBe(true);
    expect(used.some((name) => /^(output_blocks\.[2-8]\.|out\.)/.test(name))).toBe(false);
  });

  it('refuses float16 compute and, in training mode, dropout', () => {
    const graph = new Graph();
    const x = graph.input('x', 'float32', [1, 3, 28, 28]);
    const timesteps = graph.input('t', 'int64', [1]);
    const unet = new AdmUNet(flags, weights);
    const trainable = unet.trainableWeights();
    const context = new BuildContext(graph, trainable, { mode: 'train' });
    expect(() => unet.build(graph, { x, timesteps, taps: [3], dtype: 'float16', trainable: { context, weights: trainable } })).toThrow(
      /builds in float32; found dtype float16/,
    );
    const withDropout = new AdmUNet({ ...flags, dropout: 0.1 }, weights);
    const own = withDropout.trainableWeights();
    const train = new BuildContext(graph, own, { mode: 'train' });
    expect(() => withDropout.build(graph, { x, timesteps, taps: [3], trainable: { context: train, weights: own } })).toThrow(ConfigError);
    expect(() => withDropout.build(graph, { x, timesteps, taps: [3], trainable: { context: train, weights: own } })).toThrow(
      /dropout 0.1; fine-tuning with dropout is not supported/,
    );
    // Evaluation has no dropout: the same model builds in eval mode.
    const evaluation = new BuildContext(graph, own, { mode: 'eval' });
    expect(withDropout.build(graph, { x, timesteps, taps: [3], trainable: { context: evaluation, weights: own } }).blocks.get(3)!.shape).toEqual([
      1, 32, 28, 28,
    ]);
  });
});
