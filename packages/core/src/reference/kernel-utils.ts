import { DTypeError } from '../errors.js';
import { allocateData } from '../tensor/dtype.js';
import { HostTensor, contiguousStrides, shapeSize } from '../tensor/host-tensor.js';

/** The float arrays reference kernels compute on. */
export type FloatArray = Float32Array | Float64Array;

/** A contiguous float32/float64 view of a tensor (throws for other dtypes). */
export function floatData(opName: string, tensor: HostTensor): FloatArray {
  if (tensor.dtype !== 'float32' && tensor.dtype !== 'float64') {
    throw new DTypeError(`${opName} (reference kernel): computes on float32 or float64; found ${tensor.dtype}. Cast float16 inputs first.`);
  }
  const dense = tensor.contiguous();
  return (dense.data as FloatArray).subarray(dense.offset, dense.offset + dense.size);
}

/** Allocates a float output of `dtype` (float32 or float64). */
export function floatTensor(dtype: 'float32' | 'float64' | string, shape: readonly number[]): HostTensor<'float32' | 'float64'> {
  const resolved = dtype === 'float64' ? 'float64' : 'float32';
  return new HostTensor(resolved, allocateData(resolved, shapeSize(shape)), shape);
}

/** NumPy broadcasting of two static shapes (validity was checked at build time). */
export function broadcastStatic(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    out.push(da === 1 ? db : da);
  }
  return out;
}

/**
 * For each element of `outShape`, the flat index into a tensor of `shape`
 * broadcast to it.
 */
export function broadcastIndices(shape: readonly number[], outShape: readonly number[]): Int32Array {
  const rank = outShape.length;
  const padded = [...new Array<number>(rank - shape.length).fill(1), ...shape];
  const strides = contiguousStrides(padded).map((s, i) => (padded[i] === 1 ? 0 : s));
  const size = shapeSize(outShape);
  const indices = new Int32Array(size);
  const counter = new Array<number>(rank).fill(0);
  let index = 0;
  for (let i = 0; i < size; i++) {
    indices[i] = index;
    for (let axis = rank - 1; axis >= 0; axis--) {
      counter[axis]!++;
      index += strides[axis]!;
      if (counter[axis]! < outShape[axis]!) break;
      index -= strides[axis]! * outShape[axis]!;
      counter[axis] = 0;
    }
  }
  return indices;
}

/** Elementwise binary kernel with broadcasting. */
export function binaryKernel(opName: string, a: HostTensor, b: HostTensor, f: (x: number, y: number) => number): HostTensor {
  const outShape = broadcastStatic(a.shape, b.shape);
  const out = floatTensor(a.dtype === 'float64' || b.dtype === 'float64' ? 'float64' : 'float32', outShape);
  const ad = floatData(opName, a);
  const bd = floatData(opName, b);
  const ai = broadcastIndices(a.shape, outShape);
  const bi = broadcastIndices(b.shape, outShape);
  const od = out.data as FloatArray;
  for (let i = 0; i < od.length; i++) od[i] = f(ad[ai[i]!]!, bd[bi[i]!]!);
  return out;
}

/** Elementwise unary kernel. */
export function unaryKernel(opName: string, x: HostTensor, f: (v: number) => number): HostTensor {
  const xd = floatData(opName, x);
  const out = floatTensor(x.dtype, x.shape);
  const od = out.data as FloatArray;
  for (let i = 0; i < od.length; i++) od[i] = f(xd[i]!);
  return out;
}

/** Reduces over `axes` of a contiguous float tensor with an accumulator. */
export function reduceKernel(
  opName: string,
  x: HostTensor,
  axes: readonly number[],
  keepDims: boolean,
  initial: number,
  combine: (accumulator: number, value: number) => number,
  finish: (accumulator: number, count: number) => number = (a) => a,
): HostTensor {
  const xd = floatData(opName, x);
  const keptShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const outShape = keepDims ? keptShape : x.shape.filter((_, i) => !axes.includes(i));
  const out = floatTensor(x.dtype, outShape);
  const od = out.data as FloatArray;
  od.fill(initial);
  const target = broadcastIndices(keptShape, x.shape);
  for (let i = 0; i < xd.length; i++) od[target[i]!] = combine(od[target[i]!]!, xd[i]!);
  const count = shapeSize(x.shape) / Math.max(1, shapeSize(keptShape));
  for (let i = 0; i < od.length; i++) od[i] = finish(od[i]!, count);
  return out;
}

/**
 * erf(x) to float64 accuracy: Taylor series for |x| < 3, continued fraction of
 * erfc beyond.
 */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    let term = x;
    let sum = x;
    const x2 = x * x;
    for (let n = 1; n < 100; n++) {
      term *= -x2 / n;
      const contribution = term / (2 * n + 1);
      sum += contribution;
      if (Math.abs(contribution) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))
  let fraction = ax;
  for (let k = 60; k >= 1; k--) fraction = ax + k / 2 / fraction;
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / fraction;
  return Math.sign(x) * (1 - erfc);
}
