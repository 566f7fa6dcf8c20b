import ndarray from 'ndarray';
import { describe, expect, it } from 'vitest';
import {
  DTypeError,
  float16BitsToFloat32,
  float32ToFloat16Bits,
  fromNdarray,
  fromOrtTensor,
  HostTensor,
  ShapeError,
  toNdarray,
  toOrtTensor,
} from '../index.js';
import * as ort from 'onnxruntime-node';
import { seededRandom } from '@diffssl/testing';

describe('HostTensor', () => {
  const x = HostTensor.from('float32', [2, 3], [1, 2, 3, 4, 5, 6]);

  it('indexes, transposes and slices as views over the same data', () => {
    const t = x.transpose([1, 0]);
    expect(t.shape).toEqual([3, 2]);
    expect(t.get(2, 1)).toBe(6);
    expect(t.data).toBe(x.data);
    const s = x.slice([0, 1], [2, 3]);
    expect(s.toArray()).toEqual([2, 3, 5, 6]);
    expect(s.data).toBe(x.data);
    expect(s.isContiguous).toBe(false);
    expect(s.contiguous().toArray()).toEqual([2, 3, 5, 6]);
    expect(x.reshape([3, -1]).data).toBe(x.data);
  });

  it('keeps int64 and float16 exact', () => {
    const big = HostTensor.from('int64', [2], [2n ** 60n, -3n]);
    expect(big.data[0]).toBe(2n ** 60n);
    const half = HostTensor.from('float16', [3], [1, -2.5, 65504]);
    expect(half.data).toBeInstanceOf(Uint16Array);
    expect(half.toArray()).toEqual([1, -2.5, 65504]);
    expect(float16BitsToFloat32(float32ToFloat16Bits(0.1))).toBeCloseTo(0.0999755859375, 12);
    expect(float32ToFloat16Bits(1e6)).toBe(0x7c00);
    expect(float16BitsToFloat32(float32ToFloat16Bits(2 ** -24))).toBe(2 ** -24);
    expect(x.cast('float16').cast('float32').toArray()).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('casts to float16 as the nearest half (ties to even) of the float32 value, checked against a search over all 65,536 halves', () => {
    // Independent reference: every non-negative half up to infinity, decoded (in
    // increasing order);
    // the answer for v is the nearest by absolute distance, ties to the even
    // bit pattern, and infinity from 65520 (the midpoint past 65504) upward.
    const halves = Array.from({ length: 0x7c01 }, (_, bits) => ({ bits, value: float16BitsToFloat32(bits) }));
    const nearestHalfBits = (v: number): number => {
      if (Number.isNaN(v)) return Number.NaN;
      const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
      const a = Math.abs(Math.fround(v));
      if (a >= 65520) return sign | 0x7c00;
      let low = 0;
      let high = halves.length - 1;
      while (high - low > 1) {
        const middle = (low + high) >> 1;
        if (halves[middle]!.value <= a) low = middle;
        else high = middle;
      }
      const [below, above] = [halves[low]!, halves[high]!];
      const [dBelow, dAbove] = [a - below.value, above.value - a];
      const pick = dBelow < dAbove ? below : dAbove < dBelow ? above : below.bits % 2 === 0 ? below : above;
      return sign | pick.bits;
    };
    const random = seededRandom(5);
    const tricky = [
      0,
      -0,
      1,
      -1,
      65504,
      65519.99,
      65520,
      1e6,
      -1e6,
      Infinity,
      -Infinity,
      2 ** -24,
      2 ** -25,
      2 ** -25 + 2 ** -40,
      3 * 2 ** -25,
      6.097555160522461e-5,
      2 ** -14,
      1 + 2 ** -11,
      1 + 3 * 2 ** -11,
      1e-30,
      0.1,
      1 / 3,
    ];
    const values = [...tricky, ...Array.from({ length: 20_000 }, () => (random() - 0.5) * 10 ** Math.floor(random() * 12 - 8))];
    for (const dtype of ['float32', 'float64'] as const) {
      const tensor = HostTensor.from(dtype, [values.length], values);
      const half = tensor.cast('float16');
      expect(half.dtype).toBe('float16');
      const mismatches = values.map((v, i) => [v, half.data[i], nearestHalfBits(v)] as const).filter(([, got, want]) => got !== want);
      expect(mismatches.slice(0, 5), dtype).toEqual([]);
    }
    const nan = HostTensor.from('float32', [1], [Number.NaN]).cast('float16');
    expect(Number.isNaN(float16BitsToFloat32(nan.data[0]!))).toBe(true);
    // A strided view is read in logical order.
    expect(x.transpose([1, 0]).cast('float16').toArray()).toEqual([1, 4, 2, 5, 3, 6]);
  });

  it('converts to and from ndarray without copying', () => {
    const view = toNdarray(x.transpose([1, 0]));
    expect(view.get(2, 1)).toBe(6);
    expect(view.data).toBe(x.data);
    const array = ndarray(new Float32Array([1, 2, 3, 4]), [2, 2]);
    const back = fromNdarray(array.transpose(1, 0));
    expect(back.get(0, 1)).toBe(3);
    expect(back.data).toBe(array.data);
    expect(() => fromNdarray(ndarray([1, 2, 3] as unknown as Float32Array, [3]))).toThrow(DTypeError);
  });

  it('converts to and from ONNX Runtime tensors without copying contiguous data', () => {
    const o = toOrtTensor(ort as never, x);
    expect(o.data).toBe(x.data);
    const view = toOrtTensor(ort as never, HostTensor.from('float32', [4], [1, 2, 3, 4]).slice([1], [3]));
    expect((view.data as Float32Array).length).toBe(2);
    const back = fromOrtTensor(new ort.Tensor('float32', new Float32Array([1, 2]), [2]));
    expect(back.toArray()).toEqual([1, 2]);
  });

  it('rejects bad shapes and dtypes with messages that say what was found', () => {
    expect(() => HostTensor.from('float32', [2, 2], [1, 2, 3])).toThrow(/needs 4 values; found 3/);
    expect(() => new HostTensor('float32', new Float64Array(4) as never, [4])).toThrow(DTypeError);
    expect(() => new HostTensor('float32', new Float32Array(4), [5])).toThrow(ShapeError);
    expect(() => x.get(2, 0)).toThrow(/out of range/);
    expect(() => x.reshape([4, 2])).toThrow(/cannot reshape/);
    expect(() => HostTensor.from('complex' as never, [1], [1])).toThrow(/expected a data type/);
  });
});
