import { compileModel, createRunner, Graph, HostTensor } from '@diffssl/core';
import { embeddedFlags } from '@diffssl/testing';
import { describe, expect, it } from 'vitest';
import { AdmUNet, admConfig, initialAdmWeights } from './index.js';

describe('initialAdmWeights (the random U-Net baseline)', () => {
  const config = admConfig(embeddedFlags() as never);

  it('draws PyTorch default initializations and guided-diffusion zero_module zeros, by seed', () => {
    const weights = initialAdmWeights(config, 3);
    const stem = weights.get('input_blocks.0.0.weight')!.toArray();
    // fan_in of the first conv: 3 channels x 3 x 3.
    expect(Math.max(...stem.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(27));
    expect(Math.max(...stem.map(Math.abs))).toBeGreaterThan(0.9 / Math.sqrt(27));
    for (const name of [
      'input_blocks.2.0.out_layers.3.weight',
      'input_blocks.2.0.out_layers.3.bias',
      'out.2.weight',
      'out.2.bias',
      'middle_block.1.proj_out.weight',
    ]) {
      expect(
        weights
          .get(name)!
          .toArray()
          .every((v) => v === 0),
        name,
      ).toBe(true);
    }
    expect(
      weights
        .get('middle_block.1.norm.weight')!
        .toArray()
        .every((v) => v === 1),
    ).toBe(true);
    expect(initialAdmWeights(config, 3).get('time_embed.0.weight')!.toArray()).toEqual(weights.get('time_embed.0.weight')!.toArray());
    expect(initialAdmWeights(config, 4).get('time_embed.0.weight')!.toArray()).not.toEqual(weights.get('time_embed.0.weight')!.toArray());
    const conditional = initialAdmWeights(admConfig({ ...(embeddedFlags() as object), class_cond: true } as never), 1)
      .get('label_emb.weight')!
      .toArray();
    const variance = conditional.reduce((a, v) => a + v * v, 0) / conditional.length;
    expect(Math.abs(variance - 1)).toBeLessThan(0.1);
  });

  it("draws every Linear and Conv weight and bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in from the weight's own shape (KS test on the pooled draws)", () => {
    const weights = initialAdmWeights(config, 11);
    // Scaled by the bound PyTorch would use, every drawn value is U(-1, 1): fan_in = shape[1] x kernel size, the bias that of its weight.
    const scaled: number[] = [];
    let tensors = 0;
    for (const [name, tensor] of weights) {
      const values = tensor.toArray();
      if (values.every((v) => v === 0 || v === 1)) continue;
      const weight = name.endsWith('.bias') ? weights.get(name.replace(/bias$/, 'weight'))! : tensor;
      expect(weight.shape.length, name).toBeGreaterThanOrEqual(2);
      const fanIn = weight.shape.slice(1).reduce((a, b) => a * b, 1);
      const bound = 1 / Math.sqrt(fanIn);
      expect(
        values.reduce((a, v) => Math.max(a, Math.abs(v)), 0),
        name,
      ).toBeLessThanOrEqual(bound);
      // Large tensors reach close to their bound: a bound drawn from a wrong fan_in (too small) would not.
      if (values.length >= 2000)
        expect(
          values.reduce((a, v) => Math.max(a, Math.abs(v)), 0),
          name,
        ).toBeGreaterThan(0.99 * bound);
      for (const v of values) scaled.push(v / bound);
      tensors++;
    }
    expect(tensors).toBeGreaterThan(50);
    expect(scaled.length).toBeGreaterThan(100_000);
    const sorted = Float64Array.from(scaled).sort();
    let statistic = 0;
    sorted.forEach((x, i) => {
      const cdf = (x + 1) / 2;
      statistic = Math.max(statistic, Math.abs((i + 1) / sorted.length - cdf), Math.abs(cdf - i / sorted.length));
    });
    // The KS critical value at significance 0.001.
    expect(statistic).toBeLessThan(1.95 / Math.sqrt(sorted.length));
  });

  it('builds a U-Net whose residual branches and output start at zero', async () => {
    const unet = new AdmUNet(config, initialAdmWeights(config, 0));
    const graph = new Graph();
    const x = graph.input('x', 'float32', ['batch', 3, 28, 28]);
    const t = graph.input('t', 'int64', ['batch']);
    const { blocks, output } = unet.build(graph, { x, timesteps: t, taps: [2, 3], output: true });
    const runner = await createRunner(compileModel({ outputs: { b2: blocks.get(2)!, b3: blocks.get(3)!, out: output! } }), { executionProviders: ['cpu'] });
    const input = HostTensor.from(
      'float32',
      [1, 3, 28, 28],
      Array.from({ length: 3 * 784 }, (_, i) => Math.sin(i)),
    );
    const result = await runner.run({ x: input, t: HostTensor.from('int64', [1], [50n]) });
    await runner.release();
    // Block 3 is a ResBlock 32 -> 32 whose zero-initialized last conv makes it the identity.
    expect(result.b3!.toArray()).toEqual(result.b2!.toArray());
    expect(result.b2!.toArray().some((v) => v !== 0)).toBe(true);
    expect(result.out!.toArray().every((v) => v === 0)).toBe(true);
  });
});
