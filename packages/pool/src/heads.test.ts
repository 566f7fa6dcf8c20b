/**
 * The heads against the reference PyTorch implementation (assets/fixtures/heads.safetensors):
 * logits, loss, every gradient and every parameter after one plain SGD step, under the reference's names.
 */
import { HostTensor } from '@diffssl/core';
import { expectMatchesReferenceStep, loadTensorFixture, referenceStep, runHeadStep, type TensorFixture } from '@diffssl/testing';
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
    const result = await runHeadStep(head, (context, graph) => ({ logits: head.forward(context, graph.input('x', 'float32', ['batch', ...input.shape.slice(1)])), feeds: { x: input } }), fixture.tensor('labels'), Number(fixture.metadata['linear/lr']));
    expectCase('linear', result);
  });

  it('builds the MLP of head_arc with the reference names and refuses a malformed one', () => {
    const head = new LinearHead({ channels: 8, numClasses: 3, prePoolSize: 2, headArc: '16_4' });
    expect([...head.stateDict()].map(([name, t]) => `${name}:${t.shape.join('x')}`)).toEqual(['fcs.0.weight:16x32', 'fcs.0.bias:16', 'fcs.1.weight:4x16', 'fcs.1.bias:4', 'fcs.2.weight:3x4', 'fcs.2.bias:3']);
    expect(() => new LinearHead({ channels: 8, numClasses: 3, prePoolSize: 2, headArc: '16-4' })).toThrow(/head_arc: expected positive integers joined by '_'/);
  });
});

describe('AttentionHead (layer string) against the reference AttentionHead', () => {
  it('matches the poolhead case (Pool, Reshape, one ViT block, FullyPool, Dense) and ignores the reference\'s unused cls_token', async () => {
    const { layer_string: layerString } = JSON.parse(fixture.metadata.poolhead!) as { layer_string: string };
    const unused = JSON.parse(fixture.metadata['poolhead/unused_params']!) as string[];
    expect(unused).toEqual(['cls_token']);
    const head = AttentionHead.fromLayerString(layerString);
    head.loadStateDict(fixture.group('poolhead/param/'));
    const input = fixture.tensor('poolhead/input');
    const result = await runHeadStep(head, (context, graph) => ({ logits: head.forward(context, graph.input('x', 'float32', ['batch', ...input.shape.slice(1)])), feeds: { x: input } }), fixture.tensor('labels'), Number(fixture.metadata['poolhead/lr']));
    expectCase('poolhead', result, unused);
  });
});

describe('AttentionHead construction', () => {
  it('numbers layers as nn.Sequential does: n blocks take n indices, a Dense with an activation takes two', () => {
    const head = AttentionHead.fromLayerString('Use_CLS_Token:True:8,Reshape,Insert_CLS_Token,Attention:8:2:2:2,Extract_CLS_Token,Dense:8:6:relu,Dense:6:3:identity', { seed: 3 });
    const names = [...head.stateDict().keys()];
    expect(names[0]).toBe('cls_token');
    expect(names.filter((n) => n.endsWith('attn.qkv.weight'))).toEqual(['layers.2.attn.qkv.weight', 'layers.3.attn.qkv.weight']);
    expect(names.filter((n) => !n.includes('.attn.') && !n.includes('.norm') && !n.includes('.mlp.') && n !== 'cls_token')).toEqual(['layers.5.weight', 'layers.5.bias', 'layers.7.weight', 'layers.7.bias']);
    expect(head.stateDict().get('layers.3.mlp.fc1.weight')!.shape).toEqual([16, 8]);
    expect(head.clsToken!.value.toArray()).toEqual(new Array(8).fill(0));
    expect(head.stateDict().get('layers.2.norm1.weight')!.toArray()).toEqual(new Array(8).fill(1));
    expect(() => head.loadStateDict(new Map([...head.stateDict(), ['extra', HostTensor.zeros('float32', [1])]]))).toThrow(/1 unexpected \(extra\)/);
  });
});
