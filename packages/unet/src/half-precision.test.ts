import { HostTensor } from '@diffssl/core';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '@diffssl/testing';
import { castToFloat16 } from './half-precision.js';

describe('castToFloat16', () => {
  it("gives exactly the bits of @diffssl/core's HostTensor.cast('float16'): ties, subnormals, overflow, infinities, NaN and random values", () => {
    const random = seededRandom(5);
    const tricky = [0, -0, 1, -1, 65504, 65520, 65519.99, 1e6, -1e6, Infinity, -Infinity, Number.NaN, 5.960464477539063e-8, 2.9802322387695312e-8, 2.98023259e-8, 6.097555160522461e-5, 6.1035156e-5, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -25, 1e-30, 0.1, 1 / 3];
    const values = [...tricky, ...Array.from({ length: 20_000 }, () => (random() - 0.5) * 10 ** Math.floor(random() * 12 - 8))];
    for (const dtype of ['float32', 'float64'] as const) {
      const tensor = HostTensor.from(dtype, [values.length], values);
      const fast = castToFloat16(tensor);
      const reference = tensor.cast('float16');
      expect(fast.dtype).toBe('float16');
      expect(Array.from(fast.data), dtype).toEqual(Array.from(reference.data));
    }
  });

  it('reads strided views and keeps the shape', () => {
    const matrix = HostTensor.from('float32', [2, 3], [1, 2, 3, 4, 5, 6]).transpose([1, 0]);
    const half = castToFloat16(matrix);
    expect(half.shape).toEqual([3, 2]);
    expect(half.toArray()).toEqual([1, 4, 2, 5, 3, 6]);
  });
});
