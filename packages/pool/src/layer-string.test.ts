import { ConfigError } from '@diffssl/core';
import { describe, expect, it } from 'vitest';
import { AttentionHead, formatLayerString, parseLayerString } from './index.js';

describe('parseLayerString', () => {
  it('parses the reference grammar into a typed configuration and back', () => {
    const text = 'Use_CLS_Token:True:64,Insert_CLS_Token,Attention:64:4:4:2,Extract_CLS_Token';
    const config = parseLayerString(text);
    expect(config).toEqual({
      clsToken: { dim: 64 },
      layers: [{ kind: 'insertClsToken' }, { kind: 'attention', dim: 64, heads: 4, mlpRatio: 4, blocks: 2 }, { kind: 'extractClsToken' }],
    });
    expect(formatLayerString(config)).toBe(text);
    expect(parseLayerString('Pool:2:2, Reshape, Attention:32:2:1.5:1, FullyPool, Flatten, Dense:32:10:tanh').layers[2]).toEqual({
      kind: 'attention',
      dim: 32,
      heads: 2,
      mlpRatio: 1.5,
      blocks: 1,
    });
  });

  const quirks: [string, string, RegExp][] = [
    [
      'an unknown entry the reference ignores',
      'Pool:2:2,Reshape,Attention:32:2:2:1,FullPool,Dense:32:10:identity',
      /entry 'FullPool' is unknown \(did you mean 'FullyPool'\?.*valid entries: Use_CLS_Token/,
    ],
    ['any other unknown entry', 'Reshape,Attention:32:2:2:1,Softmax', /entry 'Softmax' is unknown; valid entries/],
    [
      'Use_CLS_Token:False, which the reference treats as true',
      'Use_CLS_Token:False:32,Insert_CLS_Token,Attention:32:4:4:1,Extract_CLS_Token',
      /entry 'Insert_CLS_Token' needs a CLS token/,
    ],
    [
      'a CLS flag that is neither True nor False',
      'Use_CLS_Token:yes:32,Insert_CLS_Token',
      /entry 'Use_CLS_Token:yes:32' has flag 'yes'; expected True or False/,
    ],
    ['a malformed integer', 'Reshape,Attention:32:4x:4:1', /entry 'Attention:32:4x:4:1' has heads '4x'; expected a positive integer/],
    ['a malformed ratio', 'Reshape,Attention:32:4:four:1', /has mlp_ratio 'four'; expected a positive number/],
    ['a missing field', 'Pool:2,Reshape', /entry 'Pool:2' has 1 field\(s\); expected 2/],
    [
      'dims that do not chain (CLS vs attention)',
      'Use_CLS_Token:True:32,Insert_CLS_Token,Attention:64:4:4:1,Extract_CLS_Token',
      /entry 'Attention:64:4:4:1' has dim 64, but its input tokens have width 32/,
    ],
    [
      'dims that do not chain (dense after attention)',
      'Reshape,Attention:32:4:4:1,FullyPool,Dense:64:10:identity',
      /entry 'Dense:64:10:identity' takes 64 inputs, but the layers before it produce width 32/,
    ],
    [
      'dense after dense',
      'Reshape,FullyPool,Dense:8:4:relu,Dense:5:2:identity',
      /entry 'Dense:5:2:identity' takes 5 inputs, but the layers before it produce width 4/,
    ],
    ['heads that do not divide the dim', 'Reshape,Attention:30:4:4:1', /dim 30 not divisible by heads 4/],
    ['attention on a feature map', 'Pool:2:2,Attention:32:4:4:1', /entry 'Attention:32:4:4:1' needs tokens \[B, N, D\] \(put Reshape before it\)/],
    ['a CLS flag that is not first', 'Reshape,Use_CLS_Token:True:32', /must be the first entry/],
    ['an unknown activation', 'Reshape,FullyPool,Dense:8:4:gelu', /has activation 'gelu'; expected relu, sigmoid, tanh or identity/],
  ];
  it.each(quirks)('refuses %s, quoting the entry', (_label, text, pattern) => {
    const error = (() => {
      try {
        parseLayerString(text);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(pattern);
  });

  it('checks the input width when the head is applied', () => {
    const head = AttentionHead.fromLayerString('Reshape,Attention:32:4:4:1,FullyPool');
    expect(AttentionHead.fromLayerString('Attention:32:4:4:1,FullyPool').outputWidth(32)).toBe(32);
    expect(head.outputWidth(32)).toBe(32);
    expect(() => head.outputWidth(16)).toThrow(/has dim 32, but its input tokens have width 16/);
  });
});
