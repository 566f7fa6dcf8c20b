/**
 * The heads against the reference PyTorch implementation (assets/fixtures/heads.safetensors):
 * logits, loss, every gradient and every parameter after one plain SGD step, under the reference's names.
 */
import { HostTensor } from '@diffssl/core';
import {
  adaptiveAvgPool64,
  expectMatchesReferenceStep,
  fromTensor64,
  linear64,
  loadTensorFixture,
  randomTensor,
  referenceStep,
  relativeError,
  relu64,
  runHeadStep,
  toTensor64,
  type TensorFixture,
} from '@diffssl/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { AttentionHead, LinearHead } from './index.js';

let fixture: TensorFixture;
beforeAll(() => {
  fixture = loadTensorFixture('heads.safetensors');
});

function expectCase(name: string, result: Awaited<ReturnType<typeof runHeadStep>>, unused: string[] = []): void {
  expectMatchesReferenceStep(result, referenceStep(fixture, name), name);
  for (const parameter of unused) expect(result.grads.has(parameter)).toBe(false);
}

describe('LinearHead (GD(L)) against the reference Head', () => {
  it('matches logits, loss, gradients and parameters after one SGD step', async () => {
    const config = JSON.parse(fixture.metadata.linear!) as { pre_pool_size: number };
    const input = fixture.tensor('linear/input');
    const head = new LinearHead({ channels: input.shape[1]!, numClasses: 10, prePoolSize: config.pre_pool_size });
    head.loadStateDict(fixture.group('linear/param/'));
    const result = await runHeadStep(
      head,
      (context, graph) => ({ logits: head.forward(context, graph.input('x', 'float32', ['batch', ...input.shape.slice(1)])), feeds: { x: input } }),
      fixture.tensor('labels'),
      Number(fixture.metadata['linear/lr']),
    );
    expectCase('linear', result);
  });

  it('builds the MLP of head_arc with the reference names and refuses a malformed one', () => {
    const head = new LinearHead({ channels: 8, numClasses: 3, prePoolSize: 2, headArc: '16_4' });
    expect([...head.stateDict()].map(([name, t]) => `${name}:${t.shape.join('x')}`)).toEqual([
      'fcs.0.weight:16x32',
      'fcs.0.bias:16',
      'fcs.1.weight:4x16',
      'fcs.1.bias:4',
      'fcs.2.weight:3x4',
      'fcs.2.bias:3',
    ]);
    expect(() => new LinearHead({ channels: 8, numClasses: 3, prePoolSize: 2, headArc: '16-4' })).toThrow(/head_arc: expected positive integers joined by '_'/);
  });

  it('computes the MLP of head_arc as float64 written out: pool 5x5 -> 2x2 (overlapping windows), flatten, Linear-ReLU-Linear-ReLU-Linear; gradients match finite differences', async () => {
    const head = new LinearHead({ channels: 6, numClasses: 3, prePoolSize: 2, headArc: '12_5', seed: 4 });
    const input = randomTensor([4, 6, 5, 5], 9, -2, 2);
    const labels = HostTensor.from('int64', [4], [0n, 2n, 1n, 2n]);
    const weights = new Map([...head.stateDict()].map(([name, tensor]) => [name, tensor.toArray()]));
    // Returns the logits and the mean cross-entropy, with one weight element optionally shifted.
    const byHand = (shift?: { name: string; index: number; delta: number }) => {
      const w = (name: string) => (shift?.name === name ? weights.get(name)!.map((v, i) => (i === shift.index ? v + shift.delta : v)) : weights.get(name)!);
      let h = toTensor64(input);
      h = adaptiveAvgPool64(h, 2);
      h = { shape: [4, 24], data: h.data };
      let hiddenNegative = 0;
      for (const [i, width] of [
        [0, 12],
        [1, 5],
        [2, 3],
      ] as const) {
        h = linear64(h, w(`fcs.${i}.weight`), w(`fcs.${i}.bias`), width);
        if (i < 2) {
          hiddenNegative += h.data.filter((v) => v < 0).length;
          h = relu64(h);
        }
      }
      const logits = h.data;
      let loss = 0;
      for (let n = 0; n < 4; n++) {
        const row = Array.from(logits.subarray(n * 3, n * 3 + 3));
        const top = Math.max(...row);
        loss += top + Math.log(row.reduce((a, v) => a + Math.exp(v - top), 0)) - row[Number(labels.toArray()[n])]!;
      }
      return { logits: h, loss: loss / 4, hiddenNegative };
    };
    const want = byHand();
    // The ReLUs cut something off, so a missing activation would show.
    expect(want.hiddenNegative).toBeGreaterThan(10);
    const result = await runHeadStep(
      head,
      (context, graph) => ({ logits: head.forward(context, graph.input('x', 'float32', ['batch', 6, 5, 5])), feeds: { x: input } }),
      labels,
      0.1,
    );
    expect(relativeError(result.logits, fromTensor64(want.logits))).toBeLessThanOrEqual(1e-5);
    expect(Math.abs(result.loss.toArray()[0]! - want.loss)).toBeLessThanOrEqual(1e-5);
    for (const name of ['fcs.0.weight', 'fcs.1.bias', 'fcs.2.weight']) {
      const gradient = result.grads.get(name)!.toArray();
      const index = gradient.reduce((best, v, i) => (Math.abs(v) > Math.abs(gradient[best]!) ? i : best), 0);
      const h = 1e-6;
      const finiteDifference = (byHand({ name, index, delta: h }).loss - byHand({ name, index, delta: -h }).loss) / (2 * h);
      expect(Math.abs(finiteDifference), name).toBeGreaterThan(1e-3);
      expect(Math.abs(gradient[index]! - finiteDifference), name).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(finiteDifference)));
      // One plain SGD step at lr 0.1.
      expect(Math.abs(result.after.get(name)!.toArray()[index]! - (weights.get(name)![index]! - 0.1 * gradient[index]!)), name).toBeLessThanOrEqual(1e-6);
    }
  });
});

