/** scaledDotProductAttention's shape and dtype errors (its values and gradient: ops.test.ts; its recomputation: autodiff/gradients.test.ts). */
import { describe, expect, it } from 'vitest';
import { ConfigError, Graph, scaledDotProductAttention, ShapeError } from '../index.js';

describe('scaledDotProductAttention', () => {
  it('names the three shapes when they do not fit together', () => {
    const graph = new Graph();
    const q = graph.input('q', 'float32', [2, 3, 4]);
    expect(() => scaledDotProductAttention(q, graph.input('k', 'float32', [2, 5, 3]), graph.input('v', 'float32', [2, 5, 4]), 1)).toThrow(
      /expected q \[\.\.\., Nq, d\], k \[\.\.\., Nk, d\] and v \[\.\.\., Nk, dv\] with the same leading axes; found q \[2, 3, 4\], k \[2, 5, 3\], v \[2, 5, 4\]/,
    );
    expect(() => scaledDotProductAttention(q, graph.input('k2', 'float32', [2, 5, 4]), graph.input('v2', 'float32', [2, 6, 4]), 1)).toThrow(/v \[2, 6, 4\]/);
    expect(() => scaledDotProductAttention(q, graph.input('k3', 'float16', [2, 5, 4]), graph.input('v3', 'float32', [2, 5, 4]), 1)).toThrow(
      /expected q, k and v of one dtype; found float32, float16 and float32/,
    );
  });

  it('refuses leading axes that differ, rank below 2 and a scale that is not finite', () => {
    const graph = new Graph();
    const q = graph.input('q', 'float32', [2, 3, 4]);
    expect(() => scaledDotProductAttention(q, graph.input('k', 'float32', [3, 5, 4]), graph.input('v', 'float32', [3, 5, 4]), 1)).toThrow(
      /found q \[2, 3, 4\], k \[3, 5, 4\], v \[3, 5, 4\]/,
    );
    const flat = graph.input('flat', 'float32', [4]);
    expect(() => scaledDotProductAttention(flat, flat, flat, 1)).toThrow(ShapeError);
    expect(() => scaledDotProductAttention(q, q, q, Number.NaN)).toThrow(ConfigError);
    expect(() => scaledDotProductAttention(q, q, q, Number.POSITIVE_INFINITY)).toThrow(/expected a finite scale; found Infinity/);
  });
});
