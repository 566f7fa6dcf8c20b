import ndarray from 'ndarray';
import { describe, expect, it } from 'vitest';
import { DTypeError, float16BitsToFloat32, float32ToFloat16Bits, fromNdarray, fromOrtTensor, HostTensor, ShapeError, toNdarray, toOrtTensor } from '../index.js';
import * as ort from 'onnxruntime-node';

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