describe('AttentionHead (layer string) against the reference AttentionHead', () => {
  it("matches the poolhead case (Pool, Reshape, one ViT block, FullyPool, Dense) and ignores the reference's unused cls_token", async () => {
    const { layer_string: layerString } = JSON.parse(fixture.metadata.poolhead!) as { layer_string: string };
    const unused = JSON.parse(fixture.metadata['poolhead/unused_params']!) as string[];
    expect(unused).toEqual(['cls_token']);
    const head = AttentionHead.fromLayerString(layerString);
    head.loadStateDict(fixture.group('poolhead/param/'));
    const input = fixture.tensor('poolhead/input');
    const result = await runHeadStep(
      head,
      (context, graph) => ({ logits: head.forward(context, graph.input('x', 'float32', ['batch', ...input.shape.slice(1)])), feeds: { x: input } }),
      fixture.tensor('labels'),
      Number(fixture.metadata['poolhead/lr']),
    );
    expectCase('poolhead', result, unused);
  });
});

describe('AttentionHead construction', () => {
  it('numbers layers as nn.Sequential does: n blocks take n indices, a Dense with an activation takes two', () => {
    const head = AttentionHead.fromLayerString(
      'Use_CLS_Token:True:8,Reshape,Insert_CLS_Token,Attention:8:2:2:2,Extract_CLS_Token,Dense:8:6:relu,Dense:6:3:identity',
      { seed: 3 },
    );
    const names = [...head.stateDict().keys()];
    expect(names[0]).toBe('cls_token');
    expect(names.filter((n) => n.endsWith('attn.qkv.weight'))).toEqual(['layers.2.attn.qkv.weight', 'layers.3.attn.qkv.weight']);
    expect(names.filter((n) => !n.includes('.attn.') && !n.includes('.norm') && !n.includes('.mlp.') && n !== 'cls_token')).toEqual([
      'layers.5.weight',
      'layers.5.bias',
      'layers.7.weight',
      'layers.7.bias',
    ]);
    expect(head.stateDict().get('layers.3.mlp.fc1.weight')!.shape).toEqual([16, 8]);
    expect(head.clsToken!.value.toArray()).toEqual(new Array(8).fill(0));
    expect(head.stateDict().get('layers.2.norm1.weight')!.toArray()).toEqual(new Array(8).fill(1));
    expect(() => head.loadStateDict(new Map([...head.stateDict(), ['extra', HostTensor.zeros('float32', [1])]]))).toThrow(/1 unexpected \(extra\)/);
  });
});
